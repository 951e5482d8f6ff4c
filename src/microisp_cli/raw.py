"""Decoding: a RAW file or a sensor dump -> a validated :class:`Mosaic`. The only rawpy import.

Three kinds of input:

- camera RAW files in any format LibRaw reads (DNG, CR2, NEF, ARW, RAF, RW2, KDC, ...), through
  rawpy;
- headerless sensor dumps: little-endian uint16 samples, one per pixel, row after row, described
  by a :class:`DumpFormat` (``--raw-size WxH --cfa RGGB --bits-per-sample 14`` in the CLI);
- ``.npy`` mosaics: a 2-D Bayer array, or a packed (H/2, W/2, 4) array whose channels are the
  sites of one RGGB-ordered 2x2 cell (``R``, ``Gr``, ``Gb``, ``B`` = ``[0::2, 0::2]``,
  ``[0::2, 1::2]``, ``[1::2, 0::2]``, ``[1::2, 1::2]``), as phone RAW data sets store them.

Metadata and its fallbacks (documented in docs/cli.md):

- white balance: the as-shot gains; else LibRaw's daylight gains; else grey-world gains
  measured on the mosaic (a gain set counts as missing when R and B are 0 or all are equal). A gain
  set that is present but non-finite, not positive or outside ``defaults.WB_GAIN_LIMITS`` is
  skipped; a camera file that falls back (gains missing or skipped) gets one
  :class:`WhiteBalanceFallback` warning naming the gains used; grey-world gains are clipped to
  those limits; LibRaw's daylight gains are kept (``Mosaic.daylight_wb``) for ``--wb daylight``;
- camera -> sRGB matrix: the file's DNG ColorMatrix as LibRaw turns it into ``color_matrix``;
  else LibRaw's table for the camera (``rgb_xyz_matrix``); else the identity. A matrix that is
  non-finite, singular or extreme (see :func:`matrix_problem`) is skipped with a warning, and a
  camera file without any matrix gets one too;
- orientation: LibRaw's ``sizes.flip`` (0 for dumps and ``.npy``).

Hostile files (docs/robustness.md): a frame larger than ``max_megapixels`` is refused from its
header, before any pixel memory is allocated; black levels at or above the white level are an
:class:`InputError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path


import numpy as np

from . import defaults
from .bayer import CFA, CFA_PATTERNS
from .colour import cam_to_srgb_from_xyz, matrix_problem, normalise_rows, rgb_gains
from .errors import (ImageTooLargeError, InputError, MicroISPWarning, UnsupportedSensorError,
                     WhiteBalanceFallback)
from .files import npy_header, npy_shaped, open_regular


#: File extensions LibRaw reads (lower case, with the dot); directories are scanned for these.
RAW_EXTENSIONS = frozenset(
    "." + e for e in (
        "3fr ari arw bay cap cr2 cr3 crw data dcr dcs dng drf eip erf fff gpr iiq k25 kdc mdc "
        "mef mos mrw nef nrw orf pef ptx pxn r3d raf raw rw2 rwl rwz sr2 srf srw sti x3f"
    ).split()
)
#: Extensions of sensor dumps (besides ``.raw``, which is also a camera format).
DUMP_EXTENSIONS = frozenset({".npy", ".bin", ".u16"})
INPUT_EXTENSIONS = RAW_EXTENSIONS | DUMP_EXTENSIONS

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
    - ``daylight_wb``: LibRaw's daylight gains for the camera (G = 1), None when it has none.
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

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, np.ndarray) or data.ndim != 2 or data.dtype != np.uint16:
            raise ValueError(f"Mosaic.data must be a 2-D uint16 array, got "
                             f"{getattr(data, 'dtype', type(data))} {getattr(data, 'shape', '')}")
        if min(data.shape) < 2:
            raise InputError(f"image too small ({data.shape[1]}x{data.shape[0]}); needs at least 2x2")
        if self.cfa not in CFA_PATTERNS:
            raise ValueError(f"cfa must be one of {', '.join(CFA_PATTERNS)}, got {self.cfa!r}")
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
        if self.cfa not in CFA_PATTERNS:
            raise ValueError(f"cfa must be one of {', '.join(CFA_PATTERNS)}, got {self.cfa!r}")
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


# --- entry point ------------------------------------------------------------------------------
def decode(path: str | Path, dump: DumpFormat | None = None,
           max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """Read ``path`` into a :class:`Mosaic`.

    ``.npy`` files are read as mosaics; with ``dump.size`` set, any other file is read as a
    headerless uint16 dump; everything else goes to LibRaw.
    ``max_megapixels``: largest frame accepted (None: no limit), checked against the size the
    file declares before its pixels are read.
    Raises :class:`InputError` (unreadable, empty, truncated, not a RAW),
    :class:`ImageTooLargeError` (over ``max_megapixels``) or :class:`UnsupportedSensorError`
    (not a 2x2 Bayer mosaic). Fallbacks for unusable metadata are reported as
    :class:`MicroISPWarning` warnings.
    """
    path = Path(path)
    head = _check_file(path)
    dump = dump or DumpFormat()
    if path.suffix.lower() == ".npy":
        return read_npy(path, dump, max_megapixels)
    if not has_raw_header(head):
        if dump.size is not None:
            return read_dump(path, dump, max_megapixels)
        if path.suffix.lower() in HEADERLESS_EXTENSIONS:
            raise InputError("no file header: a headerless sensor dump needs --raw-size WxH "
                             "(with --cfa and --bits-per-sample)")
    return read_raw(path, max_megapixels)


def check_megapixels(width: int, height: int, max_megapixels: float | None, what: str = "frame") -> None:
    """Raise :class:`ImageTooLargeError` if a ``width`` x ``height`` frame is over the limit."""
    if max_megapixels is None:
        return
    megapixels = int(width) * int(height) / 1e6
    if megapixels > max_megapixels:
        raise ImageTooLargeError(f"{what} of {int(width)}x{int(height)} ({megapixels:.1f} MP) is over the "
                                 f"{max_megapixels:g} MP limit (raise it with --max-megapixels)")


#: Extensions under which sensor dumps come; without a known header these are never guessed by
#: LibRaw (it would pick a camera by the file size alone).
HEADERLESS_EXTENSIONS = frozenset({".raw", ".bin", ".u16"})

#: Leading bytes of the RAW containers LibRaw reads (TIFF-based, Panasonic, Olympus, Fuji, Canon
#: CRW/CR3, Minolta, Foveon, ARRI, Phase One, Sinar, RED, ...).
_MAGICS = (b"II*\0", b"MM\0*", b"IIU\0", b"IIRO", b"IIRS", b"FUJIFILM", b"ARRI", b"FOVb",
           b"\0MRM", b"IIII", b"RIFF", b"\xff\xd8", b"BR", b"RED", b"PWAD", b"\0\0\0\x18ftyp",
           b"\0\0\0\x1cftyp", b"\0\0\0 ftyp", b"ftyp")


def has_raw_header(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts like a RAW container LibRaw knows."""
    return head.startswith(_MAGICS) or head[6:14] == b"HEAPCCDR" or head[4:8] == b"ftyp"


