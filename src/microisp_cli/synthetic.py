"""Synthetic scenes and mosaics, deterministic for a seed: the one home of the made-up frames
that benchmarks, export calibration and tests develop.

- :func:`synthetic_mosaic` / :func:`synthetic_packed`: the benchmark frame, a smooth 12-bit
  RGGB scene with mild noise (``microisp bench``, ``benchmarks/``).
"""

from __future__ import annotations

import numpy as np

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
