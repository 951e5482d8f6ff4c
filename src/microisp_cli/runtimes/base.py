"""What a runtime provides to the tiled pipeline: the network's segments and attention heads.

A runtime runs one piece of the network on numpy arrays and does nothing else. Arrays are NHWC
float32 with N = 1; see ``model.py`` for the meaning of ``state`` and ``attention``.

Every runtime subclasses :class:`SegmentRunner`: it must give ``config``, :meth:`segment` and
:meth:`head`; the optional capabilities are declared here with the defaults that mean "not
provided", so that the tiling asks the runner (``runner.asynchronous``) instead of probing it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ..model import ModelConfig


class Running(Protocol):
    """A window started by :meth:`SegmentRunner.submit`."""

    def result(self) -> np.ndarray:
        """Wait for the window: what :meth:`SegmentRunner.segment` would have returned."""


class SegmentRunner:
    """The base of every runtime (``OpenVINORunner``, ``TensorFlowRunner``, ``LiteRTRunner``)."""

    config: ModelConfig
    #: :meth:`submit` starts a window and returns at once (else the tiling runs :meth:`segment`
    #: in a thread of its own, so that it can prepare the next window meanwhile).
    asynchronous: bool = False
    #: :meth:`head_sum` and :meth:`head_mean` take the head's input band by band, as its rows
    #: become final (else :meth:`head` gets the whole map at the end).
    incremental_heads: bool = False

    def segment(self, index: int, x: np.ndarray | None, state: np.ndarray | None,
                attention: np.ndarray | None) -> np.ndarray:
        """Segment ``index`` on a tile: the next state, or RGB (1, 2h, 2w, 3) from the last."""
        raise NotImplementedError

    def head(self, index: int, samples: np.ndarray) -> np.ndarray:
        """Attention point ``index`` from its stride-3 probe samples: (1, 1, 1, 3F)."""
        raise NotImplementedError

    def reads_input(self, index: int) -> bool:
        """Whether segment ``index`` reads the packed input ``x`` (default: every segment is given it)."""
        return True

    def prepare(self, keys: list[tuple[int, int, int]]) -> None:
        """Get ready to run these (segment, window height, window width), e.g. compile them in
        the background (default: nothing to prepare)."""

    def submit(self, index: int, x: np.ndarray | None, state: np.ndarray | None,
               attention: np.ndarray | None) -> Running:
        """Start :meth:`segment` and return at once (only where :attr:`asynchronous`)."""
        raise NotImplementedError(f"{type(self).__name__} is not asynchronous")

    def head_sum(self, index: int, samples: np.ndarray) -> tuple[np.ndarray, int]:
        """The head's strided part over a band of whole blocks, summed (only where
        :attr:`incremental_heads`)."""
        raise NotImplementedError(f"{type(self).__name__} has no incremental heads")

    def head_mean(self, index: int, sums: list[tuple[np.ndarray, int]]) -> np.ndarray:
        """The attention scales from the :meth:`head_sum` of every band (only where
        :attr:`incremental_heads`)."""
        raise NotImplementedError(f"{type(self).__name__} has no incremental heads")