def _check_file(path: Path) -> bytes:
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


# --- headerless dumps and .npy ----------------------------------------------------------------
def read_dump(path: Path, fmt: DumpFormat, max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """A headerless little-endian uint16 dump of ``fmt.size`` pixels."""
    assert fmt.size is not None
    w, h = fmt.size
    check_megapixels(w, h, max_megapixels, "a dump")
    expected = 2 * w * h
    actual = path.stat().st_size
    if actual != expected:
        what = "truncated" if actual < expected else "larger than expected"
        raise InputError(f"{what}: a {w}x{h} uint16 dump has {expected} bytes, the file {actual}")
    data = np.fromfile(path, dtype="<u2").reshape(h, w).astype(np.uint16, copy=False)
    bits = fmt.bits if fmt.bits is not None else _infer_bits(data)
    return _dump_mosaic(data, fmt, bits, f"{w}x{h} uint16 dump, {fmt.cfa}, {bits}-bit")


def read_npy(path: Path, fmt: DumpFormat, max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """A ``.npy`` mosaic: (H, W) Bayer in ``fmt.cfa`` order, or packed (H/2, W/2, 4) R, Gr, Gb, B.

    Integer arrays are taken as raw counts; float arrays with a maximum of at most 1 as a
    fraction of full scale (mapped to 16 bits). Shape, type and size are checked from the header
    (:func:`check_npy_header`) before any sample is read.
    """
    try:
        with open_regular(path, InputError) as f:
            shape, fortran, dtype = npy_header(f)
            check_npy_header(shape, dtype, os.fstat(f.fileno()).st_size - f.tell(), max_megapixels)
            array = npy_shaped(np.fromfile(f, dtype, math.prod(shape)), shape, fortran)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})") from None
    except MemoryError:
        raise InputError("not enough memory to read the array") from None
    if array.ndim == 3 and array.shape[2] == 4:
        packed = array
        array = np.empty((2 * packed.shape[0], 2 * packed.shape[1]), packed.dtype)
        for c, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            array[dy::2, dx::2] = packed[..., c]
        kind = f"packed {packed.shape[0]}x{packed.shape[1]}x4 (R, Gr, Gb, B)"
        fmt = dataclasses.replace(fmt, cfa="RGGB")
    else:
        kind = f"{array.shape[1]}x{array.shape[0]} Bayer"
    if array.dtype.kind == "f":
        top = float(np.nanmax(array)) if array.size else 0.0
        if not np.all(np.isfinite(array)) or np.nanmin(array) < 0:
            raise InputError("float mosaic with negative or non-finite values")
        if top <= 1.0:
            array, bits = np.round(array * 65535.0).astype(np.uint16), 16
        else:
            array, bits = np.round(array).clip(0, 65535).astype(np.uint16), None
    else:
        if array.min() < 0 or array.max() > 65535:
            raise InputError("integer mosaic with values outside 0..65535")
        array, bits = array.astype(np.uint16), None
    bits = fmt.bits if fmt.bits is not None else bits if bits is not None else _infer_bits(array)
    return _dump_mosaic(np.ascontiguousarray(array), fmt, bits, f".npy {kind}, {fmt.cfa}, {bits}-bit")


