"""TensorFlow runtime: the network's segments and heads as ``tf.function``s on numpy arrays."""

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
        self._segments = [self._compile_segment(i) for i in range(self.config.num_segments)]
        self._heads = [tf.function(lambda s, i=i: self.net.head(i, s), reduce_retracing=True)
                       for i in range(self.config.num_segments - 1)]

    def _compile_segment(self, index: int):
        import tensorflow as tf

        if index == 0:
            return tf.function(lambda x: self.net.segment(0, x), reduce_retracing=True)
        return tf.function(lambda x, s, a: self.net.segment(index, x, s, a), reduce_retracing=True)

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        if index == 0:
            return self._segments[0](x).numpy()
        return self._segments[index](x, state, attention).numpy()

    def head(self, index, samples) -> np.ndarray:
        return self._heads[index](samples).numpy()
