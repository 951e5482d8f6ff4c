"""Synthetic scenes and mosaics, deterministic for a seed: the one home of the made-up frames
that benchmarks, export calibration and tests develop.

- :func:`synthetic_mosaic` / :func:`synthetic_packed`: the benchmark frame, a smooth 12-bit
  RGGB scene with mild noise (``microisp bench``, ``benchmarks/``);
- :func:`synthetic_scene`: a drawn linear RGB scene of gradients, patches, discs and a grating
  (``export``'s INT8 calibration and accuracy check);
- :func:`gradient_scene`: a smooth linear RGB ramp (small test DNGs, the fuzz campaign's seeds);
- :func:`random_mosaic`: uniform noise as a uint16 mosaic (the smallest valid test DNG).

Mosaicking a scene is ``bayer.mosaic_rggb``.
"""

from __future__ import annotations

import numpy as np

from .colour import srgb_decode
from .resolution import Resolution

#: Levels of the synthetic frame: a 12-bit sensor with a black level, like a phone's.
SYNTHETIC_BLACK = 256
SYNTHETIC_WHITE = 4095


def synthetic_mosaic(resolution: Resolution, seed: int = 0) -> np.ndarray:
    """A deterministic RGGB Bayer frame (H, W) uint16, 12-bit (black 256, white 4095).

    A smooth colour scene (low-frequency waves per colour, a diagonal gradient) with mild noise:
    image-like enough for LibRaw and for PNG compression, and the same on every machine. The
    network's cost does not depend on the content.
    """
    h, w = resolution.height, resolution.width
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    rng = np.random.default_rng(seed)
    out = np.empty((h, w), np.uint16)
    span = SYNTHETIC_WHITE - SYNTHETIC_BLACK
    for (dy, dx), (fy, fx, level) in {(0, 0): (3.0, 5.0, 0.30), (0, 1): (4.0, 3.0, 0.45),
                                      (1, 0): (4.0, 3.0, 0.45), (1, 1): (5.0, 2.0, 0.25)}.items():
        ys, xs = y[dy::2], x[:, dx::2]
        scene = level * (1.0 + 0.6 * np.sin(2 * np.pi * fy * ys) * np.cos(2 * np.pi * fx * xs))
        scene = scene * (0.6 + 0.4 * (xs + ys) / 2)
        scene += rng.standard_normal(scene.shape, dtype=np.float32) * 0.005
        np.clip(scene, 0.0, 1.0, out=scene)
        out[dy::2, dx::2] = (SYNTHETIC_BLACK + scene * span + 0.5).astype(np.uint16)
    return out


def synthetic_packed(resolution: Resolution, seed: int = 0) -> np.ndarray:
    """:func:`synthetic_mosaic` packed as the network's input: (H/2, W/2, 4) float32 in [0, 1],
    black-subtracted and scaled to the white level, channels R, Gr, Gb, B."""
    mosaic = synthetic_mosaic(resolution, seed)
    h, w = resolution.packed_shape
    packed = np.empty((h, w, 4), np.float32)
    scale = np.float32(1.0 / (SYNTHETIC_WHITE - SYNTHETIC_BLACK))
    for c, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        plane = packed[..., c]
        plane[...] = mosaic[dy::2, dx::2]
        plane -= SYNTHETIC_BLACK
        plane *= scale
    return packed


# --- scenes and mosaics of tests, calibration and the fuzz campaign -------------------------------
def synthetic_scene(size: int, seed: int) -> np.ndarray:
    """A drawn test scene (size, size, 3) in linear [0, 1]: smooth gradients, flat colour
    patches, discs and a fine grating, so a calibration sees edges, flats and textures (not
    noise)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    img = np.stack([a + b * yy + c * xx for a, b, c in rng.uniform(0, 0.5, (3, 3))], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, size, 2)
        h, w = rng.integers(size // 8, size // 2, 2)
        img[y0:y0 + h, x0:x0 + w] = rng.uniform(0, 1, 3)
    for _ in range(4):
        cy, cx, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 1, 3)
    period = rng.uniform(2.5, 6.0)
    band = (yy > 0.75) & (xx < 0.5)
    img[band] *= (0.5 + 0.5 * np.sin(2 * np.pi * xx * size / period))[band][:, None]
    return np.clip(srgb_decode(np.clip(img, 0, 1)), 0, 1).astype(np.float32)


def gradient_scene(h: int, w: int, base: tuple[float, float, float] = (0.2, 0.2, 0.3),
                   slope: tuple[float, float, float] = (0.6, 0.5, 0.3)) -> np.ndarray:
    """(h, w, 3) float64 linear RGB: red ramps along x, green along y, blue with x * y
    (``base + slope * (x, y, x * y)``, x and y in [0, 1) over the longer side)."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    return np.stack([base[0] + slope[0] * x, base[1] + slope[1] * y, base[2] + slope[2] * (x * y)], -1)


def random_mosaic(h: int, w: int, seed=0, low: int = 100, high: int = 4000) -> np.ndarray:
    """(h, w) uint16 of uniform integers in [``low``, ``high``) from ``default_rng(seed)``."""
    return np.random.default_rng(seed).integers(low, high, (h, w)).astype(np.uint16)
