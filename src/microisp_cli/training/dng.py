"""Writing Bayer DNG files with tifffile: synthetic evaluation sets and test inputs.

A minimal DNG 1.4: one uncompressed 16-bit CFA image with the tags LibRaw needs to decode it as a
camera RAW (CFA pattern, black and white levels, optionally ColorMatrix1 and AsShotNeutral, and
the orientation).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..bayer import check_cfa

CFA_CODES = {"R": 0, "G": 1, "B": 2}

# TIFF / DNG tag numbers
_CFA_REPEAT_PATTERN_DIM, _CFA_PATTERN = 33421, 33422
_DNG_VERSION, _DNG_BACKWARD_VERSION, _UNIQUE_CAMERA_MODEL = 50706, 50707, 50708
_CFA_PLANE_COLOR, _CFA_LAYOUT = 50710, 50711
_BLACK_LEVEL_REPEAT_DIM, _BLACK_LEVEL, _WHITE_LEVEL = 50713, 50714, 50717
_COLOR_MATRIX_1, _AS_SHOT_NEUTRAL, _CALIBRATION_ILLUMINANT_1 = 50721, 50728, 50778
_DEFAULT_CROP_ORIGIN, _DEFAULT_CROP_SIZE, _ACTIVE_AREA = 50719, 50720, 50829
_D65 = 21


def _rationals(values: Sequence[float], signed: bool) -> list[int]:
    out: list[int] = []
    for v in values:
        f = Fraction(float(v)).limit_denominator(1_000_000)
        num, den = f.numerator, f.denominator
        if not signed and num < 0:
            raise ValueError("unsigned rational cannot be negative")
        out += [num, den]
    return out


def write_dng(
    path: str | Path,
    mosaic: np.ndarray,
    cfa: str = "RGGB",
    black_level: float | Sequence[float] = 0,
    white_level: int = 4095,
    color_matrix: np.ndarray | None = None,
    as_shot_neutral: Sequence[float] | None = None,
    orientation: int = 1,
    camera: str = "microisp synthetic",
    make_model: bool = True,
    make: str = "microisp",
    active_area: tuple[int, int, int, int] | None = None,
    default_crop: tuple[int, int, int, int] | None = None,
) -> Path:
    """Write ``mosaic`` (HxW uint16 Bayer data, CFA ``cfa``) as a DNG that rawpy can read.

    ``black_level``: one value, or four in the order of the 2x2 CFA cell (row-major).
    ``color_matrix``: DNG ColorMatrix1 (XYZ D65 -> camera, 3x3); omitted when None.
    ``as_shot_neutral``: camera RGB of a neutral (1/white-balance gains); omitted when None.
    ``orientation``: the TIFF Orientation tag (1 = as stored, 3 = 180, 6 = 90 CW, 8 = 90 CCW).
    ``camera``: the UniqueCameraModel, also written as Model (with Make ``make``) unless
    ``make_model`` is False (some cameras write UniqueCameraModel alone).
    ``active_area``: DNG ActiveArea (top, left, bottom, right); ``default_crop``: DNG
    DefaultCropOrigin and DefaultCropSize as (x, y, width, height), relative to the active area.
    """
    import tifffile

    check_cfa(cfa)
    mosaic = np.ascontiguousarray(mosaic, dtype=np.uint16)
    if mosaic.ndim != 2:
        raise ValueError(f"mosaic must be 2-D, got shape {mosaic.shape}")
    blacks = [float(black_level)] * 4 if np.ndim(black_level) == 0 else [float(b) for b in black_level]
    tags = [
        (_DNG_VERSION, "B", 4, (1, 4, 0, 0), True),
        (_DNG_BACKWARD_VERSION, "B", 4, (1, 1, 0, 0), True),
        (_UNIQUE_CAMERA_MODEL, "s", 0, camera, True),
        (_CFA_REPEAT_PATTERN_DIM, "H", 2, (2, 2), True),
        (_CFA_PATTERN, "B", 4, tuple(CFA_CODES[c] for c in cfa), True),
        (_CFA_PLANE_COLOR, "B", 3, (0, 1, 2), True),
        (_CFA_LAYOUT, "H", 1, 1, True),
        (_BLACK_LEVEL_REPEAT_DIM, "H", 2, (2, 2), True),
        (_BLACK_LEVEL, "2I", 4, _rationals(blacks, signed=False), True),
        (_WHITE_LEVEL, "I", 1, int(white_level), True),
    ]
    if color_matrix is not None:
        cm = np.asarray(color_matrix, float).reshape(9)
        tags += [(_COLOR_MATRIX_1, "2i", 9, _rationals(cm, signed=True), True),
                 (_CALIBRATION_ILLUMINANT_1, "H", 1, _D65, True)]
    if as_shot_neutral is not None:
        tags.append((_AS_SHOT_NEUTRAL, "2I", 3, _rationals(as_shot_neutral, signed=False), True))
    if active_area is not None:
        tags.append((_ACTIVE_AREA, "I", 4, tuple(int(v) for v in active_area), True))
    if default_crop is not None:
        x, y, w, h = (int(v) for v in default_crop)
        tags += [(_DEFAULT_CROP_ORIGIN, "I", 2, (x, y), True), (_DEFAULT_CROP_SIZE, "I", 2, (w, h), True)]
    names = [(271, "s", 0, make, True), (272, "s", 0, camera, True)] if make_model else []
    path = Path(path)
    tifffile.imwrite(
        path, mosaic, photometric=32803, planarconfig=1, compression=None,
        subfiletype=0, metadata=None,
        extratags=tags + names + [(274, "H", 1, int(orientation), True)],
    )
    return path
