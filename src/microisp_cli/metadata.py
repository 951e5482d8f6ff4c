"""The camera's metadata, from the RAW file into the developed photo: EXIF and XMP through pyexiv2.

pyexiv2 (a maintained binding of the Exiv2 C++ library, shipped with it in the wheel) reads the
metadata of every RAW format Exiv2 knows and writes it into PNG, TIFF, JPEG and WebP. Measured on
the Canon DNG of ../shared (docs/cli.md): copying its 21 photo tags into a 1.5 MP JPEG took
0.004 s with pyexiv2 and 0.002 s with the ``exiv2`` bindings (same library, a wordier API), while
exifread only reads, so writing with Pillow would need a hand-written tag and type table.

What is copied (:func:`read`): every ``Exif.Photo`` (exposure, lens, dates, ...) and ``Exif.GPSInfo``
tag, the descriptive ``Exif.Image`` tags (make, model, date, artist, copyright, description), the
TIFF/EP exposure tags that older RAW formats keep in ``Exif.Image`` (moved to ``Exif.Photo``) and
the XMP packet; a DNG without Make and Model gets its ``UniqueCameraModel`` as Model. Left out:
maker notes, the RAW file's structure (strips, tiles, sub-IFDs, CFA and DNG colour tags) and its
thumbnails. What :func:`embed`, :func:`png_chunks` and :func:`encoded` set: ``Orientation`` 1 (the pixels are
already rotated), ``Software: microisp VERSION``, the pixel size and a resolution of
``defaults.RESOLUTION_DPI`` dots per inch.

Metadata is written into the encoded bytes (:func:`embed`) or as PNG chunks before the pixels
(:func:`png_chunks`), never by Exiv2 rewriting a file: Exiv2 does not report a failed write (a
full disk left a truncated photo, published as written).

Exiv2 runs in a child process (:func:`serve`, one per process, started on first use): a crash
inside it on a hostile file fails that file with one line (:class:`errors.MetadataError`) and the
next file gets a new child, instead of the crash taking the whole batch down.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import dataclasses
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import warnings
import zlib
from pathlib import Path

from . import __version__, defaults
from .errors import MetadataError, MicroISPWarning

#: ``Exif.Image`` tags that describe the photo rather than the RAW file's layout.
IMAGE_TAGS = ("Make", "Model", "DateTime", "Artist", "Copyright", "ImageDescription")
#: TIFF/EP tags some RAW formats (Kodak, early Nikon) keep in IFD0: written into ``Exif.Photo``.
TIFF_EP_TAGS = ("ExposureTime", "FNumber", "ExposureProgram", "ISOSpeedRatings", "DateTimeOriginal",
                "ExposureBiasValue", "MaxApertureValue", "SubjectDistance", "MeteringMode",
                "LightSource", "Flash", "FocalLength")
#: ``Exif.Photo`` tags that are not the photo's: maker notes and the pointers of the RAW's layout.
SKIPPED_PHOTO_TAGS = ("MakerNote", "InteroperabilityTag", "PixelXDimension", "PixelYDimension")


@dataclasses.dataclass(frozen=True)
class Metadata:
    """EXIF and XMP to write, as pyexiv2 key -> value strings."""

    exif: dict[str, str] = dataclasses.field(default_factory=dict)
    xmp: dict[str, object] = dataclasses.field(default_factory=dict)


def software() -> str:
    """The ``Software`` tag of every output."""
    return f"microisp {__version__}"


def _pyexiv2():
    """pyexiv2, with Exiv2's own log muted: its problems arrive as exceptions, handled here."""
    import pyexiv2

    pyexiv2.set_log_level(4)
    return pyexiv2


