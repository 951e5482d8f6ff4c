"""Encoding: atomic writes of PNG (8/16-bit), TIFF (tifffile), JPEG, WebP, AVIF and JPEG XL (Pillow), each with
an ICC profile (``colour.icc_profile``; sRGB unless another is given) and the resolution of
``defaults.RESOLUTION_DPI``.

Every writer writes into a temporary file in the destination's folder, published under the
destination's name only when complete (``publish.atomic_file``), so a failure, Ctrl-C or SIGTERM
never leaves a partial file and an existing file is never replaced without ``overwrite``.
The camera's metadata goes into the encoded bytes before they are written (:mod:`metadata`): the
file is never edited after it is written. Neither TensorFlow nor any other
heavy module is imported here.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from . import defaults
from .colour import srgb_icc_profile
from .errors import OutputError
from .vocabulary import FORMATS

if TYPE_CHECKING:
    from .metadata import Metadata

#: Formats whose encoder embeds the EXIF and XMP (Exiv2 cannot write them there afterwards).
EMBEDDED_METADATA = ("avif", "jxl")
#: Pillow's ``subsampling`` codes for the JPEG chroma subsampling names.
SUBSAMPLING = {"444": 0, "422": 1, "420": 2}


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


def write_png_stream(handle: BinaryIO, image: np.ndarray, level: int = defaults.PNG_COMPRESSION,
                     icc: bytes | None = None, chunks: bytes = b"") -> None:
    """PNG of an (H, W, 3) uint8/uint16 image onto ``handle``, with the ICC profile ``icc``
    (None: sRGB) in an iCCP chunk, the resolution in a pHYs chunk and ``chunks`` (complete
    chunks: the camera's metadata) before the pixels."""
    height, width = image.shape[:2]
    bit_depth = 16 if image.dtype == np.uint16 else 8
    per_metre = round(defaults.RESOLUTION_DPI / 0.0254)
    handle.write(b"\x89PNG\r\n\x1a\n")
    handle.write(_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth, 2, 0, 0, 0)))
    handle.write(_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc or srgb_icc_profile())))
    handle.write(_chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1)))
    handle.write(chunks)
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


# --- TIFF, JPEG and WebP --------------------------------------------------------------------------
def write_tiff_stream(handle: BinaryIO, image: np.ndarray, icc: bytes | None = None) -> None:
    """TIFF (RGB, deflate) of an (H, W, 3) uint8/uint16 image, with the ICC profile ``icc``
    (None: sRGB) in tag 34675, ``Software: microisp VERSION`` and the resolution in inches."""
    import tifffile

    from . import __version__

    icc = icc or srgb_icc_profile()
    tifffile.imwrite(handle, np.ascontiguousarray(image), photometric="rgb", compression="zlib",
                     metadata=None, software=f"microisp {__version__}",
                     resolution=(defaults.RESOLUTION_DPI, defaults.RESOLUTION_DPI), resolutionunit="INCH",
                     extratags=[(34675, 7, len(icc), icc, True)])