def check_npy_header(shape: tuple[int, ...], dtype: np.dtype, data_bytes: int,
                     max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> None:
    """Refuse a ``.npy`` mosaic from what its header declares, before any sample is read: a
    layout other than (H, W) Bayer or (H/2, W/2, 4) packed, an empty array, a type other than
    integers and floats, a frame over ``max_megapixels``, fewer bytes than declared."""
    if len(shape) == 3 and shape[2] == 3:
        raise UnsupportedSensorError(f"unsupported sensor layout: {shape} array is RGB "
                                     "(already demosaiced), not a Bayer mosaic")
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 4)):
        raise UnsupportedSensorError(f"unsupported sensor layout: array of shape {shape}; "
                                     "expected (H, W) Bayer or (H/2, W/2, 4) packed")
    if min(shape) <= 0:
        raise InputError(f"empty array of shape {shape}: no pixels")
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise InputError(f"unsupported array type {dtype}; expected integers or floats")
    scale = 2 if len(shape) == 3 else 1
    check_megapixels(shape[1] * scale, shape[0] * scale, max_megapixels, "a .npy mosaic")
    declared = math.prod(shape) * dtype.itemsize
    if data_bytes < declared:
        raise InputError(f"truncated: the header declares {shape} {dtype} ({declared} bytes), "
                         f"the file holds {max(data_bytes, 0)}")


def _infer_bits(data: np.ndarray) -> int:
    top = int(data.max()) if data.size else 0
    return next(b for b in (8, 10, 12, 14, 16) if top < 2 ** b)


def _dump_mosaic(data: np.ndarray, fmt: DumpFormat, bits: int, description: str) -> Mosaic:
    if int(data.max()) == int(data.min()):
        raise InputError(f"no image: every sample is {int(data.max())}")
    white = float(2 ** bits - 1)
    if fmt.black >= white:
        raise InputError(f"black level {fmt.black} is not below the white level {white:g}")
    gains = grey_world(data, fmt.cfa, np.full((2, 2), fmt.black, np.float32), white)
    return Mosaic(data=data, cfa=fmt.cfa, black=np.full((2, 2), fmt.black, np.float32), white=white,
                  wb=gains, wb_source="grey world", matrix_source="identity (no colour metadata)",
                  description=description)


