"""TensorFlow runtime: the network's segments and heads as ``tf.function``s on numpy arrays.

Every function is traced once, with a fixed input signature whose spatial dimensions are ``None``:
tiles of any shape (border tiles are smaller) reuse the same graph instead of retracing. Heads run
branch by branch, to bound their memory (they read a map of the whole frame).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from ..model import BRANCHES, ModelConfig, split_features
from ..network import MicroISP
from ..tensorflow_import import import_tensorflow
from .base import SegmentRunner


class TensorFlowRunner(SegmentRunner):
    """Runs the pieces of :class:`model.MicroISP` ``(config, params)`` with TensorFlow (CPU)."""

    def __init__(self, config: ModelConfig, params: Mapping[str, Any], threads: int | None = None):
        tf = import_tensorflow()

        if threads:
            try:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            except RuntimeError:  # TensorFlow already initialised in this process
                pass
        self.config = config
        self.net = MicroISP(config, params)
        cfg = self.config
        x_spec = tf.TensorSpec([1, None, None, 4], tf.float32)
        state_spec = tf.TensorSpec([1, None, None, cfg.state_channels], tf.float32)
        att_spec = tf.TensorSpec([1, 1, 1, cfg.probe_channels], tf.float32)
        branch_spec = tf.TensorSpec([1, None, None, cfg.features], tf.float32)
        # functools.partial, not lambdas: TensorFlow counts traces per code object, and a dozen
        # functions each traced once would otherwise be reported as "excessive retracing".
        self._segments = [
            tf.function(partial(self.net.segment, 0), input_signature=[x_spec])
        ] + [
            tf.function(partial(self.net.segment, i), input_signature=[x_spec, state_spec, att_spec])
            for i in range(1, cfg.num_segments)
        ]
        # One function per head and branch, called one after the other: the head reads the whole
        # 1/9-size map, and its first layers' temporaries (several map-sized tensors per branch)
        # would otherwise all be alive at once, three branches in parallel.
        self._heads = [[tf.function(partial(self.net.head_branch, i, b), input_signature=[branch_spec])
                        for b in range(BRANCHES)]
                       for i in range(cfg.num_segments - 1)]

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        # np.asarray shares the tensor's buffer; .numpy() would copy every state tile
        if index == 0:
            return np.asarray(self._segments[0](x))
        return np.asarray(self._segments[index](x, state, attention))

    def head(self, index, samples) -> np.ndarray:
        parts = split_features(samples, self.config)
        return np.concatenate([fn(np.ascontiguousarray(part, np.float32)).numpy()
                               for part, fn in zip(parts, self._heads[index])], axis=-1)
