"""OpenVINO runtime: the network built straight from the weights' numpy parameters.

No TensorFlow and no exported file: each segment and head is an OpenVINO graph made with its
Python opset API from :class:`weights.Weights`, so what runs is always what the ``.npz`` holds.
The three colour branches run as one *grouped* convolution (``groups=3``) per layer, which on
these small channel counts is much faster than three separate convolutions (docs/benchmarks.md);
the maths is the TensorFlow network's, in float32 (exact to about 1e-6).

Segments are compiled per input shape and cached: the tiled pipeline gives every window of a
frame one shape, so a frame compiles each segment once. Heads take any map size (dynamic shape).
"""

from __future__ import annotations

import numpy as np

from .. import defaults
from ..errors import MicroISPError
from ..model import (ATTENTION_STRIDED_CONVS, BRANCHES, OUTPUT_SCALE, OUTPUT_SHIFT, ModelConfig,
                     base_kernel)
from ..weights import Weights

#: Floating-point precisions the engine can run the network in ("f32" exact; "bf16" faster on
#: CPUs with AVX512_BF16 or AMX, with errors up to a few 8-bit levels).
PRECISIONS = ("f32", "bf16")


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise MicroISPError("the openvino backend needs OpenVINO: pip install openvino") from None
    return openvino


class _Graph:
    """Builds one OpenVINO graph (NCHW inside) from the parameters of a network."""

    def __init__(self, ops, params, features: int):
        self.ops, self.params, self.f = ops, params, features

    def const(self, value) -> object:
        return self.ops.constant(np.ascontiguousarray(value, np.float32))

    def _kernel(self, names: list[str], grouped: bool):
        """HWIO kernels of the three branches -> an OIHW kernel (dense: concatenated outputs)
        or a grouped [G, O, I, H, W] one."""
        kernels = [np.transpose(self.params[n], (3, 2, 0, 1)) for n in names]
        return np.stack(kernels) if grouped else np.concatenate(kernels)

    def conv(self, x, layer: str, grouped: bool = True, stride: int = 1, pad: int = 1,
             prelu: bool = True, branches: tuple[str, ...] | None = None):
        """The layer ``layer`` (``{p}`` stands for each branch's prefix) of all three branches."""
        names = [layer.format(p=p) for p in branches]
        kernel = self.const(self._kernel([n + ".kernel" for n in names], grouped))
        args = ([stride, stride], [pad, pad], [pad, pad], [1, 1])
        y = (self.ops.group_convolution(x, kernel, *args) if grouped
             else self.ops.convolution(x, kernel, *args))
        bias = np.concatenate([self.params[n + ".bias"] for n in names])
        y = self.ops.add(y, self.const(bias.reshape(1, -1, 1, 1)))
        if prelu:
            alpha = np.concatenate([self.params[n + ".alpha"] for n in names])
            y = self.ops.prelu(y, self.const(alpha))
        return y