# --- white balance fallback -------------------------------------------------------------------
def grey_world(data: np.ndarray, cfa: str, black: np.ndarray, white: float, step: int = 8) -> np.ndarray:
    """Grey-world gains (R, G, B; G = 1) from a subsample of the mosaic, clipped pixels left out.

    Reads every ``step``-th 2x2 cell only: no full-frame copy.
    """
    sums = {"R": [], "G": [], "B": []}
    for dy in range(2):
        for dx in range(2):
            samples = data[dy::2 * step, dx::2 * step].astype(np.float32)
            keep = samples < 0.98 * white
            values = samples[keep] - black[dy, dx]
            sums[cfa[2 * dy + dx]].append(float(values.mean()) if values.size else 0.0)
    means = np.array([np.mean(sums[c]) for c in "RGB"], np.float64)
    if not np.all(means > 0):
        return np.ones(3, np.float32)
    low, high = defaults.WB_GAIN_LIMITS
    return np.clip(means[1] / means, low, high).astype(np.float32)


# --- camera RAW through rawpy -----------------------------------------------------------------
@contextlib.contextmanager
def _captured_stderr() -> Iterator[list[str]]:
    """Collect what C code (LibRaw) prints on file descriptor 2 while the block runs."""
    lines: list[str] = []
    try:
        saved = os.dup(2)
    except OSError:
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            lines += [ln.split(": ", 1)[-1].strip() for ln in text.splitlines() if ln.strip()]


def read_raw(path: Path, max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """A camera RAW file through LibRaw (rawpy), validated as a 2x2 Bayer mosaic.

    What LibRaw prints on stderr while it reads (e.g. "Unexpected end of file") is kept out of
    the terminal and added to the error message instead. The frame size the header declares is
    checked against ``max_megapixels`` and against the file size before LibRaw unpacks the
    pixels; pixel data that ends early (a truncated file) is an :class:`InputError`.
    """
    import rawpy

    tags = tiff_tags(path)
    if tags is not None and not any(t in tags for t in _CAMERA_TAGS):
        raise InputError("a plain TIFF image (no CFA, DNG or camera metadata), not a camera RAW")
    libraw_errors = (rawpy.LibRawError, rawpy.NotSupportedError)
    error: Exception | None = None
    mosaic: Mosaic | None = None
    notes: list = []  # messages, or (message, warning category)
    with _captured_stderr() as messages, contextlib.ExitStack() as stack:
        try:
            source = str(path)
            if not _utf8(source):  # rawpy hands LibRaw names as UTF-8: give it the file instead
                source = stack.enter_context(open_regular(path, InputError))
            with rawpy.imread(source) as raw:
                _check_declared_size(raw, path, max_megapixels)
                raw.unpack()
                mosaic = _mosaic_from_rawpy(raw, path, rawpy, messages, notes, tags or {})
        except libraw_errors as exc:
            error = exc
        except MemoryError:
            raise InputError("not enough memory to decode it") from None
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror or exc})") from None
    if mosaic is None:
        raise InputError(_libraw_message(error, messages, rawpy)) from None
    if any("end of file" in m.lower() for m in messages):
        raise InputError("truncated: the pixel data ends before the end of the frame "
                         "(LibRaw: Unexpected end of file)")
    corrupt = [m for m in messages if m.lower().startswith("corrupt data")]
    if corrupt:
        notes.append(f"LibRaw reports {corrupt[0][0].lower() + corrupt[0][1:]}: the image may show artefacts")
    for note in notes:  # outside the captured stderr: shown or recorded by the caller's filters
        message, category = note if isinstance(note, tuple) else (note, MicroISPWarning)
        warnings.warn(message, category, stacklevel=3)
    return mosaic


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a file name with bytes that are not UTF-8 (surrogate escapes)
        return False
    return True


#: TIFF tags that make a TIFF-based file a camera RAW: Make, DNGVersion, CFAPattern.
_CAMERA_TAGS = (271, 50706, 33422)
_T_CFA_PATTERN, _T_CFA_PLANE_COLOR, _T_SAMPLE_FORMAT = 33422, 50710, 339
#: DNG CFAPlaneColor codes.
_PLANE_COLOURS = "RGBCMYW"


