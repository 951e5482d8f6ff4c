"""Inputs without a camera header: headerless little-endian uint16 sensor dumps
(:func:`read_dump`) and ``.npy`` mosaics (:func:`read_npy`, checked from their header first:
:func:`check_npy_header`), both described by a ``mosaic.DumpFormat``."""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from pathlib import Path

import numpy as np

from . import defaults
from .errors import CFAPhaseWarning, InputError, UnsupportedSensorError
from .files import npy_header, npy_shaped, open_regular
from .mosaic import DumpFormat, Mosaic, cfa_warning, check_megapixels, grey_world
from .white_balance import choose


def read_dump(path: Path, fmt: DumpFormat, max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """A headerless little-endian uint16 dump of ``fmt.size`` pixels."""
    assert fmt.size is not None
    w, h = fmt.size
    check_megapixels(w, h, max_megapixels, "a dump")
    expected = 2 * w * h
    actual = path.stat().st_size
    if actual != expected:
        what = "truncated" if actual < expected else "larger than expected"
        raise InputError(f"{what}: a {w}x{h} uint16 dump has {expected} bytes, the file {actual}")
    data = np.fromfile(path, dtype="<u2").reshape(h, w).astype(np.uint16, copy=False)
    bits = fmt.bits if fmt.bits is not None else _infer_bits(data)
    return _dump_mosaic(data, fmt, bits, f"{w}x{h} uint16 dump, {fmt.cfa}, {bits}-bit")


def read_npy(path: Path, fmt: DumpFormat, max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """A ``.npy`` mosaic: (H, W) Bayer in ``fmt.cfa`` order, or packed (H/2, W/2, 4) R, Gr, Gb, B.

    Integer arrays are taken as raw counts; float arrays with a maximum of at most 1 as a
    fraction of full scale (mapped to 16 bits). Shape, type and size are checked from the header
    (:func:`check_npy_header`) before any sample is read.
    """
    try:
        with open_regular(path, InputError) as f:
            shape, fortran, dtype = npy_header(f)
            check_npy_header(shape, dtype, os.fstat(f.fileno()).st_size - f.tell(), max_megapixels)
            array = npy_shaped(np.fromfile(f, dtype, math.prod(shape)), shape, fortran)
    except (ValueError, OSError, EOFError) as exc:
        raise InputError(f"not a readable .npy array ({exc})") from None
    except MemoryError:
        raise InputError("not enough memory to read the array") from None
    if array.ndim == 3 and array.shape[2] == 4:
        packed = array
        array = np.empty((2 * packed.shape[0], 2 * packed.shape[1]), packed.dtype)
        for c, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
            array[dy::2, dx::2] = packed[..., c]
        kind = f"packed {packed.shape[0]}x{packed.shape[1]}x4 (R, Gr, Gb, B)"
        fmt = dataclasses.replace(fmt, cfa="RGGB")
    else:
        kind = f"{array.shape[1]}x{array.shape[0]} Bayer"
    if array.dtype.kind == "f":
        top = float(np.nanmax(array)) if array.size else 0.0
        if not np.all(np.isfinite(array)) or np.nanmin(array) < 0:
            raise InputError("float mosaic with negative or non-finite values")
        if top <= 1.0:
            array, bits = np.round(array * 65535.0).astype(np.uint16), 16
        else:
            array, bits = np.round(array).clip(0, 65535).astype(np.uint16), None
    else:
        if array.min() < 0 or array.max() > 65535:
            raise InputError("integer mosaic with values outside 0..65535")
        array, bits = array.astype(np.uint16), None
    bits = fmt.bits if fmt.bits is not None else bits if bits is not None else _infer_bits(array)
    return _dump_mosaic(np.ascontiguousarray(array), fmt, bits, f".npy {kind}, {fmt.cfa}, {bits}-bit",
                        check_phase=kind.endswith("Bayer"))  # a packed array's order is its layout


def check_npy_header(shape: tuple[int, ...], dtype: np.dtype, data_bytes: int,
                     max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> None:
    """Refuse a ``.npy`` mosaic from what its header declares, before any sample is read: a
    layout other than (H, W) Bayer or (H/2, W/2, 4) packed, an empty array, a type other than
    integers and floats, a frame over ``max_megapixels``, fewer bytes than declared."""
    if len(shape) == 3 and shape[2] == 3:
        raise UnsupportedSensorError(f"unsupported sensor layout: {shape} array is RGB "
                                     "(already demosaiced), not a Bayer mosaic")
    if not (len(shape) == 2 or (len(shape) == 3 and shape[2] == 4)):
        raise UnsupportedSensorError(f"unsupported sensor layout: array of shape {shape}; "
                                     "expected (H, W) Bayer or (H/2, W/2, 4) packed")
    if min(shape) <= 0:
        raise InputError(f"empty array of shape {shape}: no pixels")
    if dtype.kind not in "iuf" or dtype.itemsize > 8:
        raise InputError(f"unsupported array type {dtype}; expected integers or floats")
    scale = 2 if len(shape) == 3 else 1
    check_megapixels(shape[1] * scale, shape[0] * scale, max_megapixels, "a .npy mosaic")
    declared = math.prod(shape) * dtype.itemsize
    if data_bytes < declared:
        raise InputError(f"truncated: the header declares {shape} {dtype} ({declared} bytes), "
                         f"the file holds {max(data_bytes, 0)}")


def _infer_bits(data: np.ndarray) -> int:
    top = int(data.max()) if data.size else 0
    return next(b for b in (8, 10, 12, 14, 16) if top < 2 ** b)


def _dump_mosaic(data: np.ndarray, fmt: DumpFormat, bits: int, description: str,
                 check_phase: bool = True) -> Mosaic:
    if int(data.max()) == int(data.min()):
        raise InputError(f"no image: every sample is {int(data.max())}")
    white = float(2 ** bits - 1)
    if fmt.black >= white:
        raise InputError(f"black level {fmt.black} is not below the white level {white:g}")
    black = np.full((2, 2), fmt.black, np.float32)
    choice = choose("camera", as_shot=None, problem=None, daylight=None, matrix=None,  # no metadata: grey world
                    grey=lambda: grey_world(data, fmt.cfa, black, white))
    mosaic = Mosaic(data=data, cfa=fmt.cfa, black=black, white=white,
                    wb=choice.gains, wb_source=choice.source, matrix_source="identity (no colour metadata)",
                    description=description)
    doubt = cfa_warning(mosaic, "--cfa") if check_phase else None
    if doubt is not None:
        warnings.warn(doubt, CFAPhaseWarning, stacklevel=3)
    return mosaic