def pillow_bytes(image: np.ndarray, kind: str, quality: int = defaults.JPEG_QUALITY,
                 subsampling: str = defaults.JPEG_SUBSAMPLING, icc: bytes | None = None,
                 exif: bytes | None = None, xmp: bytes | None = None) -> bytes:
    """A JPEG (baseline, ``subsampling`` ``"444"|"422"|"420"``), lossy WebP, AVIF (Pillow's
    libavif; ``subsampling`` too) or JPEG XL (the ``pillow-jxl-plugin``, ``[jxl]`` extra) of an
    (H, W, 3) uint8 image at ``quality``, with the ICC profile ``icc`` (None: sRGB); AVIF and
    JPEG XL also embed ``exif`` (TIFF bytes) and ``xmp`` (a packet) from
    :func:`metadata.encoded`."""
    from PIL import Image

    if image.dtype != np.uint8:
        raise OutputError(f"{kind.upper()} is 8-bit only; use --bits 8 or a PNG/TIFF output")
    picture = Image.fromarray(np.ascontiguousarray(image), "RGB")
    buffer = io.BytesIO()
    dpi = (defaults.RESOLUTION_DPI, defaults.RESOLUTION_DPI)
    icc = icc or srgb_icc_profile()
    embedded = {k: v for k, v in (("exif", exif), ("xmp", xmp)) if v}
    if kind == "jpeg":
        picture.save(buffer, "JPEG", quality=int(quality), subsampling=SUBSAMPLING[subsampling],
                     icc_profile=icc, dpi=dpi)
    elif kind == "webp":
        picture.save(buffer, "WEBP", quality=int(quality), icc_profile=icc)
    elif kind == "avif":
        from PIL import features

        if not features.check("avif"):
            raise OutputError("this Pillow has no AVIF encoder: python3 -m pip install -U 'pillow>=11.3'")
        if "exif" in embedded:
            embedded["exif"] = b"Exif\0\0" + embedded["exif"]
        picture.save(buffer, "AVIF", quality=int(quality), subsampling=_AVIF_SUBSAMPLING[subsampling],
                     icc_profile=icc, **embedded)
    elif kind == "jxl":  # sRGB only: pillow-jxl-plugin 1.3 signals sRGB and drops any ICC profile
        from .extras import require

        require("pillow_jxl", "jxl", "JPEG XL output")  # registers the JXL plugin with Pillow
        if icc != srgb_icc_profile():
            raise OutputError("JPEG XL is written in sRGB only (the plugin cannot embed another ICC profile)")
        picture.save(buffer, "JXL", quality=int(quality), **embedded)
    else:
        raise ValueError(f"not a Pillow format here: {kind!r}")
    return buffer.getvalue()


#: libavif's names for the chroma subsampling names.
_AVIF_SUBSAMPLING = {"444": "4:4:4", "422": "4:2:2", "420": "4:2:0"}


# --- one entry point ------------------------------------------------------------------------------
def format_for(path: str | Path) -> str:
    """``"png"``, ``"tiff"``, ``"jpeg"`` or ``"webp"`` from the file extension; OutputError otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise OutputError(f"{path}: unknown output format {suffix or '(no extension)'!r}; "
                          "use .png, .tif/.tiff, .jpg, .webp, .avif or .jxl")
    return FORMATS[suffix]


def default_bits(path: str | Path) -> int:
    """The bit depth used when none is asked for: PNG, JPEG and WebP 8, TIFF 16."""
    return defaults.BITS_TIFF if format_for(path) == "tiff" else defaults.BITS_PNG


def write_image(path: str | Path, image: np.ndarray, quality: int = defaults.JPEG_QUALITY,
                overwrite: bool = False, *, subsampling: str = defaults.JPEG_SUBSAMPLING,
                icc: bytes | None = None, metadata: Metadata | None = None,
                finish: Callable[[], None] | None = None) -> Path:
    """Write an (H, W, 3) uint8/uint16 image to ``path`` (format from its extension), atomically,
    with the ICC profile ``icc`` (None: sRGB) and, if given, the camera's ``metadata``: in the
    encoded bytes (AVIF and JPEG XL: handed to the encoder, :data:`EMBEDDED_METADATA`), or as PNG
    chunks before the pixels (:mod:`metadata`), so every byte of the file is written and checked
    here. ``finish``: see :func:`atomic_file`."""
    from . import metadata as camera

    path = Path(path)
    kind = format_for(path)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"image must be (H, W, 3) uint8 or uint16, got {image.dtype} {image.shape}")
    height, width = image.shape[:2]
    writer: Callable[[BinaryIO], None]
    if kind == "png":
        chunks = b"" if metadata is None else camera.png_chunks(metadata, width, height)
        def writer(h): write_png_stream(h, image, icc=icc, chunks=chunks)  # noqa: E704
    else:  # encoded before touching the disk
        if kind == "tiff":
            buffer = io.BytesIO()
            write_tiff_stream(buffer, image, icc)
            data = buffer.getvalue()
        elif kind in EMBEDDED_METADATA:  # the encoder embeds them (Exiv2 cannot write these formats)
            exif, xmp = (None, None) if metadata is None else camera.encoded(metadata, width, height)
            data = pillow_bytes(image, kind, quality, subsampling, icc, exif, xmp)
        else:
            data = pillow_bytes(image, kind, quality, subsampling, icc)
        if metadata is not None and kind not in EMBEDDED_METADATA:
            data = camera.embed(data, metadata, width, height)
        def writer(h): h.write(data)  # noqa: E704
    from .publish import atomic_file

    with atomic_file(path, overwrite, finish) as handle:
        writer(handle)
    return path
