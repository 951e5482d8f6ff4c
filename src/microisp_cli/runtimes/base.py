"""What a runtime provides to the tiled pipeline: the network's segments and attention heads.

A runtime runs one piece of the network on numpy arrays and does nothing else. Arrays are NHWC
float32 with N = 1; see ``model.py`` for the meaning of ``state`` and ``attention``.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..model import ModelConfig


class SegmentRunner(Protocol):
    config: ModelConfig

    def segment(self, index: int, x: np.ndarray, state: np.ndarray | None,
                attention: np.ndarray | None) -> np.ndarray:
        """Segment ``index`` on a tile: the next state, or RGB (1, 2h, 2w, 3) from the last."""

    def head(self, index: int, samples: np.ndarray) -> np.ndarray:
        """Attention point ``index`` from its stride-3 probe samples: (1, 1, 1, 3F)."""