def tiff_tags(path: Path) -> dict[int, object] | None:
    """The tags of a TIFF-based file's first IFD, updated with those of the first SubIFD that
    holds a CFA (a DNG's raw image); None when it is not a TIFF that tifffile can parse (LibRaw
    then decides). Never prints: tifffile's log messages and warnings are silenced."""
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    disabled, log.disabled = log.disabled, True
    try:
        with warnings.catch_warnings(), tifffile.TiffFile(path) as tif:
            warnings.simplefilter("ignore")
            page = tif.pages.first
            tags = {tag.code: tag.value for tag in page.tags}
            for sub in (page.pages or [])[:8]:
                if _T_CFA_PATTERN in sub.tags:
                    tags.update({tag.code: tag.value for tag in sub.tags})
                    break
            return tags
    except Exception:  # tifffile raises many kinds on files that are not (valid) TIFF
        return None
    finally:
        log.disabled = disabled


def _cfa_letters(tags: dict[int, object]) -> str | None:
    """The colours of the file's CFAPattern (``RGCB``...), through its CFAPlaneColor."""
    pattern, planes = tags.get(_T_CFA_PATTERN), tags.get(_T_CFA_PLANE_COLOR, b"\0\1\2")
    if not isinstance(pattern, bytes) or not isinstance(planes, bytes):
        return None
    colour = [_PLANE_COLOURS[c] if c < len(_PLANE_COLOURS) else "?" for c in planes]
    return "".join(colour[i] if i < len(colour) else "?" for i in pattern)


def _check_declared_size(raw, path: Path, max_megapixels: float | None) -> None:
    """Refuse a frame the header declares too large for the limit or for the file's size."""
    sizes = raw.sizes
    width, height = max(sizes.raw_width, sizes.width), max(sizes.raw_height, sizes.height)
    check_megapixels(width, height, max_megapixels, "the declared frame")
    if width * height == 0:
        raise InputError("no pixel data: the file declares an empty frame")
    size = path.stat().st_size
    if 8.0 * size / (width * height) < 0.25:
        raise InputError(f"pixel data missing or stripped ({size} bytes for the declared "
                         f"{width}x{height} frame)")


def _libraw_message(exc: Exception, messages: list[str], rawpy) -> str:
    detail = "; ".join(dict.fromkeys(m for m in messages if m))
    text = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        cause = "not a RAW file LibRaw can read"
    elif isinstance(exc, rawpy.LibRawIOError):
        cause = "truncated or unreadable RAW file"
    elif isinstance(exc, rawpy.LibRawDataError):
        cause = "corrupt or missing pixel data"
    elif isinstance(exc, rawpy.LibRawTooBigError):
        cause = "image too large for LibRaw"
    else:
        cause = f"LibRaw cannot decode it ({type(exc).__name__})"
    extra = detail or text
    return f"{cause} ({extra})" if extra and extra.lower() not in cause else cause


