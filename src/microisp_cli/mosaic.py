"""The decoded mosaic and what every input is checked against: :class:`Mosaic` (a validated
Bayer frame with its levels, white balance, colour matrix and orientation), :class:`DumpFormat`
(how to read inputs without a header), the frame-size limit (:func:`check_megapixels`), the
first look at a file (:func:`check_file`) and the grey-world white balance (:func:`grey_world`).
The readers are :mod:`dumps` (sensor dumps, ``.npy``) and :mod:`camera_raw` (LibRaw); the entry
point is ``raw.decode``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from . import defaults
from .bayer import CFA, check_cfa
from .vocabulary import clip_level
from .errors import ImageTooLargeError, InputError
from .files import open_regular

# LibRaw's flip code -> a short description (for messages and docs).
FLIPS = {0: "as stored", 3: "rotate 180", 5: "rotate 90 CCW", 6: "rotate 90 CW"}


@dataclasses.dataclass(frozen=True)
class Mosaic:
    """A Bayer mosaic and what is needed to develop it.

    - ``data``: (H, W) uint16, the visible area, one sample per pixel;
    - ``cfa``: colour order of the 2x2 cell at the top-left of ``data`` (row-major);
    - ``black``: (2, 2) float32, black level of each cell position of ``data``;
    - ``white``: the saturation level (same units as ``data``);
    - ``wb``: (3,) float32 gains for R, G, B, normalised to G = 1;
    - ``cam_to_srgb``: (3, 3) float32, white-balanced camera RGB -> linear sRGB (rows sum to 1);
    - ``orientation``: LibRaw flip code (0 as stored, 3 = 180, 5 = 90 CCW, 6 = 90 CW; bit 0 mirror
      columns, bit 1 mirror rows, bit 2 transpose);
    - ``wb_source``, ``matrix_source``, ``description``: where each came from, for reports;
    - ``daylight_wb``: LibRaw's daylight gains for the camera (G = 1), None when it has none;
    - ``wb_problem``: why the file's as-shot gains are not ``wb`` (missing, unusable), for the
      develop's one fallback line (:mod:`white_balance`); None when they are, or when the input
      has no metadata to expect (dumps).
    """

    data: np.ndarray
    cfa: CFA
    black: np.ndarray
    white: float
    wb: np.ndarray = dataclasses.field(default_factory=lambda: np.ones(3, np.float32))
    cam_to_srgb: np.ndarray = dataclasses.field(default_factory=lambda: np.eye(3, dtype=np.float32))
    orientation: int = 0
    wb_source: str = "none"
    matrix_source: str = "identity"
    description: str = ""
    daylight_wb: np.ndarray | None = None
    wb_problem: str | None = None

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.dtype != np.uint16:
            raise ValueError(f"Mosaic.data must be a 2-D uint16 array, got "
                             f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}")
        if min(data.shape) < 2:
            raise InputError(f"image too small ({data.shape[1]}x{data.shape[0]}); needs at least 2x2")
        check_cfa(self.cfa)
        black = np.asarray(self.black, np.float32)
        if black.size == 1:
            black = np.full((2, 2), float(black.reshape(-1)[0]), np.float32)
        object.__setattr__(self, "black", black.reshape(2, 2))
        if not float(self.black.max()) < float(self.white):
            raise InputError(f"white level {self.white} is not above the black level {self.black.max()}")
        wb = np.asarray(self.wb, np.float32).reshape(3)
        if not (np.all(np.isfinite(wb)) and np.all(wb > 0)):
            raise ValueError(f"white balance gains must be positive, got {wb}")
        object.__setattr__(self, "wb", wb / wb[1])
        m = np.asarray(self.cam_to_srgb, np.float32).reshape(3, 3)
        if not np.all(np.isfinite(m)):
            raise ValueError("cam_to_srgb must be finite")
        object.__setattr__(self, "cam_to_srgb", m)
        if self.orientation not in range(8):
            raise ValueError(f"orientation must be a LibRaw flip code 0..7, got {self.orientation}")

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the visible area, as stored."""
        return self.data.shape[1], self.data.shape[0]


