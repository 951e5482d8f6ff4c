"""Tile plans: how a frame is cut into cores and the fixed-shape windows around them, for both
modes of :mod:`tiling`; the tile-size rule; the feather weights of the approximate mode.

Sizes here are packed pixels (half the output's) unless said otherwise.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from . import defaults
from .model import ModelConfig

#: Smallest tile side accepted, in output pixels (16 packed pixels). Smaller cores would spend
#: most of their time on the halo (up to 5 packed pixels per side for the published layout).
MIN_TILE_SIZE = 32


# --- tile plans ---------------------------------------------------------------------------------
def split_axis(length: int, size: int, minimum: int = 1) -> list[tuple[int, int]]:
    """``length`` split into ``ceil(length / size)`` near-equal runs (sizes differ by at most 1),
    fewer where runs would be shorter than ``minimum`` (one run if ``length`` is)."""
    if length < 1 or size < 1:
        raise ValueError(f"cannot split length {length} into pieces of {size}")
    n = max(1, min(-(-length // size), length // minimum))
    bounds = [(i * length) // n for i in range(n + 1)]
    return [(bounds[i], bounds[i + 1]) for i in range(n)]


def check_tile_size(tile_size: int | None) -> None:
    """The tile-size rule, for the library and the CLI: None (the network's own, see
    :func:`tile_size_for`), 0 (whole frame) or an even number of at least :data:`MIN_TILE_SIZE`
    output pixels; ValueError otherwise."""
    if tile_size is not None and tile_size != 0 and (tile_size < MIN_TILE_SIZE or tile_size % 2):
        raise ValueError(f"tile size must be 0 (whole frame) or an even number >= {MIN_TILE_SIZE} "
                         f"output pixels, got {tile_size}")


def tile_size_for(config: ModelConfig, tile_size: int | None) -> int:
    """``tile_size``, or for None the default of ``config``'s kind of network: a network with
    attention points keeps state between windows (``defaults.TILE_SIZE``), a one-pass network
    only pays for its windows' halo (``defaults.ONE_PASS_TILE_SIZE``)."""
    if tile_size is not None:
        return tile_size
    return defaults.TILE_SIZE if config.attention_points else defaults.ONE_PASS_TILE_SIZE


def packed_tile_size(tile_size: int) -> int:
    """The core side in packed pixels for ``tile_size`` output pixels (0: none, whole frame)."""
    check_tile_size(tile_size)
    return tile_size // 2


def fixed_windows(length: int, core: int, halo: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(core run, window run) pairs along one axis, every window of one size.

    Cores split ``length`` as :func:`split_axis`, none shorter than ``2 * halo + 2`` (so only
    neighbouring windows overlap, which the exact scheme relies on); each window is the largest
    core plus ``halo`` on both sides (at most ``length``), centred on its core and moved inwards at the frame border
    instead of clipped, so it always holds the core plus at least ``halo`` of context (or the frame
    edge, where SAME padding is the whole frame's own): one shape for a fixed-shape engine.
    """
    runs = split_axis(length, core, minimum=2 * halo + 2)
    size = max(b - a for a, b in runs) + 2 * halo
    return [((a, b), _fixed_window(a, b, size, length)) for a, b in runs]


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """The exact scheme's windows over a frame: ``rows`` and ``cols``, (core run, window run)
    pairs of :func:`fixed_windows` along each axis; ``size``, the one window shape (height,
    width); ``core_y``, the cores' height (shorter than ``core`` where a band of the frame's width
    would map more than ``defaults.STATE_BAND_BYTES`` of state); ``segments``, the network's."""

    rows: list[tuple[tuple[int, int], tuple[int, int]]]
    cols: list[tuple[tuple[int, int], tuple[int, int]]]
    size: tuple[int, int]
    core_y: int
    segments: int

    @property
    def total(self) -> int:
        """Windows run over the whole frame, every segment."""
        return self.segments * len(self.rows) * len(self.cols)


def plan_windows(config: ModelConfig, shape: tuple[int, int], core: int, state_dtype) -> WindowPlan:
    """The :class:`WindowPlan` of a frame of ``shape`` (packed) for cores of ``core`` (at least
    ``2 * halo + 2``: only neighbouring windows overlap) and a state of ``state_dtype``."""
    h, w = shape
    n = config.num_segments
    halo = max(config.segment_radius(i) for i in range(n))
    core = max(core, 2 * halo + 2)
    row_bytes = w * config.state_channels * np.dtype(state_dtype).itemsize
    core_y = max(2 * halo + 2, min(core, defaults.STATE_BAND_BYTES // row_bytes - 2 * halo))
    rows, cols = fixed_windows(h, core_y, halo), fixed_windows(w, core, halo)
    size = (rows[0][1][1] - rows[0][1][0], cols[0][1][1] - cols[0][1][0])
    return WindowPlan(rows, cols, size, core_y, n)


def feather_weights(length: int, lead: int, trail: int) -> np.ndarray:
    """1-D blend weights over a window of ``length``: ramps over ``lead`` and ``trail`` pixels.

    The window overlaps its neighbour by ``lead`` (before) and ``trail`` (after) pixels on each
    side of the shared core boundary, i.e. ramps span ``2 * lead`` and ``2 * trail``. The ramps of
    two neighbours sum to 1 at every pixel.
    """
    weights = np.ones(length, np.float32)
    if lead:
        weights[:2 * lead] = (np.arange(2 * lead, dtype=np.float32) + 0.5) / (2 * lead)
    if trail:
        weights[length - 2 * trail:] = (np.arange(2 * trail, 0, -1, dtype=np.float32) - 0.5) / (2 * trail)
    return weights


def _fixed_window(lo: int, hi: int, size: int, length: int) -> tuple[int, int]:
    """A run of ``size`` (at most ``length``) centred on [lo, hi), shifted inside [0, length)."""
    size = min(size, length)
    start = min(max(0, (lo + hi - size) // 2), length - size)
    return start, start + size
