"""OpenVINO runtime: the network built straight from its numpy parameters.

No TensorFlow and no exported file: each segment and head is an OpenVINO graph made with its
Python opset API from a model config and its parameters, so what runs is always what the ``.npz``
holds.
The three colour branches run as one *grouped* convolution (``groups=3``) per layer, which on
these small channel counts is much faster than three separate convolutions (docs/benchmarks.md);
the maths is the TensorFlow network's, in float32 (exact to about 1e-6).

Segments are compiled per input shape and cached: the tiled pipeline gives every window of a
frame one shape, so a frame compiles each segment once. Calls may come from another thread than
the one that made the runner, one at a time. The attention heads, a few convolutions
on 1/9 of the frame, run in numpy a band at a time (an OpenVINO graph of a 24 MP frame's head
held 125 MB per head).
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Mapping

import numpy as np

from .. import defaults
from ..base_demosaic import (base_kernel, curve_decode, curve_encode, lmmse_demosaic, packed_channel_sum,
                             packed_kernel)
from ..errors import MicroISPError
from ..model import (ATTENTION_STRIDED_CONVS, BRANCHES, ENCODED_BASES, HEAD_SPAN, OUTPUT_SCALE,
                     OUTPUT_SHIFT, ModelConfig, check_parameters)
from .base import SegmentRunner

try:
    from .. import _native_base as _native
except ImportError:  # not built (an installation without a C compiler): the base runs in the graph
    _native = None


def native_base(x: np.ndarray, residual: bool) -> np.ndarray:
    """The encoded LMMSE base (``residual``: ``lmmse-ri``) of packed windows (1, h, w, 4) as the
    graph's base node holds it, (1, h, w, 12) with colour c at channels 4c..4c+3, computed by the
    native kernel ``_native_base.c`` (it releases the GIL)."""
    if _native is None:
        raise MicroISPError("the native base (_native_base.c) was not built: install with a C compiler")
    _, h, w, _ = x.shape
    out = np.empty((1, h, w, 12), np.float32)
    _native.base(np.ascontiguousarray(x, np.float32), out, h, w, residual)
    return out


def import_openvino():
    try:
        import openvino
    except ImportError:
        raise MicroISPError("the openvino backend needs OpenVINO: pip install openvino") from None
    return openvino


class _Graph:
    """Builds one OpenVINO graph (NCHW inside) from the parameters of a network."""

    def __init__(self, ops, params):
        self.ops, self.params = ops, params

    def const(self, value) -> object:
        return self.ops.constant(np.ascontiguousarray(value, np.float32))

    def _kernel(self, names: list[str], grouped: bool):
        """HWIO kernels of the three branches -> an OIHW kernel (dense: concatenated outputs)
        or a grouped [G, O, I, H, W] one."""
        kernels = [np.transpose(self.params[n], (3, 2, 0, 1)) for n in names]
        return np.stack(kernels) if grouped else np.concatenate(kernels)

    def conv(self, x, layer: str, grouped: bool = True, stride: int = 1, pad: int = 1,
             prelu: bool = True, branches: tuple[str, ...] | None = None, also=None):
        """The layer ``layer`` (``{p}`` stands for each branch's prefix) of all three branches.
        ``also``: (an input all branches read, their kernels' layer name), convolved and added."""
        names = [layer.format(p=p) for p in branches]
        kernel = self.const(self._kernel([n + ".kernel" for n in names], grouped))
        args = ([stride, stride], [pad, pad], [pad, pad], [1, 1])
        y = (self.ops.group_convolution(x, kernel, *args) if grouped
             else self.ops.convolution(x, kernel, *args))
        if also is not None:
            shared = self.const(self._kernel([also[1].format(p=p) + ".kernel" for p in branches], False))
            y = self.ops.add(y, self.ops.convolution(also[0], shared, *args))
        bias = np.concatenate([self.params[n + ".bias"] for n in names])
        y = self.ops.add(y, self.const(bias.reshape(1, -1, 1, 1)))
        if prelu:
            alpha = np.concatenate([self.params[n + ".alpha"] for n in names])
            y = self.ops.prelu(y, self.const(alpha))
        return y


class _Tensor:
    """An OpenVINO node that takes +, -, *, / with other nodes and with floats."""

    def __init__(self, ops, node):
        self.ops, self.node = ops, node

    def _node(self, other):
        return other.node if isinstance(other, _Tensor) else self.ops.constant(np.float32(other))

    def _op(self, fn, a, b):
        return _Tensor(self.ops, fn(self._node(a), self._node(b)))

    def __add__(self, o): return self._op(self.ops.add, self, o)  # noqa: E704
    def __radd__(self, o): return self._op(self.ops.add, o, self)  # noqa: E704
    def __sub__(self, o): return self._op(self.ops.subtract, self, o)  # noqa: E704
    def __rsub__(self, o): return self._op(self.ops.subtract, o, self)  # noqa: E704
    def __mul__(self, o): return self._op(self.ops.multiply, self, o)  # noqa: E704
    def __rmul__(self, o): return self._op(self.ops.multiply, o, self)  # noqa: E704
    def __truediv__(self, o): return self._op(self.ops.divide, self, o)  # noqa: E704
    def __rtruediv__(self, o): return self._op(self.ops.divide, o, self)  # noqa: E704


class _BaseOps:
    """``base_demosaic.lmmse_demosaic``'s operations as OpenVINO nodes. Each full-resolution map
    is held as its packed sites, (1, 4, h, w) (``base_demosaic.packed_kernel``)."""

    def __init__(self, ops):
        self.ops = ops

    def wrap(self, node) -> _Tensor:
        return _Tensor(self.ops, node)

    def mosaic(self, x):
        return x

    def site_mask(self, x, pattern):
        return self.wrap(self.ops.constant(np.asarray(pattern, np.float32).reshape(1, 4, 1, 1)))

    def _conv(self, t, hwio: np.ndarray):
        ry, rx = hwio.shape[0] // 2, hwio.shape[1] // 2
        k = self.ops.constant(np.ascontiguousarray(np.transpose(hwio, (3, 2, 0, 1))))
        return self.wrap(self.ops.convolution(t.node, k, [1, 1], [ry, rx], [ry, rx], [1, 1]))

    def conv(self, t, kernel):
        return self._conv(t, packed_kernel([kernel]))

    def conv_stack(self, t, kernels):
        return self._conv(t, packed_kernel(kernels))

    def channel_sum(self, t):
        return self._conv(t, packed_channel_sum(t.node.get_output_partial_shape(0)[1].get_length() // 4))

    def abs(self, t):
        return self.wrap(self.ops.abs(t.node))

    def maximum(self, a, b):
        return self.wrap(self.ops.maximum(a.node, a._node(b)))

    def minimum(self, a, b):
        return self.wrap(self.ops.minimum(a.node, a._node(b)))

    def pow(self, t, exponent):
        return self.wrap(self.ops.power(t.node, t._node(exponent)))


class OpenVINORunner(SegmentRunner):
    """Runs the network of ``config`` and ``params`` (name -> array, as
    :func:`model.parameter_shapes`) with OpenVINO on the CPU, asynchronously, its heads band by band.

    ``threads``: CPU threads (None: all). Float32 throughout: OpenVINO would otherwise pick
    bfloat16 on CPUs that have it (faster, but up to 1.7/255 off, issue 16).
    """

    asynchronous = True
    incremental_heads = True

    def __init__(self, config: ModelConfig, params: Mapping[str, np.ndarray],
                 threads: int | None = defaults.THREADS, native_base: bool = True):
        check_parameters(config, params)
        ov = import_openvino()
        self._ov = ov
        self.config = config
        self.params = params
        self._core = ov.Core()
        self._settings = {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"}
        self.native_base = native_base and _native is not None
        if threads:
            self._settings["INFERENCE_NUM_THREADS"] = int(threads)
        self._compiled: dict[tuple[int, int, int], object] = {}  # (segment, height, width)
        self._live: tuple[tuple[int, int, int], list] | None = None
        self._compiler: concurrent.futures.ThreadPoolExecutor | None = None

    def prepare(self, keys: list[tuple[int, int, int]]) -> None:
        """Compile the graphs of these (segment, window height, window width) in a background
        thread, in order, so that a segment's first window does not wait for its compilation.
        Call before running any of them (the tiling does, once per frame)."""
        if self._compiler is None:
            self._compiler = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="microisp-compile")
        for key in keys:
            if key not in self._compiled:
                self._compiled[key] = self._compiler.submit(self._compile, *key)

    def _compile(self, index: int, height: int, width: int):
        return self._core.compile_model(self._segment_model(index, height, width), "CPU", self._settings)

    def _native_base(self, index: int) -> bool:
        """Whether segment ``index`` gets its encoded base from :mod:`_native_base` (the same maths
        as the graph, about 3x less CPU time) rather than computing it in its graph."""
        return (self.native_base and index == self.config.num_segments - 1
                and self.config.base in ENCODED_BASES)

    def reads_input(self, index: int) -> bool:
        """Whether segment ``index`` reads the packed input (the first; the last with a base)."""
        return self.config.segment_reads_input(index)

    # --- graphs -----------------------------------------------------------------------------
    def _prefixes(self, g: int) -> tuple[str, ...]:
        return tuple(f"s{g}.b{i}" for i in range(BRANCHES))

    def _segment_model(self, index: int, height: int, width: int):
        ov = self._ov
        ops = ov.opset13
        cfg, f = self.config, self.config.features
        graph, base_ops = _Graph(ops, self.params), _BaseOps(ops)
        points = cfg.attention_points
        inputs = []
        base = None  # the encoded base's packed maps, colour c at channels 4c..4c+3
        if self._native_base(index):  # its base is computed by submit(), fed in place of x
            inputs.append(ops.parameter([1, height, width, 12], np.float32, name="base"))
            base = ops.transpose(inputs[0], [0, 3, 1, 2])
        if self.reads_input(index) and (index == 0 or base is None):  # segment 0 reads x beside a fed base
            inputs.append(ops.parameter([1, height, width, 4], np.float32, name="x"))
            x = ops.transpose(inputs[-1], [0, 3, 1, 2])
            if cfg.base in ENCODED_BASES:
                encoded = curve_encode(base_ops, base_ops.wrap(x))
                x = encoded.node
        if index == len(points) and cfg.base in ENCODED_BASES:
            if base is None:
                base = ops.concat([t.node for t in lmmse_demosaic(base_ops, encoded, ENCODED_BASES[cfg.base])], 1)
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
                if not cfg.attention:
                    h, k = ops.add(y, skip), k + 1
                    continue
                # every block ends at an attention point: the state is (pre, skip)
                out = ops.transpose(ops.concat([y, skip], 1), [0, 2, 3, 1])
                return ov.Model([out], inputs, f"segment_{index}")
            also = (base, "{p}.base") if cfg.base_input and g + 1 == cfg.stages else None
            y = graph.conv(h, "{p}.conv%d" % (3 * cfg.blocks), grouped=not first, branches=p, also=also)
            first = False
            h = ops.tanh(graph.conv(y, "{p}.out", prelu=False, branches=p))
            if g + 1 == cfg.stages:
                break
            g, k = g + 1, 0
        # h: (1, 12, H, W), colour c at channels 4c..4c+3 (sites R, Gr, Gb, B); so is each base
        residual = ops.multiply(h, graph.const(np.float32(OUTPUT_SCALE)))
        if base is not None:
            rgb = curve_decode(base_ops, base_ops.wrap(residual) + base_ops.wrap(base)).node
        elif cfg.base == "none":
            rgb = ops.add(residual, graph.const(np.float32(OUTPUT_SHIFT)))
        else:
            kernel = graph.const(np.transpose(base_kernel(cfg.base), (3, 2, 0, 1)))
            rgb = ops.add(residual, ops.convolution(x, kernel, [1, 1], [1, 1], [1, 1], [1, 1]))
        rgb = ops.reshape(rgb, [1, 3, 2, 2, height, width], False)
        rgb = ops.transpose(rgb, [0, 4, 2, 5, 3, 1])  # (1, H, dy, W, dx, colour)
        rgb = ops.reshape(rgb, [1, 2 * height, 2 * width, 3], False)
        return ov.Model([rgb], inputs, f"segment_{index}")

    def _head_kernel(self, index: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Attention conv ``m`` of point ``index``, all branches: a block-diagonal HWIO kernel,
        its bias and PReLU slopes (None for the last conv)."""
        g, k = self.config.attention_points[index]
        names = [f"s{g}.b{i}.att{k}.conv{m}" for i in range(BRANCHES)]
        kernels = [self.params[n + ".kernel"] for n in names]
        kh, kw, cin, cout = kernels[0].shape
        kernel = np.zeros((kh, kw, BRANCHES * cin, BRANCHES * cout), np.float32)
        for i, part in enumerate(kernels):
            kernel[:, :, i * cin:(i + 1) * cin, i * cout:(i + 1) * cout] = part
        alpha = None if m == ATTENTION_STRIDED_CONVS + 2 else np.concatenate(
            [self.params[n + ".alpha"] for n in names])
        return kernel, np.concatenate([self.params[n + ".bias"] for n in names]), alpha

    def head_sum(self, index: int, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """The attention head's strided part, summed: (sum over its outputs, their count).

        Its 3x3 convolutions have stride 3 and no padding: non-overlapping blocks, so any band
        of 27 * k rows of the map (rows counted from the map's first, columns cut to a multiple
        of 27, all that the VALID chain reads) gives its own outputs; :meth:`head_mean` finishes
        the head from the sums of all bands (bounded memory, and the tiling feeds bands as they
        become final)."""
        span = HEAD_SPAN
        kernels = [tuple(None if a is None else a.astype(np.float64) for a in self._head_kernel(index, m))
                   for m in range(ATTENTION_STRIDED_CONVS + 1)]
        _, h, w, c = samples.shape
        h, w = h // span * span, w // span * span
        total, count = np.zeros(c, np.float64), 0
        for y0 in range(0, h, span * 8):
            rows = min(h, y0 + span * 8) - y0
            # float64 products: numpy's BLAS splits a product differently with more threads, and in
            # float32 that moved outputs by a level between processes (a Dask worker, the CLI and a
            # library caller each have their own BLAS threads)
            x = samples[0, y0:y0 + rows, :w].astype(np.float64).reshape(-1, c)
            y = _prelu(x @ kernels[0][0][0, 0] + kernels[0][1], kernels[0][2])
            a, b = rows, w
            for kernel, bias, alpha in kernels[1:]:
                a, b = a // 3, b // 3  # 3x3 blocks of (a, b) pixels -> one GEMM
                blocks = y.reshape(a, 3, b, 3, c).transpose(0, 2, 1, 3, 4).reshape(a * b, 9 * c)
                y = _prelu(blocks @ kernel.reshape(9 * c, -1) + bias, alpha)
            total += y.sum(0, dtype=np.float64)
            count += y.shape[0]
        return total, count

    def head_mean(self, index: int, sums: list[tuple[np.ndarray, int]]) -> np.ndarray:
        """The attention scales (1, 1, 1, 3F) from the :meth:`head_sum` results of all bands."""
        total = np.sum([t for t, _ in sums], axis=0)
        mean = (total / sum(n for _, n in sums)).astype(np.float32)
        (k4, b4, a4), (k5, b5, _) = [self._head_kernel(index, m) for m in
                                     (ATTENTION_STRIDED_CONVS + 1, ATTENTION_STRIDED_CONVS + 2)]
        y = _prelu(mean @ k4[0, 0] + b4, a4) @ k5[0, 0] + b5
        return (1.0 / (1.0 + np.exp(-y))).astype(np.float32).reshape(1, 1, 1, -1)

    def _request(self, key: tuple, build):
        """An infer request of segment graph ``key``. Compiled graphs are kept for the frame's
        window shape only (each holds its working memory: about 55 MB for a 290x290 window);
        the graph in use has two requests, taken in turn."""
        if self._live is not None and self._live[0] == key:
            self._live[1].reverse()  # two requests in turn: a result outlives the next call
            return self._live[1][0]
        self._live = None
        compiled = self._compiled.get(key)
        if compiled is None:
            for old in [k for k in self._compiled if k[1:] != key[1:]]:  # another window shape
                del self._compiled[old]
            compiled = self._compiled[key] = self._core.compile_model(build(), "CPU", self._settings)
        elif isinstance(compiled, concurrent.futures.Future):  # compiled by prepare()
            compiled = self._compiled[key] = compiled.result()
        self._live = (key, [compiled.create_infer_request() for _ in range(2)])
        return self._live[1][0]

    # --- SegmentRunner ------------------------------------------------------------------------
    def submit(self, index, x, state=None, attention=None) -> _Running:
        """Start segment ``index`` on one window and return at once; ``.result()`` waits for it
        (the pipeline prepares the next window meanwhile, in its own thread). The result is a
        view into an output buffer of the runner, valid until the second call after this one
        (so the pipeline can post-process one window while the next runs). The inputs must not
        change until then either (they are shared, not copied)."""
        _, h, w, _ = (x if index == 0 else state).shape
        request = self._request((index, h, w), lambda: self._segment_model(index, h, w))
        feeds = [np.ascontiguousarray(x, np.float32)] if self.reads_input(index) else []
        if index > 0:
            feeds += [np.ascontiguousarray(state, np.float32),
                      np.ascontiguousarray(attention, np.float32)]
        if self._native_base(index):  # the base in place of x, or before it (segment 0 reads both)
            base = native_base(feeds[0], ENCODED_BASES[self.config.base])
            feeds = [base, *feeds] if index == 0 else [base, *feeds[1:]]
        request.start_async(feeds, share_inputs=True)
        return _Running(request, feeds)

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        """Segment ``index`` on one window (:meth:`submit` and wait)."""
        return self.submit(index, x, state, attention).result()

    def head(self, index, samples) -> np.ndarray:
        return self.head_mean(index, [self.head_sum(index, np.asarray(samples, np.float32))])


class _Running:
    """A started infer request (:meth:`OpenVINORunner.submit`); keeps its inputs alive."""

    def __init__(self, request, feeds: list[np.ndarray]):
        self._request, self._feeds = request, feeds

    def result(self) -> np.ndarray:
        self._request.wait()
        return self._request.get_output_tensor(0).data


def _prelu(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """PReLU in place: max(y, 0) + alpha * min(y, 0)."""
    negative = np.minimum(y, 0)
    np.maximum(y, 0, out=y)
    negative *= alpha
    y += negative
    return y
