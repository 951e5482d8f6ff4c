"""TensorFlow runtime: the network's segments and heads as ``tf.function``s on numpy arrays.

Every function is traced once, with a fixed input signature whose spatial dimensions are ``None``:
tiles of any shape (border tiles are smaller) reuse the same graph instead of retracing.
"""

from __future__ import annotations

import numpy as np

from ..weights import Weights


class TensorFlowRunner:
    """Runs :class:`model.MicroISP` pieces with TensorFlow (CPU). Implements ``SegmentRunner``."""

    def __init__(self, weights: Weights, threads: int | None = None):
        import tensorflow as tf

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already initialised in this process
                pass
        self.config = weights.config
        self.net = weights.build()
        cfg = self.config
        x_spec = tf.TensorSpec([1, None, None, 4], tf.float32)
        state_spec = tf.TensorSpec([1, None, None, cfg.state_channels], tf.float32)
        att_spec = tf.TensorSpec([1, 1, 1, cfg.probe_channels], tf.float32)
        probe_spec = tf.TensorSpec([1, None, None, cfg.probe_channels], tf.float32)
        self._segments = [
            tf.function(lambda x: self.net.segment(0, x), input_signature=[x_spec])
        ] + [
            tf.function(lambda x, s, a, i=i: self.net.segment(i, x, s, a),
                        input_signature=[x_spec, state_spec, att_spec])
            for i in range(1, cfg.num_segments)
        ]
        self._heads = [tf.function(lambda s, i=i: self.net.head(i, s), input_signature=[probe_spec])
                       for i in range(cfg.num_segments - 1)]

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        if index == 0:
            return self._segments[0](x).numpy()
        return self._segments[index](x, state, attention).numpy()

    def head(self, index, samples) -> np.ndarray:
        return self._heads[index](samples).numpy()