def _mosaic_from_rawpy(raw, path: Path, rawpy, messages: list[str], notes: list,
                       tags: dict[int, object]) -> Mosaic:
    sizes = raw.sizes
    desc = bytes(raw.color_desc).decode("ascii", "replace").rstrip("\x00")
    make = f"{path.suffix.lstrip('.').upper()} {sizes.width}x{sizes.height}"
    try:
        pattern = raw.raw_pattern
    except NotImplementedError as exc:  # rawpy cannot describe LibRaw's "filters" value
        raise UnsupportedSensorError(f"unsupported sensor layout: {make} has a colour filter layout "
                                     f"that cannot be read as a pattern ({exc})") from None
    # --- the sensor layout ------------------------------------------------------------------
    if raw.raw_type != rawpy.RawType.Flat:
        raise UnsupportedSensorError(
            f"unsupported sensor layout: {make} holds {raw.num_colors} colour values per pixel "
            "(linear/demosaiced DNG or a Foveon-type sensor), not a Bayer mosaic")
    if raw.num_colors == 1 or desc[:1] in ("", "\x00") or pattern is None:
        raise UnsupportedSensorError(f"unsupported sensor layout: {make} is monochrome (no colour filter array)")
    if set(desc) - set("RGB"):
        letters = _cfa_letters(tags)
        shown = f"{letters} (its CFAPattern)" if letters else f"{desc} (as LibRaw reads it)"
        raise UnsupportedSensorError(f"unsupported sensor layout: {make} has a colour filter array "
                                     f"of {shown}, not red, green and blue alone")
    pattern = np.asarray(pattern)
    if pattern.size == 0 or pattern.min() < 0 or pattern.max() >= min(len(desc), 4):
        raise InputError(f"corrupt colour filter array: pattern {pattern.tolist()} for colours {desc!r}")
    if pattern.ndim == 2 and pattern.shape[0] % 2 == 0 and pattern.shape[1] % 2 == 0 \
            and np.array_equal(pattern, np.tile(pattern[:2, :2], (pattern.shape[0] // 2, pattern.shape[1] // 2))):
        pattern = pattern[:2, :2]  # a 2x2 Bayer cell written out as a larger repeat
    if pattern.shape != (2, 2):
        kind = "an X-Trans" if pattern.shape == (6, 6) else f"a {pattern.shape[0]}x{pattern.shape[1]}"
        raise UnsupportedSensorError(f"unsupported sensor layout: {make} has {kind} colour filter "
                                     "array, not a 2x2 Bayer pattern")
    cfa = "".join(desc[int(i)] for i in pattern.reshape(-1))
    if cfa not in CFA_PATTERNS:
        raise UnsupportedSensorError(f"unsupported sensor layout: {make} has a {cfa} 2x2 pattern, "
                                     "not one of RGGB, BGGR, GRBG, GBRG")
    # --- the pixels ---------------------------------------------------------------------------
    data = np.array(raw.raw_image_visible, dtype=np.uint16, copy=True)
    if data.ndim != 2 or min(data.shape) < 2:
        raise InputError(f"no pixel data in the file ({'; '.join(messages) or 'empty image'})")
    pixels = data.shape[0] * data.shape[1]
    bits_per_pixel = 8.0 * path.stat().st_size / pixels
    if bits_per_pixel < 0.25:
        raise InputError(f"pixel data missing or stripped ({path.stat().st_size} bytes for a "
                         f"{data.shape[1]}x{data.shape[0]} image)")
    if int(data.max()) == int(data.min()):
        floating = 3 in np.atleast_1d(np.asarray(tags.get(_T_SAMPLE_FORMAT, 1), dtype=np.int64))
        raise InputError(f"no image: every sample is {int(data.max())}" + (
            " (floating-point pixel data without finite values: NaN or infinite?)" if floating else ""))
    # --- levels ---------------------------------------------------------------------------------
    per_colour = np.asarray(raw.black_level_per_channel, np.float32)
    black = per_colour[pattern].reshape(2, 2)  # black_level_per_channel is indexed by colour index
    white = float(raw.white_level)
    if float(black.max()) >= 2 ** 31:
        raise InputError(f"black level reads as {float(black.max()):.0f}: a negative or corrupt "
                         "BlackLevel tag")
    if white > 0 and not white > float(black.max()):
        raise InputError(f"black level {float(black.max()):g} is not below the white level {white:g}")
    if not white > float(black.max()):
        white = float(2 ** int(np.ceil(np.log2(int(data.max()) + 1))) - 1)
    if not white > float(black.max()):
        raise InputError(f"black level {float(black.max()):g} is at or above every sample")
    # --- white balance --------------------------------------------------------------------------
    wb, wb_source, rejected, daylight = None, "", [], None
    for name, label in (("camera_whitebalance", "as shot"), ("daylight_whitebalance", "daylight (LibRaw)")):
        gains, problem = rgb_gains(getattr(raw, name), desc)
        if name == "daylight_whitebalance":
            daylight = gains
        if gains is not None and wb is None:
            wb, wb_source = gains, label
        elif problem is not None:
            rejected.append(f"the {'as-shot' if name == 'camera_whitebalance' else 'daylight'} white "
                            f"balance is unusable ({problem})")
        elif wb is None and name == "camera_whitebalance":
            rejected.append("the file has no as-shot white balance")
    if wb is None:
        wb, wb_source = grey_world(data, cfa, black, white), "grey world"
    if wb_source != "as shot":  # one line, naming what is used instead
        notes.append((f"{rejected[0]}; using {wb_source} gains instead", WhiteBalanceFallback))
    # --- colour matrix ------------------------------------------------------------------------
    matrix, matrix_source, rejected = _camera_matrix(raw)
    instead = {"LibRaw camera table": "LibRaw's matrix for the camera"}.get(matrix_source, "the identity matrix")
    if matrix_source.startswith("identity") and not rejected:
        rejected.append("the file has no colour matrix")
    notes += [f"{r}; using {instead} instead" for r in rejected]
    flip = int(sizes.flip) if sizes.flip in FLIPS or 0 <= sizes.flip < 8 else 0
    return Mosaic(data=data, cfa=cfa, black=black, white=white, wb=wb, cam_to_srgb=matrix,
                  orientation=flip, wb_source=wb_source, matrix_source=matrix_source,
                  description=f"{make} {cfa}", daylight_wb=daylight)


def _camera_matrix(raw) -> tuple[np.ndarray, str, list[str]]:
    """White-balanced camera RGB -> linear sRGB, rows summing to 1, where it came from, and the
    matrices the file or LibRaw had but that were rejected (see :func:`matrix_problem`)."""
    rejected: list[str] = []
    cm = np.asarray(raw.color_matrix, np.float64)[:3, :3]
    if np.any(cm != 0):  # NaN counts as present
        m = normalise_rows(cm)
        problem = matrix_problem(m)
        if problem is None:
            return m, "file (ColorMatrix)", rejected
        rejected.append(f"the file's colour matrix is unusable ({problem})")
    xyz_to_cam = np.asarray(raw.rgb_xyz_matrix, np.float64)[:3, :3]
    if np.any(xyz_to_cam != 0):
        problem = "non-finite coefficients"
        if np.all(np.isfinite(xyz_to_cam)):
            try:
                with np.errstate(all="ignore"):
                    m = cam_to_srgb_from_xyz(xyz_to_cam)
                problem = matrix_problem(m)
            except np.linalg.LinAlgError:
                problem = "singular"
        if problem is None:
            return m, "LibRaw camera table", rejected
        rejected.append(f"LibRaw's colour matrix for the camera is unusable ({problem})")
    return np.eye(3, dtype=np.float32), "identity (no colour metadata)", rejected


# --- the embedded preview ---------------------------------------------------------------------
def read_thumbnail(path: str | Path) -> tuple[np.ndarray, int]:
    """The preview a camera embedded in the RAW file at ``path``, as (H, W, 3) uint8 as stored,
    and the file's LibRaw flip code (apply it with ``render.orient``). No pixel of the RAW is
    decoded. :class:`InputError` when the file has no preview (or not one LibRaw can give)."""
    import io

    import rawpy
    from PIL import Image

    path = Path(path)
    _check_file(path)
    with _captured_stderr():
        try:
            with rawpy.imread(str(path)) as raw:
                flip = int(raw.sizes.flip) if 0 <= raw.sizes.flip < 8 else 0
                thumb = raw.extract_thumb()
        except (rawpy.LibRawNoThumbnailError, rawpy.LibRawUnsupportedThumbnailError):
            raise InputError("no embedded preview (develop it instead of --thumbnail)") from None
        except (rawpy.LibRawError, rawpy.NotSupportedError) as exc:
            raise InputError(f"not a RAW file LibRaw can read for its preview ({exc})") from None
    if thumb.format == rawpy.ThumbFormat.JPEG:
        try:
            with Image.open(io.BytesIO(thumb.data)) as image:
                return np.asarray(image.convert("RGB")), flip
        except OSError as exc:
            raise InputError(f"the embedded preview is not a readable JPEG ({exc})") from None
    data = np.asarray(thumb.data)
    if data.ndim == 2:
        data = np.repeat(data[..., None], 3, axis=2)
    return np.ascontiguousarray(data[..., :3].astype(np.uint8)), flip
