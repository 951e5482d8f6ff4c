"""Bayer mosaics: CFA phase, conditioning and packing, as pure functions (no rawpy, no TensorFlow).

The network reads a packed mosaic (h, w, 4) float32 whose channels are the four sites of an RGGB
cell in the order the weights manifest's :class:`~microisp_cli.weights.Conditioning` names
(``R`` = (0, 0), ``Gr`` = (0, 1), ``Gb`` = (1, 0), ``B`` = (1, 1) of the cell).

**CFA phase and odd sizes.** Every file is brought to the canonical RGGB phase and an even size by
*reflect-padding*: one row on top when the red samples sit on odd rows (GBRG, BGGR), one column on
the left when they sit on odd columns (GRBG, BGGR), one row/column at the bottom/right when the
size is then odd. Reflection about the edge sample (``x[-k] = x[k]``) keeps the colour of every
position, since the pattern repeats every two pixels. Frames smaller than the network's smallest
input are reflect-padded further at the bottom and right. The network's output is cropped back to
the visible area, so the developed photo has exactly the visible size.

Nothing here holds the frame as float32: :class:`PackedBayerSource` conditions one tile at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, Protocol, get_args

import numpy as np

#: The four Bayer orders of the top-left 2x2 cell, the type of every ``cfa`` argument.
CFA = Literal["RGGB", "BGGR", "GRBG", "GBRG"]
CFA_PATTERNS: tuple[str, ...] = get_args(CFA)
SITES: tuple[str, ...] = ("R", "Gr", "Gb", "B")
SITE_OFFSETS: dict[str, tuple[int, int]] = {"R": (0, 0), "Gr": (0, 1), "Gb": (1, 0), "B": (1, 1)}
SITE_COLOUR: dict[str, int] = {"R": 0, "Gr": 1, "Gb": 1, "B": 2}


class ConditioningLike(Protocol):
    """What packing needs from :class:`weights.Conditioning`."""

    channels: tuple[str, ...]
    black_level: bool
    scale: str | float
    white_balance: bool


class MosaicLike(Protocol):
    """What packing needs from :class:`mosaic.Mosaic` (which imports this module)."""

    data: np.ndarray
    cfa: str
    black: np.ndarray
    white: float
    wb: np.ndarray


def check_cfa(cfa: str) -> CFA:
    """``cfa`` if it is one of the four Bayer orders, else ValueError listing them."""
    if cfa not in CFA_PATTERNS:
        raise ValueError(f"cfa must be one of {', '.join(CFA_PATTERNS)}, got {cfa!r}")
    return cfa


def red_offset(cfa: CFA) -> tuple[int, int]:
    """(row, column) of the red sample inside the top-left 2x2 cell of a ``cfa`` mosaic."""
    index = check_cfa(cfa).index("R")
    return divmod(index, 2)


def crop_cfa(cfa: CFA, top: int, left: int) -> CFA:
    """The CFA order of a ``cfa`` mosaic cropped from row ``top`` and column ``left`` (an odd
    offset changes the phase: ``crop_cfa("RGGB", 0, 1) == "GRBG"``)."""
    check_cfa(cfa)
    return "".join(cfa[2 * ((r + top) % 2) + (c + left) % 2] for r in range(2) for c in range(2))  # type: ignore[return-value]


def canonical_padding(height: int, width: int, cfa: str,
                      min_size: int = 0) -> tuple[int, int, int, int]:
    """Reflect padding (top, bottom, left, right) that makes an RGGB-phase, even-sized frame.

    ``min_size``: smallest side, in packed pixels, of the padded frame (extra goes to the bottom
    and right).
    """
    top, left = red_offset(cfa)
    bottom = (height + top) % 2
    right = (width + left) % 2
    bottom += max(0, 2 * min_size - (height + top + bottom))
    right += max(0, 2 * min_size - (width + left + right))
    return top, bottom, left, right


def reflect_index(index: np.ndarray, size: int) -> np.ndarray:
    """Map indices anywhere on the line into ``0..size-1`` by repeated reflection about the end
    samples (``-k -> k``, ``size - 1 + k -> size - 1 - k``). Keeps every index's parity."""
    index = np.asarray(index)
    if size == 1:
        return np.zeros_like(index)
    period = 2 * (size - 1)
    folded = np.mod(index, period)
    return np.where(folded < size, folded, period - folded)


def cell_black(black: np.ndarray | float, top: int, left: int) -> np.ndarray:
    """Black levels (2, 2) of the stored mosaic re-indexed for the padded (canonical) frame."""
    black = np.broadcast_to(np.asarray(black, np.float32), (2, 2))
    return np.roll(black, (top, left), axis=(0, 1))


