"""Camera RAW files through LibRaw (rawpy), the only rawpy import of the develop path:
:func:`read_raw` validates a file as a 2x2 Bayer mosaic and takes its levels, white balance
(as shot, else daylight, else grey world: :func:`white_balance.choose`, said by the develop) and
colour matrix (the file's, else LibRaw's table, else the identity), warning for each fallback;
:func:`read_thumbnail` gives the embedded preview."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from . import defaults
from .bayer import CFA_PATTERNS, cell_black, crop_cfa
from .colour import cam_to_srgb_from_xyz, matrix_problem, normalise_rows, rgb_gains
from .errors import (CFAPhaseWarning, InputError, MicroISPWarning, UnsupportedSensorError, address_space_limit,
                     out_of_memory)
from .files import open_regular
from .mosaic import FLIPS, Mosaic, cfa_warning, check_file, check_megapixels, grey_world
from .tiff_tags import CAMERA_TAGS, cfa_letters, short_pixel_block, tiff_tags
from .white_balance import choose


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
    if tags is not None and not any(t in tags for t in CAMERA_TAGS):
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
        except MemoryError as exc:
            raise InputError(out_of_memory(exc, "decode it")) from None
        except OSError as exc:
            raise InputError(f"cannot be read ({exc.strerror or exc})") from None
    if mosaic is None:
        width, height = (tags or {}).get(256), (tags or {}).get(257)
        if isinstance(error, rawpy.LibRawFileUnsupportedError) and isinstance(width, int) \
                and isinstance(height, int) and min(width, height) < LIBRAW_MIN_SIDE:
            raise InputError(f"frame too small ({width}x{height} pixels): LibRaw reads frames of at "
                             f"least {LIBRAW_MIN_SIDE} pixels a side") from None
        raise InputError(_libraw_message(error, messages, rawpy)) from None
    if any("end of file" in m.lower() for m in messages):
        raise InputError("truncated: the pixel data ends before the end of the frame "
                         "(LibRaw: Unexpected end of file)")
    short = short_pixel_block(tags or {})
    if short is not None:  # LibRaw reads past it, into whatever follows: garbage, and no word
        notes.append(short)
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


#: TIFF tags camera_raw reads itself: SampleFormat, Orientation.
_T_SAMPLE_FORMAT, _T_ORIENTATION = 339, 274
#: The smallest frame side LibRaw reads (it calls smaller frames "not a RAW file").
LIBRAW_MIN_SIDE = 22


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
    elif isinstance(exc, (rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError)):
        # LibRaw's allocations failing (a memory limit) arrive as either
        return f"not enough memory for LibRaw to decode it ({type(exc).__name__}{address_space_limit()})"
    else:
        cause = f"LibRaw cannot decode it ({type(exc).__name__})"
    extra = detail or text
    return f"{cause} ({extra})" if extra and extra.lower() not in cause else cause


def _mosaic_from_rawpy(raw, path: Path, rawpy, messages: list[str], notes: list,
                       tags: dict[int, object]) -> Mosaic:
    """The checked :class:`Mosaic` of an opened rawpy file: its Bayer order, pixels, levels, the
    DNG's default crop, white balance, colour matrix and orientation, in that order (each step
    raises the error of the first thing wrong). ``notes`` gets the fallbacks' warnings (a line,
    or a (line, warning class) pair)."""
    desc = bytes(raw.color_desc).decode("ascii", "replace").rstrip("\x00")
    make = f"{path.suffix.lstrip('.').upper()} {raw.sizes.width}x{raw.sizes.height}"
    cfa, pattern = _bayer_order(raw, rawpy, desc, make, tags)
    data = _pixels(raw, path, messages, tags)
    black, white = _levels(raw, pattern, data)
    # --- the DNG's default crop (LibRaw applied its ActiveArea already) ------------------------
    crop, problem = _default_crop(raw, tags, data.shape)
    if problem is not None:
        notes.append(f"{problem}; developing the whole active area instead")
    if crop is not None:
        top, left, height, width = crop
        data = np.ascontiguousarray(data[top:top + height, left:left + width])
        cfa, black = crop_cfa(cfa, top, left), cell_black(black, -top, -left).copy()
    wb, wb_source, daylight, wb_problem = _white_balance(raw, desc, data, cfa, black, white)
    matrix, matrix_source = _colour_matrix(raw, notes)
    flip = _orientation(raw.sizes, tags, notes)
    mosaic = Mosaic(data=data, cfa=cfa, black=black, white=white, wb=wb, cam_to_srgb=matrix,
                    orientation=flip, wb_source=wb_source, matrix_source=matrix_source,
                    description=f"{make} {cfa}", daylight_wb=daylight, wb_problem=wb_problem)
    doubt = cfa_warning(mosaic, "--force-cfa")
    if doubt is not None:
        notes.append((doubt, CFAPhaseWarning))
    return mosaic


def _bayer_order(raw, rawpy, desc: str, make: str, tags: dict[int, object]) -> tuple[str, np.ndarray]:
    """The file's 2x2 Bayer order and LibRaw's colour indices of it (a 2x2 pattern), or the
    error saying which sensor layout this is instead."""
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
        letters = cfa_letters(tags)
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
    return cfa, pattern


def _pixels(raw, path: Path, messages: list[str], tags: dict[int, object]) -> np.ndarray:
    """The visible raw samples (uint16, a copy), checked to be an image."""
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
    return data


def _levels(raw, pattern: np.ndarray, data: np.ndarray) -> tuple[np.ndarray, float]:
    """The (2, 2) black levels of the cell and the white level, checked (a missing white level
    from the samples' bit depth)."""
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
    return black, white


def _white_balance(raw, desc: str, data: np.ndarray, cfa: str, black: np.ndarray,
                   white: float) -> tuple[np.ndarray, str, np.ndarray | None, str | None]:
    """The file's white balance as ``wb="camera"`` takes it (:func:`white_balance.choose`: as
    shot, else LibRaw's daylight, else grey world), where it came from, the daylight gains, and
    why the as-shot gains are not used (None: they are). No warning: the develop says it."""
    as_shot, problem = rgb_gains(raw.camera_whitebalance, desc)
    daylight, _ = rgb_gains(raw.daylight_whitebalance, desc)
    if as_shot is not None:
        problem = None
    else:
        problem = f"the as-shot white balance is unusable ({problem})" if problem \
            else "the file has no as-shot white balance"
    choice = choose("camera", as_shot=as_shot, problem=problem, daylight=daylight, matrix=None,
                    grey=lambda: grey_world(data, cfa, black, white))
    return choice.gains, choice.source, daylight, problem


def _colour_matrix(raw, notes: list) -> tuple[np.ndarray, str]:
    """The camera -> sRGB matrix and where it came from; a note for each matrix rejected."""
    matrix, matrix_source, rejected = _camera_matrix(raw)
    instead = {"LibRaw camera table": "LibRaw's matrix for the camera"}.get(matrix_source, "the identity matrix")
    if matrix_source.startswith("identity") and not rejected:
        rejected.append("the file has no colour matrix")
    consequence = ("" if matrix_source == "LibRaw camera table"
                   else " (camera RGB taken as sRGB: colours come out muted or off)")
    notes += [f"{r}; using {instead} instead{consequence}" for r in rejected]
    return matrix, matrix_source


def _orientation(sizes, tags: dict[int, object], notes: list) -> int:
    """LibRaw's flip, 0 for an Orientation tag outside 1-8 (with a note)."""
    flip = int(sizes.flip) if sizes.flip in FLIPS or 0 <= sizes.flip < 8 else 0
    orientation = tags.get(_T_ORIENTATION)
    if isinstance(orientation, int) and not 1 <= orientation <= 8:  # LibRaw reads 65535 as a turn
        notes.append(f"the Orientation tag is {int(orientation)}, not one of 1-8: the image is left as stored")
        flip = 0
    return flip


_T_DNG_VERSION, _T_DEFAULT_CROP_ORIGIN, _T_DEFAULT_CROP_SIZE = 50706, 50719, 50720


def _tag_numbers(value: object, count: int) -> tuple[float, ...] | None:
    """``count`` numbers of a SHORT/LONG or RATIONAL tag value as tifffile gives it."""
    values = list(np.asarray(value, np.float64).reshape(-1)) if value is not None else []
    if len(values) == 2 * count:  # rationals, as (numerator, denominator) pairs
        pairs = np.asarray(values).reshape(count, 2)
        if np.any(pairs[:, 1] == 0):
            return None
        values = list(pairs[:, 0] / pairs[:, 1])
    return tuple(values) if len(values) == count and all(np.isfinite(values)) else None


def _default_crop(raw, tags: dict[int, object], shape: tuple[int, ...]
                  ) -> tuple[tuple[int, int, int, int] | None, str | None]:
    """A DNG's DefaultCropOrigin/DefaultCropSize as (top, left, height, width) inside the visible
    (active) area LibRaw gives (it applies ActiveArea itself), or None when the file has none or
    it is the whole area; with the reason when the declared crop cannot be used. Read from the
    tags, not LibRaw's ``sizes.crop_*``: LibRaw moves an odd origin to keep the CFA phase, where
    the DNG specification crops exactly there (the CFA order is changed to match instead)."""
    if _T_DNG_VERSION not in tags or _T_DEFAULT_CROP_SIZE not in tags:
        return None, None
    size = _tag_numbers(tags.get(_T_DEFAULT_CROP_SIZE), 2)
    origin = _tag_numbers(tags.get(_T_DEFAULT_CROP_ORIGIN, (0, 0)), 2)
    if size is None or origin is None:
        return None, "the DNG's default crop tags are unreadable"
    left, top, width, height = (int(round(v)) for v in (*origin, *size))
    if (top, left, height, width) == (0, 0) + tuple(shape[:2]):
        return None, None
    if top < 0 or left < 0 or top + height > shape[0] or left + width > shape[1] or min(height, width) < 2:
        return None, (f"the DNG's default crop ({width}x{height} at {left},{top}) does not lie inside "
                      f"its {shape[1]}x{shape[0]} active area")
    return (top, left, height, width), None


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
    check_file(path)
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