class OpenVINORunner:
    """Runs ``weights``' network with OpenVINO on the CPU. Implements ``SegmentRunner``.

    ``threads``: CPU threads (None: all). ``precision``: ``"f32"`` (default, exact) or ``"bf16"``.
    """

    def __init__(self, weights: Weights, threads: int | None = defaults.THREADS,
                 precision: str = "f32"):
        if precision not in PRECISIONS:
            raise MicroISPError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        ov = import_openvino()
        self._ov = ov
        self.config: ModelConfig = weights.config
        self.params = weights.params
        self.precision = precision
        self._core = ov.Core()
        self._settings = {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            self._settings["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled: dict[tuple, object] = {}

    def reads_input(self, index: int) -> bool:
        """Whether segment ``index`` reads the packed input (the first; the last with a base)."""
        return index == 0 or (index == self.config.num_segments - 1 and self.config.base != "none")

    # --- graphs -----------------------------------------------------------------------------
    def _prefixes(self, g: int) -> tuple[str, ...]:
        return tuple(f"s{g}.b{i}" for i in range(BRANCHES))

    def _segment_model(self, index: int, height: int, width: int):
        ov = self._ov
        ops = ov.opset13
        cfg, f = self.config, self.config.features
        graph = _Graph(ops, self.params, f)
        points = cfg.attention_points
        inputs = []
        if self.reads_input(index):
            inputs.append(ops.parameter([1, height, width, 4], np.float32, name="x"))
            x = ops.transpose(inputs[0], [0, 3, 1, 2])
        if index == 0:
            g, k, h, first = 0, 0, x, True
        else:
            state_in = ops.parameter([1, height, width, cfg.state_channels], np.float32, name="state")
            att_in = ops.parameter([1, 1, 1, cfg.probe_channels], np.float32, name="attention")
            inputs += [state_in, att_in]
            state = ops.transpose(state_in, [0, 3, 1, 2])
            pre = ops.slice(state, [0], [3 * f], [1], [1])
            skip = ops.slice(state, [3 * f], [6 * f], [1], [1])
            scale = ops.transpose(att_in, [0, 3, 1, 2])
            h = ops.add(ops.multiply(pre, scale), skip)
            (g, k), first = points[index - 1], False
            k += 1
        while True:
            p = self._prefixes(g)
            if k < cfg.blocks:
                # the very first conv reads the shared packed input: one dense conv for 3 branches
                skip = graph.conv(h, "{p}.conv%d" % (3 * k), grouped=not first, branches=p)
                first = False
                y = graph.conv(skip, "{p}.conv%d" % (3 * k + 1), branches=p)
                y = graph.conv(y, "{p}.conv%d" % (3 * k + 2), branches=p)
                # every block ends at an attention point: the state is (pre, skip)
                out = ops.transpose(ops.concat([y, skip], 1), [0, 2, 3, 1])
                return ov.Model([out], inputs, f"segment_{index}")
            y = graph.conv(h, "{p}.conv%d" % (3 * cfg.blocks), grouped=not first, branches=p)
            first = False
            h = ops.tanh(graph.conv(y, "{p}.out", prelu=False, branches=p))
            if g + 1 == cfg.stages:
                break
            g, k = g + 1, 0
        # h: (1, 12, H, W), colour c at channels 4c..4c+3 (sites R, Gr, Gb, B)
        if cfg.base == "none":
            shift = graph.const(np.float32(OUTPUT_SHIFT))
        else:
            base = graph.const(np.transpose(base_kernel(cfg.base), (3, 2, 0, 1)))
            shift = ops.convolution(x, base, [1, 1], [1, 1], [1, 1], [1, 1])
        rgb = ops.add(ops.multiply(h, graph.const(np.float32(OUTPUT_SCALE))), shift)
        rgb = ops.reshape(rgb, [1, 3, 2, 2, height, width], False)
        rgb = ops.transpose(rgb, [0, 4, 2, 5, 3, 1])  # (1, H, dy, W, dx, colour)
        rgb = ops.reshape(rgb, [1, 2 * height, 2 * width, 3], False)
        return ov.Model([rgb], inputs, f"segment_{index}")

    def _head_model(self, index: int):
        ov = self._ov
        ops = ov.opset13
        cfg = self.config
        graph = _Graph(ops, self.params, cfg.features)
        g, k = cfg.attention_points[index]
        p = tuple(f"{q}.att{k}" for q in self._prefixes(g))
        samples = ops.parameter([1, -1, -1, cfg.probe_channels], np.float32, name="samples")
        y = graph.conv(ops.transpose(samples, [0, 3, 1, 2]), "{p}.conv0", pad=0, branches=p)
        for m in range(1, ATTENTION_STRIDED_CONVS + 1):
            y = graph.conv(y, "{p}.conv%d" % m, stride=3, pad=0, branches=p)
        y = ops.reduce_mean(y, [2, 3], True)
        y = graph.conv(y, "{p}.conv%d" % (ATTENTION_STRIDED_CONVS + 1), pad=0, branches=p)
        y = ops.sigmoid(graph.conv(y, "{p}.conv%d" % (ATTENTION_STRIDED_CONVS + 2), pad=0,
                                   prelu=False, branches=p))
        return ov.Model([ops.transpose(y, [0, 2, 3, 1])], [samples], f"head_{index}")

    def _request(self, key: tuple, build):
        request = self._compiled.get(key)
        if request is None:
            if key[0] == "segment":  # keep only this frame's window shape
                for old in [k for k in self._compiled if k[0] == "segment" and k[2:] != key[2:]]:
                    del self._compiled[old]
            compiled = self._core.compile_model(build(), "CPU", self._settings)
            request = self._compiled[key] = compiled.create_infer_request()
        return request

    # --- SegmentRunner ------------------------------------------------------------------------
    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        """Segment ``index`` on one window; the result is a view into the runner's output
        buffer, valid until the next call of the same segment with the same shape."""
        _, h, w, _ = (x if index == 0 else state).shape
        request = self._request(("segment", index, h, w),
                                lambda: self._segment_model(index, h, w))
        feeds = [np.ascontiguousarray(x, np.float32)] if self.reads_input(index) else []
        if index > 0:
            feeds += [np.ascontiguousarray(state, np.float32),
                      np.ascontiguousarray(attention, np.float32)]
        request.infer(feeds, share_inputs=True, share_outputs=True)
        return request.get_output_tensor(0).data

    def head(self, index, samples) -> np.ndarray:
        request = self._request(("head", index), lambda: self._head_model(index))
        request.infer([np.ascontiguousarray(samples, np.float32)], share_inputs=True)
        return np.array(request.get_output_tensor(0).data)
