"""Encoding: atomic writes of PNG (8/16-bit), TIFF (tifffile) and JPEG, each with the sRGB profile.

Every writer writes into a temporary file in the destination's folder, published under the
destination's name only when complete (``batch.atomic_file``), so a failure, Ctrl-C or SIGTERM
never leaves a partial file and an existing file is never replaced without ``overwrite``. The embedded sRGB ICC profile (version 2) is built here from the published constants of
IEC 61966-2-1: D50-adapted primaries (Bradford), the D50 white point and a 1024-entry tone curve.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from . import defaults
from .errors import OutputError

FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg"}


# --- the sRGB ICC profile ---------------------------------------------------------------------
def _s15f16(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_text)) + ascii_text
            + struct.pack(">II", 0, 0)            # Unicode language code and count: none
            + struct.pack(">HB", 0, 0) + b"\0" * 67)  # ScriptCode code, count, 67-byte field


def _srgb_curve(entries: int = 1024) -> bytes:
    x = np.linspace(0.0, 1.0, entries)
    linear = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    table = np.round(linear * 65535).astype(">u2")
    return b"curv" + b"\0" * 4 + struct.pack(">I", entries) + table.tobytes()


@cache
def srgb_icc_profile() -> bytes:
    """A small ICC v2 display profile for sRGB (IEC 61966-2-1), built from its constants."""
    d50 = (0.9642, 1.0, 0.8249)
    curve = _srgb_curve()
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _text_description("sRGB IEC61966-2.1 (microisp)")),
        (b"wtpt", _xyz_tag(*d50)),
        (b"rXYZ", _xyz_tag(0.4360747, 0.2225045, 0.0139322)),
        (b"gXYZ", _xyz_tag(0.3850649, 0.7168786, 0.0971045)),
        (b"bXYZ", _xyz_tag(0.1430804, 0.0606169, 0.7141733)),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
        (b"cprt", b"text" + b"\0" * 4 + b"No copyright, use freely\0"),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs, placed = [], b"", {}
    for signature, data in tags:
        if data in placed:  # identical data is stored once and shared (the three TRCs)
            entries.append((signature, placed[data], len(data)))
            continue
        pad = (-(offset + len(blobs))) % 4
        blobs += b"\0" * pad
        placed[data] = offset + len(blobs)
        entries.append((signature, placed[data], len(data)))
        blobs += data
    blobs += b"\0" * ((-(offset + len(blobs))) % 4)
    table = struct.pack(">I", len(tags)) + b"".join(struct.pack(">4sII", s, o, n) for s, o, n in entries)
    size = 128 + len(table) + len(blobs)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000)
              + b"mntr" + b"RGB " + b"XYZ " + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
              + b"acsp" + b"\0" * 4 + struct.pack(">I", 0) + b"\0" * 4 + b"\0" * 4 + b"\0" * 8
              + struct.pack(">I", 0) + _s15f16(d50[0]) + _s15f16(d50[1]) + _s15f16(d50[2])
              + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + table + blobs


# --- PNG ------------------------------------------------------------------------------------------
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_rows(image: np.ndarray, start: int, stop: int) -> bytes:
    """Rows ``start:stop`` as PNG scanlines with the Sub filter (type 1), big-endian samples."""
    block = np.ascontiguousarray(image[start:stop], dtype=">u2" if image.dtype == np.uint16 else np.uint8)
    raw = block.view(np.uint8).reshape(stop - start, -1)
    bpp = image.itemsize * image.shape[2]
    filtered = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    filtered[:, 0] = 1
    filtered[:, 1:bpp + 1] = raw[:, :bpp]
    np.subtract(raw[:, bpp:], raw[:, :-bpp], out=filtered[:, bpp + 1:], dtype=np.uint8, casting="unsafe")
    return filtered.tobytes()


def write_png_stream(handle: BinaryIO, image: np.ndarray, level: int = defaults.PNG_COMPRESSION) -> None:
    """PNG of an (H, W, 3) uint8/uint16 image onto ``handle``, with the sRGB profile (iCCP)."""
    height, width = image.shape[:2]
    bit_depth = 16 if image.dtype == np.uint16 else 8
    handle.write(b"\x89PNG\r\n\x1a\n")
    handle.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)))
    handle.write(_chunk(b"iCCP", b"sRGB\0\0" + zlib.compress(srgb_icc_profile())))
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 8, zlib.Z_RLE)  # Sub-filtered rows: runs
    rows = max(1, (1 << 22) // max(1, width * image.itemsize * 3))
    pending = b""
    for start in range(0, height, rows):
        pending += compressor.compress(_png_rows(image, start, min(height, start + rows)))
        if len(pending) >= 1 << 20:
            handle.write(_chunk(b"IDAT", pending))
            pending = b""
    pending += compressor.flush()
    handle.write(_chunk(b"IDAT", pending))
    handle.write(_chunk(b"IEND", b""))


# --- TIFF and JPEG --------------------------------------------------------------------------------
def write_tiff_stream(handle: BinaryIO, image: np.ndarray) -> None:
    """TIFF (RGB, deflate) of an (H, W, 3) uint8/uint16 image, with the profile in tag 34675."""
    import tifffile

    icc = srgb_icc_profile()
    tifffile.imwrite(handle, np.ascontiguousarray(image), photometric="rgb", compression="zlib",
                     metadata=None, extratags=[(34675, 7, len(icc), icc, True)])


def jpeg_bytes(image: np.ndarray, quality: int = defaults.JPEG_QUALITY) -> bytes:
    """Baseline JPEG of an (H, W, 3) uint8 image with the sRGB profile in an APP2 segment."""
    import tensorflow as tf

    if image.dtype != np.uint8:
        raise OutputError("JPEG is 8-bit only; use --bits 8 or a PNG/TIFF output")
    data = tf.io.encode_jpeg(np.ascontiguousarray(image), quality=int(quality),
                             chroma_downsampling=quality < 90).numpy()
    return insert_jpeg_icc(data, srgb_icc_profile())


def insert_jpeg_icc(jpeg: bytes, icc: bytes) -> bytes:
    """``jpeg`` with an ``ICC_PROFILE`` APP2 segment after SOI (and after APP0 JFIF if present)."""
    if jpeg[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG stream")
    at = 2
    if jpeg[2:4] == b"\xff\xe0":
        at = 4 + struct.unpack(">H", jpeg[4:6])[0]
    payload = b"ICC_PROFILE\0" + bytes([1, 1]) + icc
    if len(payload) + 2 > 0xFFFF:
        raise ValueError("ICC profile too large for one APP2 segment")
    return jpeg[:at] + b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload + jpeg[at:]


# --- one entry point ------------------------------------------------------------------------------
def format_for(path: str | Path) -> str:
    """``"png"``, ``"tiff"`` or ``"jpeg"`` from the file extension; OutputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"{path}: unknown output format {suffix or '(no extension)'!r}; "
                          "use .png, .tif/.tiff or .jpg")
    return FORMATS[suffix]


def default_bits(path: str | Path) -> int:
    """The bit depth used when none is asked for: PNG and JPEG 8, TIFF 16."""
    return defaults.BITS_TIFF if format_for(path) == "tiff" else defaults.BITS_PNG


def write_image(path: str | Path, image: np.ndarray, quality: int = defaults.JPEG_QUALITY,
                overwrite: bool = False) -> Path:
    """Write an (H, W, 3) uint8/uint16 sRGB image to ``path`` (format from its extension), atomically."""
    path = Path(path)
    kind = format_for(path)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be (H, W, 3) uint8 or uint16, got {image.dtype} {image.shape}")
    writer: Callable[[BinaryIO], None]
    if kind == "jpeg":
        data = jpeg_bytes(image, quality)  # encode before touching the file system
        def writer(h): h.write(data)  # noqa: E704
    elif kind == "tiff":
        def writer(h): write_tiff_stream(h, image)  # noqa: E704
    else:
        def writer(h): write_png_stream(h, image)  # noqa: E704
    from .batch import atomic_file

    with atomic_file(path, overwrite) as handle:
        writer(handle)
    return path