@dataclasses.dataclass(frozen=True)
class DumpFormat:
    """How to read inputs without a header: sensor dumps and ``.npy`` mosaics.

    ``size``: (width, height) of a headerless little-endian uint16 dump (required for those);
    ``cfa``: colour order of its top-left 2x2 cell; ``bits``: significant bits per sample
    (white level ``2**bits - 1``; for ``.npy`` files, None infers 10/12/14/16 from the maximum);
    ``black``: black level to subtract.
    """

    size: tuple[int, int] | None = None
    cfa: CFA = "RGGB"
    bits: int | None = None
    black: float = 0.0

    def __post_init__(self) -> None:
        check_cfa(self.cfa)
        if self.bits is not None and not 1 <= self.bits <= 16:
            raise ValueError(f"bits must be 1..16, got {self.bits}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 2):
            raise ValueError(f"size must be (width, height) of at least 2x2, got {self.size}")
        if self.bits is not None and not 0 <= self.black < 2 ** self.bits - 1:
            raise ValueError(f"black level {self.black} must be below the white level 2**{self.bits} - 1")


def parse_size(text: str) -> tuple[int, int]:
    """``"768x512"`` -> (768, 512); ValueError with the expected form otherwise."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        w, h = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"expected WIDTHxHEIGHT such as 4000x3000, got {text!r}") from None
    if w < 2 or h < 2:
        raise ValueError(f"size must be at least 2x2, got {text!r}")
    return w, h


def check_megapixels(width: int, height: int, max_megapixels: float | None, what: str = "frame") -> None:
    """Raise :class:`ImageTooLargeError` if a ``width`` x ``height`` frame is over the limit."""
    if max_megapixels is None:
        return
    megapixels = int(width) * int(height) / 1e6
    if megapixels > max_megapixels:
        raise ImageTooLargeError(f"{what} of {int(width)}x{int(height)} ({megapixels:.1f} MP) is over the "
                                 f"{max_megapixels:g} MP limit (raise it with --max-megapixels)")


def check_file(path: Path) -> bytes:
    """The first bytes of ``path``, a non-empty regular file (never a FIFO or device: reading one
    would block or never end)."""
    if not os.path.lexists(path):
        raise InputError("no such file")
    try:
        with open_regular(path, InputError) as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(512)
    except OSError as exc:
        raise InputError(f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise InputError("empty file (0 bytes)")
    if path.suffix.lower() != ".npy" and _looks_like_text(head):
        raise InputError("a text file, not a RAW image")
    return head


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    printable = sum(c.isprintable() or c in "\r\n\t" for c in text)
    return printable >= 0.95 * len(text)


# --- white balance fallback -------------------------------------------------------------------
def unlikely_cfa(data: np.ndarray, cfa: str, black: np.ndarray, white: float,
                 step: int = 2) -> tuple[CFA, CFA] | None:
    """The two CFA orders the samples point to when ``cfa`` puts the greens on the wrong
    diagonal, else None. Greens of one 2x2 cell are nearly equal; red and blue are not: the mean
    relative difference of the pair on each diagonal (every ``step``-th cell, clipped samples
    left out) is compared, and when the pair read as red and blue differs less than
    ``defaults.CFA_CHECK_RATIO`` times the pair read as green, the tag is unlikely. The orders
    returned are ``cfa`` shifted by one column, then by one row (both put the greens there; which
    is right cannot be told from the greens alone)."""
    from .bayer import crop_cfa

    height, width = data.shape[0] - data.shape[0] % 2, data.shape[1] - data.shape[1] % 2
    black = np.broadcast_to(np.asarray(black, np.float32), (2, 2))
    top = 0.95 * (float(white) - float(black.max()))
    site = {(y, x): data[y:height:2 * step, x:width:2 * step].astype(np.float32) - black[y, x]
            for y in range(2) for x in range(2)}

    def difference(a: np.ndarray, b: np.ndarray) -> float:
        keep = (a < top) & (b < top) & (a + b > 0)
        if keep.sum() < 64:
            return float("nan")
        a, b = a[keep], b[keep]
        return float(np.abs(a - b).mean() / max(float((a + b).mean()) / 2, 1e-6))

    main, anti = difference(site[0, 0], site[1, 1]), difference(site[0, 1], site[1, 0])
    green, other = (main, anti) if cfa[0] == "G" else (anti, main)
    if not (other < defaults.CFA_CHECK_RATIO * green):  # NaN (too few samples): no verdict
        return None
    return crop_cfa(cfa, 0, 1), crop_cfa(cfa, 1, 0)  # type: ignore[arg-type]


def cfa_warning(mosaic: Mosaic, option: str) -> str | None:
    """One line for a :class:`errors.CFAPhaseWarning` when :func:`unlikely_cfa` doubts the
    mosaic's CFA order, naming ``option`` (``--force-cfa`` for camera files, ``--cfa`` for dumps)."""
    likely = unlikely_cfa(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white)
    if likely is None:
        return None
    return (f"the green samples do not sit where the CFA order {mosaic.cfa} puts them (a wrong tag?): "
            f"expect a maze pattern and a colour cast; try {option} {likely[0]} (or {likely[1]})")


def grey_world(data: np.ndarray, cfa: str, black: np.ndarray, white: float, step: int = 8) -> np.ndarray:
    """Grey-world gains (R, G, B; G = 1) from a subsample of the mosaic, clipped pixels left out.

    Reads every ``step``-th 2x2 cell only: no full-frame copy.
    """
    sums = {"R": [], "G": [], "B": []}
    for dy in range(2):
        for dx in range(2):
            samples = data[dy::2 * step, dx::2 * step].astype(np.float32)
            keep = samples < clip_level(white)
            values = samples[keep] - black[dy, dx]
            sums[cfa[2 * dy + dx]].append(float(values.mean()) if values.size else 0.0)
    means = np.array([np.mean(sums[c]) for c in "RGB"], np.float64)
    if not np.all(means > 0):
        return np.ones(3, np.float32)
    low, high = defaults.WB_GAIN_LIMITS
    return np.clip(means[1] / means, low, high).astype(np.float32)
