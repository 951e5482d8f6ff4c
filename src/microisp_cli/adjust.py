"""The photographer's controls on a decoded :class:`raw.Mosaic`: automatic exposure and half-size
binning; on the finished image: sharpening, and resizing in linear light. Pure NumPy (and Pillow
for resampling). White balance is :mod:`white_balance`'s."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import defaults
from .raw import Mosaic
from .vocabulary import clip_level


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
