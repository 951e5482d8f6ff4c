"""The photographer's controls on a decoded :class:`raw.Mosaic`: white balance, automatic exposure,
half-size binning, and resizing of the finished image. Pure NumPy (and Pillow for resampling).

Every fallback is one :class:`errors.WhiteBalanceFallback` warning naming what is used instead.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np

from . import defaults
from .colour import Kelvin, kelvin_gains
from .errors import WhiteBalanceFallback
from .raw import Mosaic, grey_world
from .vocabulary import clip_level


def apply_wb(mosaic: Mosaic, wb: str | Kelvin | tuple[float, float, float]) -> Mosaic:
    """``mosaic`` with the white balance ``wb`` asks for (``options.DevelopOptions.wb``):
    ``"camera"`` keeps the file's (as shot, with the fallbacks of :mod:`raw`), ``"auto"``
    measures grey-world gains, ``"daylight"`` takes LibRaw's daylight gains for the camera
    (grey world, with a warning, when there are none), a :class:`colour.Kelvin` turns a colour
    temperature and tint into gains through the camera's matrices (:func:`colour.kelvin_gains`;
    grey world, with a warning, for a camera without them) and (R, G, B) gains are used as given."""
    if wb == "camera":
        return mosaic
    if isinstance(wb, Kelvin):
        if mosaic.daylight_wb is not None and not mosaic.matrix_source.startswith("identity"):
            gains = kelvin_gains(wb, mosaic.cam_to_srgb, mosaic.daylight_wb)
            low, high = defaults.WB_GAIN_LIMITS
            if np.all(np.isfinite(gains)) and np.all((gains >= low) & (gains <= high)):
                return dataclasses.replace(mosaic, wb=gains, wb_source=f"{wb} (colour temperature)")
            problem = f"{wb} gives unusable gains for this camera ({', '.join(f'{g:.3g}' for g in gains)})"
        else:
            problem = f"{wb} needs the camera's colour matrix and daylight white balance, and this file has none"
        warnings.warn(f"{problem}; using grey world gains instead", WhiteBalanceFallback, stacklevel=2)
        gains = grey_world(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white)
        return dataclasses.replace(mosaic, wb=gains, wb_source="grey world")
    if wb == "daylight" and mosaic.daylight_wb is not None:
        return dataclasses.replace(mosaic, wb=mosaic.daylight_wb, wb_source="daylight (LibRaw)")
    if wb in ("daylight", "auto"):
        if wb == "daylight":
            warnings.warn("no daylight white balance is known for this camera; using grey world "
                          "gains instead", WhiteBalanceFallback, stacklevel=2)
        gains = grey_world(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white)
        return dataclasses.replace(mosaic, wb=gains, wb_source="grey world")
    return dataclasses.replace(mosaic, wb=np.asarray(wb, np.float32), wb_source="user")


def auto_exposure(mosaic: Mosaic, step: int = 8) -> float:
    """EV that brings the log-average of the green samples (every ``step``-th 2x2 cell, clipped
    samples left out) to ``defaults.EXPOSURE_AUTO_TARGET`` (18% grey), but no further than
    puts their ``defaults.EXPOSURE_AUTO_PERCENTILE``-th percentile at white (so at most about
    1% of them clip), within +-``defaults.EXPOSURE_AUTO_LIMIT``."""
    logs = []
    for dy in range(2):
        for dx in range(2):
            if mosaic.cfa[2 * dy + dx] != "G":
                continue
            samples = mosaic.data[dy::2 * step, dx::2 * step].astype(np.float32)
            black = float(mosaic.black[dy, dx])
            keep = samples < clip_level(mosaic.white)
            level = (samples[keep] - black) / (mosaic.white - black)
            logs.append(np.log(np.maximum(level, 1e-4)))
    values = np.concatenate(logs) if logs else np.zeros(0)
    if values.size == 0:
        return 0.0
    ev = math.log2(defaults.EXPOSURE_AUTO_TARGET) - float(values.mean()) / math.log(2)
    ev = min(ev, -float(np.percentile(values, defaults.EXPOSURE_AUTO_PERCENTILE)) / math.log(2))
    limit = defaults.EXPOSURE_AUTO_LIMIT
    return float(min(limit, max(-limit, ev)))


def half_size(mosaic: Mosaic) -> Mosaic:
    """``mosaic`` binned 2x2 per CFA site: each site of a 2x2 cell is the mean of the four
    same-coloured samples of a 4x4 block, so the mosaic keeps its CFA order and levels and is
    half as wide and high (odd halves rounded down; at least 2x2)."""
    data = mosaic.data
    height, width = data.shape
    cells_y, cells_x = max(1, height // 4), max(1, width // 4)
    out = np.empty((2 * cells_y, 2 * cells_x), np.uint16)
    for dy in range(2):
        for dx in range(2):
            site = data[dy::2, dx::2][:2 * cells_y, :2 * cells_x].astype(np.float32)
            if site.shape[0] < 2 * cells_y or site.shape[1] < 2 * cells_x:  # a frame under 4 pixels
                site = np.pad(site, ((0, 2 * cells_y - site.shape[0]), (0, 2 * cells_x - site.shape[1])),
                              mode="edge")
            binned = site.reshape(cells_y, 2, cells_x, 2).mean(axis=(1, 3))
            out[dy::2, dx::2] = np.rint(binned).astype(np.uint16)
    out = out[:max(2, height // 2), :max(2, width // 2)]
    return dataclasses.replace(mosaic, data=np.ascontiguousarray(out),
                               description=f"{mosaic.description}, half size")


def target_size(width: int, height: int, long_side: int | None = None, box_width: int | None = None,
                box_height: int | None = None, upscale: bool = False) -> tuple[int, int] | None:
    """The (width, height) a ``width`` x ``height`` photo is resampled to, keeping its aspect:
    the largest that fits every limit given (``long_side``: the longer side; ``box_width``,
    ``box_height``: the width and height), or None when no limit is given or the photo already
    has that size. Without ``upscale`` a photo is never enlarged: None when it already fits."""
    limits = [long_side / max(width, height)] if long_side else []
    limits += [box_width / width] if box_width else []
    limits += [box_height / height] if box_height else []
    if not limits:
        return None
    scale = min(limits)
    if scale >= 1.0 and not upscale:
        return None
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return None if size == (width, height) else size


def resize(image: np.ndarray, size: tuple[int, int], colorspace: str = defaults.COLORSPACE) -> np.ndarray:
    """An (H, W, 3) uint8/uint16 image encoded in ``colorspace`` resampled to ``size`` (width,
    height) in linear light: decoded with the space's curve, resampled (Lanczos, Pillow, float32
    per channel), clipped (Lanczos rings below black), encoded and quantised again. Resampling
    the encoded values would darken fine bright detail and edges (a mean of encoded values is
    darker than the encoded mean of the light)."""
    from PIL import Image

    from .colour import space

    curve = space(colorspace)
    top = float(np.iinfo(image.dtype).max)
    linear = curve.decode(np.asarray(image, np.float32) / np.float32(top)).astype(np.float32)
    channels = [np.asarray(Image.fromarray(np.ascontiguousarray(linear[..., c]), "F")
                           .resize(size, Image.Resampling.LANCZOS)) for c in range(3)]
    encoded = curve.encode(np.clip(np.stack(channels, axis=-1), 0.0, 1.0))
    return np.rint(np.asarray(encoded, np.float32) * np.float32(top)).astype(image.dtype)


def sharpen(image: np.ndarray, amount: float, sigma: float = defaults.SHARPEN_SIGMA) -> np.ndarray:
    """Capture sharpening of an (H, W, 3) uint8/uint16 image: an unsharp mask of its luminance
    (the mean of the encoded channels), ``amount`` times the detail that a Gaussian of ``sigma``
    pixels removes, added to every channel alike, so edges gain contrast without colour fringes.
    ``amount`` 0 returns the image as is."""
    if amount <= 0:
        return image
    top = float(np.iinfo(image.dtype).max)
    values = image.astype(np.float32) / np.float32(top)
    luma = values.mean(axis=-1)
    radius = max(1, int(math.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    blurred = luma
    for axis in (0, 1):  # separable Gaussian, edges reflected
        padded = np.pad(blurred, [(radius, radius) if a == axis else (0, 0) for a in (0, 1)], mode="reflect")
        size = blurred.shape[axis]
        blurred = sum(w * np.take(padded, np.arange(i, i + size), axis=axis) for i, w in enumerate(taps))
    values += (np.float32(amount) * (luma - blurred))[..., None]
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(top)).astype(image.dtype)
