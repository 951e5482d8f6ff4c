"""The MicroISP network in TensorFlow: :class:`MicroISP` (the definition :mod:`model` describes,
built from a ``ModelConfig`` and its parameters) and :class:`TensorFlowOps` (the LMMSE base's
operations in TensorFlow). Used by the TensorFlow runtime, export and training; TensorFlow is
imported only when a network is built or run.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from .base_demosaic import (ENCODED_BASES, base_kernel, curve_decode, curve_encode, lmmse_demosaic,
                            packed_channel_sum, packed_kernel)
from .model import (ATTENTION_STRIDE, ATTENTION_STRIDED_CONVS, BRANCHES, FLOAT_SCOPE, OUTPUT_SCALE, OUTPUT_SHIFT,
                    ModelConfig, check_parameters, forward_segments, split_features)
from .tensorflow_import import import_tensorflow


class TensorFlowOps:
    """``base_demosaic.lmmse_demosaic``'s operations in TensorFlow. Each full-resolution map is
    held as its packed sites, (N, h, w, 4) (``base_demosaic.packed_kernel``)."""

    @staticmethod
    def mosaic(x):
        return x

    @staticmethod
    def site_mask(x, pattern):
        return np.asarray(pattern, np.float32)  # broadcasts over (N, h, w, 4)

    @staticmethod
    def conv(t, kernel):
        return TensorFlowOps.conv_stack(t, [kernel])

    @staticmethod
    def conv_stack(t, kernels):
        return import_tensorflow().nn.conv2d(t, packed_kernel(kernels), 1, "SAME")

    @staticmethod
    def channel_sum(t):
        # a 1x1 convolution: no reduce op
        return import_tensorflow().nn.conv2d(t, packed_channel_sum(t.shape[-1] // 4), 1, "SAME")

    @staticmethod
    def abs(t):
        return import_tensorflow().abs(t)

    @staticmethod
    def maximum(a, b):
        return import_tensorflow().maximum(a, b)

    @staticmethod
    def minimum(a, b):
        return import_tensorflow().minimum(a, b)

    @staticmethod
    def pow(t, exponent):
        return import_tensorflow().pow(t, exponent)


class MicroISP:
    """A MicroISP network: ``config`` plus parameters, callable on packed Bayer tensors.

    ``net(x)`` runs the whole frame; ``net.segment`` and ``net.head`` are the pieces that tiling
    and export compose. All inputs and outputs are float32 NHWC tensors.
    """

    def __init__(self, config: ModelConfig, params: Mapping[str, Any]):

        tf = import_tensorflow()

        check_parameters(config, params)
        self.config = config
        self.params = {k: v if isinstance(v, tf.Variable) else tf.constant(v, tf.float32)
                       for k, v in params.items()}
        self._base = (None if config.base == "none" or config.base in ENCODED_BASES
                      else tf.constant(base_kernel(config.base)))

    # layers
    def _conv(self, x, name, stride=1, padding="SAME", also=None):
        """Convolution ``name`` of ``x`` plus its bias; ``also``: (a second input, the name of
        its kernel), convolved and added too."""
        tf = import_tensorflow()

        y = tf.nn.conv2d(x, self.params[name + ".kernel"], stride, padding)
        if also is not None:
            y = y + tf.nn.conv2d(also[0], self.params[also[1] + ".kernel"], stride, padding)
        return tf.nn.bias_add(y, self.params[name + ".bias"])

    def _conv_prelu(self, x, name, stride=1, padding="SAME", also=None):
        tf = import_tensorflow()

        y = self._conv(x, name, stride, padding, also)
        # relu(y) - alpha * relu(-y), written as Keras' PReLU (alpha shaped (1, 1, F), negated
        # slope times relu(-y), added): the same values bit for bit, and the form the TFLite
        # converter fuses into one PRELU op.
        alpha = tf.reshape(self.params[name + ".alpha"], (1, 1, -1))
        return tf.nn.relu(y) + (-alpha) * tf.nn.relu(-y)

    # pieces
    def head(self, index: int, samples):
        """Attention point ``index`` from the stride-3 samples of its probe (N, h, w, 3F)."""
        tf = import_tensorflow()

        return tf.concat([self.head_branch(index, i, s)
                          for i, s in enumerate(split_features(samples, self.config))], axis=-1)

    def head_branch(self, index: int, i: int, features, strided: bool = False):
        """Branch ``i``'s attention scales (N, 1, 1, F) at point ``index``.

        ``features``: the branch's stride-3 samples (N, h, w, F); with ``strided`` its unsampled
        features, read by the first 1x1 convolution with stride 3 (the same samples and weights,
        so the same result: the form the published TFLite file uses, with no slicing op).
        """
        tf = import_tensorflow()

        g, k = self.config.attention_points[index]
        a = f"s{g}.b{i}.att{k}"
        stride = ATTENTION_STRIDE if strided else 1
        y = self._conv_prelu(features, f"{a}.conv0", stride=stride, padding="VALID")
        for m in range(1, ATTENTION_STRIDED_CONVS + 1):
            y = self._conv_prelu(y, f"{a}.conv{m}", stride=3, padding="VALID")
        y = tf.reduce_mean(y, axis=(1, 2), keepdims=True)
        y = self._conv_prelu(y, f"{a}.conv{ATTENTION_STRIDED_CONVS + 1}")
        return tf.sigmoid(self._conv(y, f"{a}.conv{ATTENTION_STRIDED_CONVS + 2}"))

    def segment(self, index: int, x, state=None, attention=None):
        """Run segment ``index``.

        ``x``: the packed input (N, h, w, 4) (read by segment 0 and, with a base, by the last);
        ``state``/``attention``: the previous point's state and attention scales (segments > 0).
        Returns the next point's state (N, h, w, 6F), or from the last segment the RGB image
        (N, 2h, 2w, 3).
        """
        tf = import_tensorflow()

        if index == 0:
            out = self.segment_branches(0, x)
        else:
            parts = split_features(state, self.config)
            out = self.segment_branches(index, x, parts[:BRANCHES], parts[BRANCHES:],
                                        split_features(attention, self.config))
        if index < len(self.config.attention_points):
            pres, skips = out
            return tf.concat(list(pres) + list(skips), axis=-1)
        return out

    def segment_branches(self, index: int, x, pres=None, skips=None, scales=None):
        """:meth:`segment` with the state and attention split per branch (lists of three
        (N, h, w, F) / (N, 1, 1, F) tensors), as export traces it: no slicing op.

        Returns ``(pres, skips)``, two lists of three tensors, or from the last segment the RGB
        image (N, 2h, 2w, 3).
        """
        tf = import_tensorflow()

        points = self.config.attention_points
        outs = []
        base = None  # the encoded base's packed R, G, B maps (last segment)
        if x is not None and self.config.base in ENCODED_BASES:
            with tf.name_scope(FLOAT_SCOPE):
                x = curve_encode(TensorFlowOps, x)
                if index == len(points):
                    base = lmmse_demosaic(TensorFlowOps, x, ENCODED_BASES[self.config.base])
        seen = tf.concat(base, axis=-1) if base is not None and self.config.base_input else None
        for i in range(BRANCHES):
            if index == 0:
                h, g, k = x, 0, 0
            else:
                g, k = points[index - 1]
                h, k = pres[i] * scales[i] + skips[i], k + 1
            outs.append(self._run_branch(i, g, k, h, seen))
        if index < len(points):
            return [o[0] for o in outs], [o[1] for o in outs]
        return self._finish(x, outs, base)

    def _run_branch(self, i: int, g: int, k: int, h, base=None):
        """From block ``k`` of stage ``g`` to the next attention point (pre, skip) or the end;
        ``base``: the encoded base's 12 packed channels, which the last conv reads (``base_input``)."""
        tf = import_tensorflow()

        cfg = self.config
        while True:
            p = f"s{g}.b{i}"
            if k < cfg.blocks:
                skip = self._conv_prelu(h, f"{p}.conv{3 * k}")
                y = self._conv_prelu(skip, f"{p}.conv{3 * k + 1}")
                pre = self._conv_prelu(y, f"{p}.conv{3 * k + 2}")
                if cfg.attention:
                    return pre, skip
                h, k = pre + skip, k + 1
                continue
            also = (base, f"{p}.base") if base is not None and g + 1 == cfg.stages else None
            y = self._conv_prelu(h, f"{p}.conv{3 * cfg.blocks}", also=also)
            h = tf.tanh(self._conv(y, f"{p}.out"))
            if g + 1 == cfg.stages:
                return h
            g, k = g + 1, 0

    def _finish(self, x, tanh_outputs, base=None):
        tf = import_tensorflow()

        if base is not None:  # an encoded base's packed maps (x is encoded: segment_branches)
            residuals = [t * OUTPUT_SCALE for t in tanh_outputs]
            with tf.name_scope(FLOAT_SCOPE):
                return tf.concat([tf.nn.depth_to_space(curve_decode(TensorFlowOps, r + b), 2)
                                  for r, b in zip(residuals, base)], axis=-1)
        channels = []
        for i, t in enumerate(tanh_outputs):
            # colour i's part of the base: the kernel is sliced, not the output (no slicing op)
            shift = (OUTPUT_SHIFT if self._base is None
                     else tf.nn.conv2d(x, self._base[..., 4 * i:4 * i + 4], 1, "SAME"))
            channels.append(tf.nn.depth_to_space(t * OUTPUT_SCALE + shift, 2))
        return tf.concat(channels, axis=-1)

    def __call__(self, x):
        """Whole-frame forward pass: (N, H/2, W/2, 4) -> (N, H, W, 3), float32."""
        return forward_segments(self.config, x, self.segment, self.head)

    def call_branches(self, x):
        """``__call__`` composed per branch, each head reading its features with a stride-3
        convolution: the same function, traced without slicing ops (fixed-shape TFLite export)."""
        def segment(index, x, state, scales):
            return self.segment_branches(index, x, *(state or (None, None)), scales)

        def head(index, pres):
            return [self.head_branch(index, i, p, strided=True) for i, p in enumerate(pres)]

        return forward_segments(self.config, x, segment, head, samples=lambda state: state[0])