def _image(pyexiv2, path: str | Path):
    """An Exiv2 image of the file at ``path``; its bytes when the name is not UTF-8 (Exiv2 takes
    names as UTF-8: ``Caf\xe9.dng`` from a Windows share would fail)."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return pyexiv2.ImageData(Path(path).read_bytes())
    return pyexiv2.Image(name)


def _read(path: str | Path) -> Metadata:
    """The photo's EXIF and XMP in the RAW file at ``path`` (see the module's notes). A file
    Exiv2 cannot read (a sensor dump, a ``.npy``) has none: an empty :class:`Metadata`."""
    pyexiv2 = _pyexiv2()
    try:
        with _image(pyexiv2, path) as image:
            exif, xmp = _read_exif(image), image.read_xmp()
    except (RuntimeError, OSError, UnicodeDecodeError):
        return Metadata()
    kept: dict[str, str] = {}
    for key, value in exif.items():
        family, group, name = key.split(".", 2)
        if group in ("Photo", "GPSInfo") and name not in SKIPPED_PHOTO_TAGS:
            kept[key] = value
        elif group == "Image" and name in IMAGE_TAGS and not _array_description(name, value):
            kept[key] = value
    unique = exif.get("Exif.Image.UniqueCameraModel", "").strip()
    if unique and not (kept.get("Exif.Image.Make", "").strip() or kept.get("Exif.Image.Model", "").strip()):
        kept["Exif.Image.Model"] = unique  # a DNG that names its camera only there (Blackmagic)
    for key, value in exif.items():  # TIFF/EP tags, unless the file also has the EXIF ones
        name = key.split(".", 2)[2]
        if key.startswith("Exif.Image.") and name in TIFF_EP_TAGS:
            kept.setdefault(f"Exif.Photo.{name}", value)
    return Metadata(kept, {k: v for k, v in xmp.items() if not k.startswith("Xmp.tiff.")})


def camera_and_date(path: str | Path) -> tuple[str, str]:
    """The camera's name (EXIF Model, after the first word of Make when Model holds no word of
    it: ``SONY ILCE-7M3``, ``Canon EOS Kiss X4``; "" when unknown) and the capture date
    (``YYYY-MM-DD`` from DateTimeOriginal, else DateTime, else the file's modification date),
    for output name templates."""
    import datetime

    exif = read(path).exif
    make = exif.get("Exif.Image.Make", "").strip()
    model = exif.get("Exif.Image.Model", "").strip()
    named = any(word.lower() in model.lower() for word in make.split() if len(word) >= 3)
    camera = model if named or not make.split() else f"{make.split()[0]} {model}"
    for key in ("Exif.Photo.DateTimeOriginal", "Exif.Image.DateTime"):
        text = exif.get(key, "").strip()
        if len(text) >= 10 and text[:4].isdigit() and text[5:7].isdigit() and text[8:10].isdigit():
            return camera.strip(), f"{text[:4]}-{text[5:7]}-{text[8:10]}"
    try:
        stamp = Path(path).stat().st_mtime
    except OSError:
        stamp = 0.0
    return camera.strip(), datetime.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d")


def _read_exif(image) -> dict[str, str]:
    """The EXIF of an Exiv2 image as text; a tag whose text is not UTF-8 (a Latin-1 Artist
    written by an old camera or tool) is left out with a :class:`MicroISPWarning`, not the rest."""
    try:
        return image.read_exif()
    except UnicodeDecodeError:
        pass
    exif: dict[str, str] = {}
    for key, value in image.read_exif(encoding="latin-1").items():  # every byte decodes
        try:
            exif[key] = [v.encode("latin-1").decode("utf-8") for v in value] if isinstance(value, list) \
                else value.encode("latin-1").decode("utf-8")
        except UnicodeDecodeError:
            warnings.warn(f"the EXIF tag {key} is not UTF-8 text: left out (the other tags are kept)",
                          MicroISPWarning, stacklevel=2)
    return exif


def _tags(metadata: Metadata, width: int, height: int) -> dict[str, str]:
    """The EXIF of an output: the camera's, with the tags every output gets (module notes)."""
    dpi = f"{defaults.RESOLUTION_DPI}/1"
    return {**metadata.exif, "Exif.Image.Orientation": "1", "Exif.Image.Software": software(),
            "Exif.Image.XResolution": dpi, "Exif.Image.YResolution": dpi,
            "Exif.Image.ResolutionUnit": "2", "Exif.Photo.PixelXDimension": str(width),
            "Exif.Photo.PixelYDimension": str(height)}


def _encoded(metadata: Metadata, width: int, height: int) -> tuple[bytes | None, bytes | None]:
    """The EXIF block (TIFF bytes after ``Exif\0\0``) and the XMP packet of an output, for the
    formats whose encoder embeds them (AVIF, JPEG XL: Exiv2 writes neither). Exiv2 writes them
    into a tiny JPEG in memory, so the tags are the same as :func:`embed` gives the other
    formats; (None, None) with a :class:`MicroISPWarning` if it refuses them."""
    import io

    from PIL import Image

    pyexiv2 = _pyexiv2()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    try:
        image = pyexiv2.ImageData(buffer.getvalue())
        try:
            image.modify_exif(_tags(metadata, width, height))
            if metadata.xmp:
                image.modify_xmp(metadata.xmp)
            xmp = image.read_raw_xmp().encode("utf-8") if metadata.xmp else None
            data = image.get_bytes()
        finally:
            image.close()
    except RuntimeError as exc:
        warnings.warn(f"the camera's metadata could not be written ({exc})", MicroISPWarning, stacklevel=2)
        return None, None
    with Image.open(io.BytesIO(data)) as jpeg:
        exif = jpeg.info.get("exif")
    return (exif[6:] if exif and exif.startswith(b"Exif\0\0") else exif), xmp


def _embed(data: bytes, metadata: Metadata, width: int, height: int) -> bytes:
    """The encoded image ``data`` (PNG, TIFF, JPEG or WebP) with ``metadata`` and the tags every
    output gets (module notes), edited in memory: nothing is written to a file here, so the
    caller's own checked write is the only one. If Exiv2 refuses the tags, ``data`` is returned
    as it is and a :class:`MicroISPWarning` says so."""
    pyexiv2 = _pyexiv2()
    try:
        with pyexiv2.ImageData(data) as image:
            image.modify_exif(_tags(metadata, width, height))
            if metadata.xmp:
                image.modify_xmp(metadata.xmp)
            return image.get_bytes()
    except RuntimeError as exc:
        warnings.warn(f"the camera's metadata could not be written ({exc})", MicroISPWarning, stacklevel=2)
        return data


#: PNG chunks that are the image, not its metadata.
_PNG_IMAGE_CHUNKS = (b"IHDR", b"IDAT", b"IEND")


def _png_chunks(metadata: Metadata, width: int, height: int) -> bytes:
    """The PNG chunks (``eXIf``, ``iTXt`` XMP) that carry ``metadata`` and the tags every output
    gets, as :func:`_embed` makes them for a 1x1 PNG: a PNG encoder writes them before its
    ``IDAT`` chunks, so metadata never needs the finished file (``b""`` if Exiv2 refuses them)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    template = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0\0\0\0")) + chunk(b"IEND", b""))
    data = _embed(template, metadata, width, height)
    chunks, position = [], 8
    while position + 8 <= len(data):
        length = struct.unpack(">I", data[position:position + 4])[0]
        end = position + 12 + length
        if data[position + 4:position + 8] not in _PNG_IMAGE_CHUNKS:
            chunks.append(data[position:end])
        position = end
    return b"".join(chunks)


# --- Exiv2 in a child process ---------------------------------------------------------------------
def read(path: str | Path) -> Metadata:
    """The photo's EXIF and XMP in the RAW file at ``path`` (module notes; empty for a file Exiv2
    cannot read), read in the metadata process: :class:`MetadataError` if Exiv2 crashes."""
    return _EXIV2.call("read", path)


def embed(data: bytes, metadata: Metadata, width: int, height: int) -> bytes:
    """The encoded image ``data`` (PNG, TIFF, JPEG or WebP) with ``metadata`` and the tags every
    output gets (module notes), edited in memory in the metadata process: nothing is written to a
    file there, so the caller's own checked write is the only one. If Exiv2 refuses the tags,
    ``data`` as it is and a :class:`MicroISPWarning`; :class:`MetadataError` if it crashes."""
    return _EXIV2.call("embed", data, metadata, width, height)


def png_chunks(metadata: Metadata, width: int, height: int) -> bytes:
    """The PNG chunks (``eXIf``, ``iTXt`` XMP) that carry ``metadata`` and the tags every output
    gets, made in the metadata process: a PNG encoder writes them before its ``IDAT`` chunks, so
    metadata never needs the finished file (``b""`` if Exiv2 refuses them)."""
    return _EXIV2.call("png_chunks", metadata, width, height)


def encoded(metadata: Metadata, width: int, height: int) -> tuple[bytes | None, bytes | None]:
    """The EXIF block and XMP packet of an output whose encoder embeds them (AVIF, JPEG XL), made
    in the metadata process (:func:`_encoded`): :class:`MetadataError` if Exiv2 crashes."""
    return _EXIV2.call("encoded", metadata, width, height)


_FUNCTIONS = {"read": _read, "embed": _embed, "png_chunks": _png_chunks, "encoded": _encoded}
_LENGTH = struct.Struct("<Q")


def _send(stream, value) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)) + data)
    stream.flush()


def _receive(stream):
    """The next value on ``stream``; EOFError when the other side is gone."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError
    data = stream.read(_LENGTH.unpack(head)[0])
    if len(data) < _LENGTH.unpack(head)[0]:
        raise EOFError
    return pickle.loads(data)


