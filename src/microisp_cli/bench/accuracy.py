"""How far a fast path's image is from the FP32 reference path's: the tolerance every fast path
of the engine (issue 26) is held to, by the tests and by ``benchmarks/fast_path_accuracy.py``."""

from __future__ import annotations

import dataclasses

import numpy as np

#: A fast path keeps the FP32 path's output to at least this PSNR (dB, over the full scale) ...
MIN_PSNR_DB = 50.0
#: ... with at least this fraction of the 8-bit values within one level.
MIN_WITHIN_ONE = 0.999


@dataclasses.dataclass(frozen=True)
class Agreement:
    psnr_db: float
    within_one: float  # fraction of values at most one 8-bit level apart
    max_levels: float  # largest difference, 8-bit levels

    @property
    def ok(self) -> bool:
        return self.psnr_db >= MIN_PSNR_DB and self.within_one >= MIN_WITHIN_ONE


def agreement(reference: np.ndarray, image: np.ndarray) -> Agreement:
    """Compare two images of one integer type (uint8 or uint16), in 8-bit levels."""
    if reference.dtype != image.dtype or reference.shape != image.shape:
        raise ValueError(f"images differ in type or shape: {reference.dtype}{reference.shape} "
                         f"vs {image.dtype}{image.shape}")
    scale = 255.0 / np.iinfo(reference.dtype).max
    diff = np.abs(reference.astype(np.float64) - image.astype(np.float64)) * scale
    mse = float(np.mean(diff ** 2))
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(255.0 ** 2 / mse)
    return Agreement(psnr, float(np.mean(diff <= 1.0 + 1e-9)), float(diff.max()))