def site_gains(cfa_canonical_black: np.ndarray, white: float, wb: Sequence[float],
               conditioning: ConditioningLike) -> tuple[np.ndarray, np.ndarray]:
    """Per packed channel: the offset to subtract and the factor to multiply by.

    ``cfa_canonical_black``: (2, 2) black levels of the canonical RGGB cell.
    """
    offsets, factors = [], []
    for site in conditioning.channels:
        dy, dx = SITE_OFFSETS[site]
        black = float(cfa_canonical_black[dy, dx]) if conditioning.black_level else 0.0
        if conditioning.scale == "white":
            span = float(white) - (float(cfa_canonical_black[dy, dx]) if conditioning.black_level else 0.0)
        else:
            span = float(conditioning.scale)
        gain = float(wb[SITE_COLOUR[site]]) if conditioning.white_balance else 1.0
        offsets.append(black)
        factors.append(gain / span)
    return np.asarray(offsets, np.float32), np.asarray(factors, np.float32)


class PackedBayerSource:
    """A lazily conditioned, packed view of a Bayer mosaic; implements ``tiling.PackedSource``.

    ``data``: (H, W) uint16 mosaic in ``cfa`` order, held as is (no float copy).
    ``shape``: packed (h, w) of the padded canonical frame. ``read(y0, y1, x0, x1)`` returns
    float32 (y1 - y0, x1 - x0, 4): (sample - black) * gain / span per channel, in the channel order
    of ``conditioning``. ``crop``: (top, left, height, width) of the visible area in the
    full-resolution output of the network.
    """

    def __init__(self, data: np.ndarray, cfa: str, black: np.ndarray | float, white: float,
                 wb: Sequence[float], conditioning: ConditioningLike, min_size: int = 0):
        if data.ndim != 2:
            raise ValueError(f"data must be a 2-D mosaic, got shape {data.shape}")
        self.data = data
        self.cfa = check_cfa(cfa)
        height, width = data.shape
        top, bottom, left, right = canonical_padding(height, width, cfa, min_size)
        self.padding = (top, bottom, left, right)
        self.full_shape = (height + top + bottom, width + left + right)
        self.shape = (self.full_shape[0] // 2, self.full_shape[1] // 2)
        self.crop = (top, left, height, width)
        self.offsets, self.factors = site_gains(cell_black(black, top, left), white, wb, conditioning)
        self.sites = [SITE_OFFSETS[s] for s in conditioning.channels]

    @classmethod
    def from_mosaic(cls, mosaic: MosaicLike, conditioning: ConditioningLike,
                    min_size: int = 0) -> PackedBayerSource:
        """The source of a decoded mosaic (:class:`mosaic.Mosaic`: its samples, CFA order, black
        and white levels and white-balance gains) as ``conditioning`` asks."""
        return cls(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white, mosaic.wb, conditioning, min_size)

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        top, _, left, _ = self.padding
        height, width = self.data.shape
        rows = reflect_index(np.arange(2 * y0, 2 * y1) - top, height)
        cols = reflect_index(np.arange(2 * x0, 2 * x1) - left, width)
        inside_rows = rows[0] + len(rows) - 1 == rows[-1] and len(rows) > 0
        inside_cols = cols[0] + len(cols) - 1 == cols[-1] and len(cols) > 0
        if inside_rows and inside_cols:  # a plain slice: no gather
            block = self.data[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        else:
            block = self.data[np.ix_(rows, cols)]
        out = np.empty((y1 - y0, x1 - x0, len(self.sites)), np.float32)
        for c, (dy, dx) in enumerate(self.sites):
            plane = block[dy::2, dx::2].astype(np.float32)
            plane -= self.offsets[c]
            plane *= self.factors[c]
            out[..., c] = plane
        return out

    def read_all(self) -> np.ndarray:
        """The whole packed frame (small frames and tests only)."""
        return self.read(0, self.shape[0], 0, self.shape[1])


def pack_bayer(data: np.ndarray, cfa: str, black: np.ndarray | float, white: float,
               wb: Sequence[float], conditioning: ConditioningLike) -> np.ndarray:
    """The whole conditioned packed frame (h, w, 4) float32 of a mosaic (convenience)."""
    return PackedBayerSource(data, cfa, black, white, wb, conditioning).read_all()


def mosaic_rggb(rgb: np.ndarray, cfa: CFA = "RGGB") -> np.ndarray:
    """Sample an (H, W, 3) image into an (H, W) Bayer mosaic of order ``cfa`` (for tests and data)."""
    check_cfa(cfa)
    out = np.empty(rgb.shape[:2], rgb.dtype)
    for i, colour in enumerate(cfa):
        dy, dx = divmod(i, 2)
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(colour)]
    return out
