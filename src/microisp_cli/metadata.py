"""The camera's metadata, from the RAW file into the developed photo: EXIF and XMP through pyexiv2.

pyexiv2 (a maintained binding of the Exiv2 C++ library, shipped with it in the wheel) reads the
metadata of every RAW format Exiv2 knows and writes it into PNG, TIFF, JPEG and WebP. Measured on
the Canon DNG of ../shared (docs/cli.md): copying its 21 photo tags into a 1.5 MP JPEG took
0.004 s with pyexiv2 and 0.002 s with the ``exiv2`` bindings (same library, a wordier API), while
exifread only reads, so writing with Pillow would need a hand-written tag and type table.

What is copied (:func:`read`): every ``Exif.Photo`` (exposure, lens, dates, ...) and ``Exif.GPSInfo``
tag, the descriptive ``Exif.Image`` tags (make, model, date, artist, copyright, description), the
TIFF/EP exposure tags that older RAW formats keep in ``Exif.Image`` (moved to ``Exif.Photo``) and
the XMP packet; a DNG without Make and Model gets its ``UniqueCameraModel`` as Model. Left out: maker notes, the RAW file's structure (strips, tiles, sub-IFDs, CFA and
DNG colour tags) and its thumbnails. What :func:`write` sets: ``Orientation`` 1 (the pixels are
already rotated), ``Software: microisp VERSION``, the pixel size and a resolution of
``defaults.RESOLUTION_DPI`` dots per inch.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

from . import __version__, defaults
from .errors import MicroISPWarning

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


def read(path: str | Path) -> Metadata:
    """The photo's EXIF and XMP in the RAW file at ``path`` (see the module's notes). A file
    Exiv2 cannot read (a sensor dump, a ``.npy``) has none: an empty :class:`Metadata`."""
    pyexiv2 = _pyexiv2()
    try:
        with _image(pyexiv2, path) as image:
            exif, xmp = image.read_exif(), image.read_xmp()
    except (RuntimeError, OSError, UnicodeDecodeError):
        return Metadata()
    kept: dict[str, str] = {}
    for key, value in exif.items():
        family, group, name = key.split(".", 2)
        if group in ("Photo", "GPSInfo") and name not in SKIPPED_PHOTO_TAGS:
            kept[key] = value
        elif group == "Image" and name in IMAGE_TAGS:
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


def _output_exif(metadata: Metadata, width: int, height: int) -> dict[str, str]:
    """``metadata``'s EXIF with the tags every output gets (module notes)."""
    dpi = f"{defaults.RESOLUTION_DPI}/1"
    return {**metadata.exif, "Exif.Image.Orientation": "1", "Exif.Image.Software": software(),
            "Exif.Image.XResolution": dpi, "Exif.Image.YResolution": dpi,
            "Exif.Image.ResolutionUnit": "2", "Exif.Photo.PixelXDimension": str(width),
            "Exif.Photo.PixelYDimension": str(height)}


def encoded(metadata: Metadata, width: int, height: int) -> tuple[bytes | None, bytes | None]:
    """The EXIF block (TIFF bytes after ``Exif\0\0``) and the XMP packet of an output, for the
    formats whose encoder embeds them (AVIF, JPEG XL: Exiv2 writes neither). Exiv2 writes them
    into a tiny JPEG in memory, so the tags are the same as :func:`write` gives the other
    formats; (None, None) with a :class:`MicroISPWarning` if it refuses them."""
    import io

    from PIL import Image

    pyexiv2 = _pyexiv2()
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "JPEG")
    try:
        image = pyexiv2.ImageData(buffer.getvalue())
        try:
            image.modify_exif(_output_exif(metadata, width, height))
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


def write(path: str | Path, metadata: Metadata, width: int, height: int) -> None:
    """Add ``metadata`` to the image file at ``path`` (PNG, TIFF, JPEG or WebP), with the tags
    every output gets (module notes). If Exiv2 refuses them, the image is kept without them and
    a :class:`MicroISPWarning` says so."""
    pyexiv2 = _pyexiv2()
    exif = _output_exif(metadata, width, height)
    try:
        with _image(pyexiv2, path) as image:
            image.modify_exif(exif)
            if metadata.xmp:
                image.modify_xmp(metadata.xmp)
            if isinstance(image, pyexiv2.ImageData):  # a name that is not UTF-8: edited in memory
                Path(path).write_bytes(image.get_bytes())
    except RuntimeError as exc:
        warnings.warn(f"the camera's metadata could not be written ({exc})", MicroISPWarning, stacklevel=2)