def serve() -> None:
    """The metadata process: requests ``(function, args)`` on standard input, answers
    ``(result, warnings)`` or ``(None, warnings, (error type, message))`` on standard output,
    until standard input closes. Ctrl-C and SIGHUP are left to the parent (which closes the pipe)."""
    for name in ("SIGINT", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while True:
        try:
            name, args = _receive(requests)
        except EOFError:
            return
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result, error = _FUNCTIONS[name](*args), None
            except BaseException as exc:  # noqa: BLE001 - handed to the parent
                result, error = None, (type(exc).__name__, str(exc))
        notes = [str(w.message) for w in caught if issubclass(w.category, MicroISPWarning)]
        _send(answers, (result, notes, error))


class _MetadataProcess:
    """The child process that runs Exiv2 (:func:`serve`), started on first use, once per
    process, and started again after a crash: a crash inside the native library (a hostile
    file) fails that file (:class:`MetadataError`), not the batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._owner = 0

    def _start(self) -> subprocess.Popen:
        if self._process is None or self._owner != os.getpid() or self._process.poll() is not None:
            package_parent = str(Path(__file__).resolve().parents[1])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (package_parent, os.environ.get("PYTHONPATH")) if p)}
            self._process = subprocess.Popen(
                [sys.executable, "-c", "from microisp_cli.metadata import serve; serve()"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                close_fds=True)
            self._owner = os.getpid()
        return self._process

    def call(self, name: str, *args):
        with self._lock:
            process = self._start()
            try:
                _send(process.stdin, (name, args))
                result, notes, error = _receive(process.stdout)
            except (EOFError, OSError, pickle.UnpicklingError):
                raise MetadataError(self._crashed(process)) from None
        for note in notes:
            warnings.warn(note, MicroISPWarning, stacklevel=3)
        if error is not None:
            kind, message = error
            if kind in ("MemoryError", "ImportError", "RuntimeError", "OSError"):  # out of memory, as such
                raise getattr(builtins, kind)(message)
            raise MetadataError(f"the metadata library failed on it ({kind}: {message})")
        return result

    def _crashed(self, process: subprocess.Popen) -> str:
        """What became of the metadata process that stopped answering (it is replaced)."""
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            code = process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        self._process = None
        if code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            return f"the metadata library (Exiv2) crashed on it ({how}); the file was not written"
        return f"the metadata process ended (exit code {code}); the file was not written"

    def close(self) -> None:
        with self._lock:
            if self._process is not None and self._owner == os.getpid():
                with contextlib.suppress(OSError):
                    self._process.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=5)
            self._process = None


_EXIV2 = _MetadataProcess()
atexit.register(_EXIV2.close)


def _array_description(name: str, value: str) -> bool:
    """Whether ``value`` is an ImageDescription that describes the RAW file's array, not the photo
    (tifffile's ``{"shape": [H, W]}``): copied into a 16-bit TIFF it would tell tifffile that the
    RGB image is (H, W) ("shaped series shape does not match page shape")."""
    if name != "ImageDescription" or not value.lstrip().startswith("{"):
        return False
    try:
        return "shape" in json.loads(value)
    except (ValueError, TypeError):
        return False
