"""Running the network over a frame: tile plans and the attention scheme, over any runner.

FIRST VERSION: whole-frame only (one tile). The exact tiled scheme replaces the body of
``run_tiled``; its interface stays.

Interfaces:
- ``source``: ``.shape`` -> (h, w) packed size; ``.read(y0, y1, x0, x1)`` -> float32
  (y1 - y0, x1 - x0, 4), the conditioned packed input (reads stay inside the frame).
- ``sink(y, x, rgb)``: receives float32 RGB (h, w, 3) for output pixels starting at full-resolution
  row ``y``, column ``x``.
- ``progress(done, total)``: optional callback, called as tiles complete.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from . import defaults
from .model import probe_samples
from .runtimes.base import SegmentRunner


class PackedSource(Protocol):
    shape: tuple[int, int]

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray: ...


Sink = Callable[[int, int, np.ndarray], None]
Progress = Callable[[int, int], None]


class ArraySource:
    """A packed array (h, w, 4) float32 as a source."""

    def __init__(self, packed: np.ndarray):
        self.packed = np.asarray(packed, np.float32)
        self.shape = self.packed.shape[:2]

    def read(self, y0, y1, x0, x1):
        return self.packed[y0:y1, x0:x1]


def run_tiled(runner: SegmentRunner, source: PackedSource, sink: Sink,
              tile_size: int = defaults.TILE_SIZE, attention: str = defaults.ATTENTION,
              progress: Progress | None = None) -> None:
    """Run the network over ``source`` and hand every output tile to ``sink``."""
    h, w = source.shape
    x = source.read(0, h, 0, w)[None]
    state = att = None
    n = runner.config.num_segments
    for index in range(n - 1):
        state = runner.segment(index, x, state, att)
        att = runner.head(index, np.ascontiguousarray(probe_samples(state, runner.config)))
    sink(0, 0, runner.segment(n - 1, x, state, att)[0])
    if progress:
        progress(1, 1)


def run_array(runner: SegmentRunner, packed: np.ndarray, tile_size: int = defaults.TILE_SIZE,
              attention: str = defaults.ATTENTION, progress: Progress | None = None) -> np.ndarray:
    """Convenience: packed (h, w, 4) float32 -> RGB (2h, 2w, 3) float32."""
    h, w = packed.shape[:2]
    out = np.empty((2 * h, 2 * w, 3), np.float32)

    def sink(y, x, rgb):
        out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = rgb

    run_tiled(runner, ArraySource(packed), sink, tile_size, attention, progress)
    return out
