"""Lens correction through lensfun (``lensfunpy``, the rawpy author's binding, with the lensfun
database): distortion, lateral chromatic aberration (TCA) and vignetting, from the file's camera
and lens metadata (``--lens-correction``, the ``[lens]`` extra).

Applied to the developed photo in linear light (the output space's curve undone, 16-bit), before
sharpening and resizing: vignetting is one radial gain for every channel, so it commutes with the
colour matrix, and the geometry (distortion and TCA: one resampling map per channel) moves light,
which only adds up correctly in linear light. Pixels are resampled bilinearly; positions the
lens maps from outside the frame are filled from its nearest edge.

:func:`lens_for` finds the camera and lens (lensfun's own fuzzy search over maker and model) and
says in one line why a file cannot be corrected (no lens named, unknown camera or lens, no focal
length); :func:`correct` applies what lensfun knows for that lens at that focal length, aperture
and distance.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .colour import space
from .errors import LensCorrectionSkipped
from .extras import require


@dataclasses.dataclass(frozen=True)
class LensSetting:
    """What lensfun needs, read from the file's EXIF: camera maker and model, lens maker and
    model, focal length (mm), aperture (f-number) and focus distance (m)."""

    camera_maker: str
    camera_model: str
    lens_maker: str
    lens_model: str
    focal: float
    aperture: float
    distance: float


def _number(text: str | None) -> float:
    """An EXIF rational or number (``"180/10"``, ``"5.6"``) as a float; NaN when unusable."""
    try:
        if text is None:
            return math.nan
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den) if float(den) else math.nan
        return float(text)
    except ValueError:
        return math.nan


def setting_from_exif(exif: dict[str, str]) -> LensSetting:
    """The :class:`LensSetting` in EXIF tags as :mod:`metadata` reads them (pyexiv2 keys)."""
    aperture = _number(exif.get("Exif.Photo.FNumber"))
    distance = _number(exif.get("Exif.Photo.SubjectDistance"))
    return LensSetting(
        camera_maker=exif.get("Exif.Image.Make", "").strip(),
        camera_model=exif.get("Exif.Image.Model", "").strip(),
        lens_maker=exif.get("Exif.Photo.LensMake", "").strip(),
        lens_model=exif.get("Exif.Photo.LensModel", "").strip(),
        focal=_number(exif.get("Exif.Photo.FocalLength")),
        aperture=aperture if aperture > 0 else 8.0,  # unknown: a middle aperture (vignetting only)
        distance=distance if distance > 0 else 1000.0,  # unknown: focused far
    )


def lens_for(setting: LensSetting):
    """(lensfun camera, lensfun lens) for ``setting``, or (None, reason) with the one-line reason
    lens correction is not possible."""
    lensfunpy = require("lensfunpy", "lens", "--lens-correction")
    database = _database(lensfunpy)
    if not setting.camera_model:
        return None, "the file names no camera"
    cameras = database.find_cameras(setting.camera_maker or None, setting.camera_model)
    if not cameras:
        return None, f"the camera {setting.camera_maker} {setting.camera_model} is not in the lensfun database"
    if not setting.lens_model:
        return None, "the file names no lens (EXIF LensModel)"
    lenses = database.find_lenses(cameras[0], setting.lens_maker or None, setting.lens_model)
    if not lenses:
        return None, f"the lens {setting.lens_model} is not in the lensfun database for this camera"
    if not setting.focal > 0:
        return None, "the file has no focal length"
    return cameras[0], lenses[0]


_DATABASE = None


def _database(lensfunpy):
    global _DATABASE
    if _DATABASE is None:
        _DATABASE = lensfunpy.Database()
    return _DATABASE


def correct(image: np.ndarray, setting: LensSetting, colorspace: str) -> tuple[np.ndarray, str]:
    """``image`` (H, W, 3) uint16 in ``colorspace`` corrected for the lens of ``setting``:
    vignetting, then distortion and TCA, in linear light; with a description of what was done
    (``"Canon EF-S 18-55mm f/3.5-5.6 at 18 mm f/5.6: distortion, TCA"``). Raises
    :class:`LensCorrectionSkipped` (a warning category, raised as an exception here) with the
    reason when the lens cannot be found."""
    lensfunpy = require("lensfunpy", "lens", "--lens-correction")
    camera, lens = lens_for(setting)
    if camera is None:
        raise LensCorrectionSkipped(lens)
    height, width = image.shape[:2]
    curve = space(colorspace)
    linear = np.ascontiguousarray(curve.decode(image.astype(np.float32) / np.float32(65535)), np.float32)
    modifier = lensfunpy.Modifier(lens, camera.crop_factor, width, height)
    modifier.initialize(setting.focal, setting.aperture, setting.distance, pixel_format=np.float32,
                        flags=lensfunpy.ModifyFlags.VIGNETTING | lensfunpy.ModifyFlags.DISTORTION
                        | lensfunpy.ModifyFlags.TCA)
    done = []
    if modifier.apply_color_modification(linear):
        done.append("vignetting")
    coordinates = modifier.apply_subpixel_geometry_distortion()
    if coordinates is not None:
        linear = remap(linear, coordinates)
        done.append("distortion and TCA")
    encoded = curve.encode(np.clip(linear, 0.0, 1.0))
    out = np.rint(np.asarray(encoded, np.float32) * np.float32(65535)).astype(np.uint16)
    what = ", ".join(done) if done else "nothing (no calibration data at this setting)"
    return out, f"{lens.model} at {setting.focal:g} mm f/{setting.aperture:g}: {what}"


def remap(image: np.ndarray, coordinates: np.ndarray) -> np.ndarray:
    """``image`` (H, W, 3) float32 resampled bilinearly at ``coordinates`` (H, W, 3, 2): for each
    output pixel and channel, the (x, y) position to read in ``image`` (lensfun's subpixel
    geometry map); positions outside are clamped to the nearest edge."""
    height, width = image.shape[:2]
    out = np.empty_like(image)
    for channel in range(3):
        x = np.clip(coordinates[..., channel, 0], 0, width - 1)
        y = np.clip(coordinates[..., channel, 1], 0, height - 1)
        x0, y0 = np.floor(x).astype(np.intp), np.floor(y).astype(np.intp)
        x1, y1 = np.minimum(x0 + 1, width - 1), np.minimum(y0 + 1, height - 1)
        fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
        plane = image[..., channel]
        top = plane[y0, x0] * (1 - fx) + plane[y0, x1] * fx
        bottom = plane[y1, x0] * (1 - fx) + plane[y1, x1] * fx
        out[..., channel] = top * (1 - fy) + bottom * fy
    return out
