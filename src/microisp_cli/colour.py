"""Colour spaces of the output: primaries, white points, transfer curves and ICC profiles, in one place.

Every output colour space is written from its published primaries and white point (CIE 1931 xy)
and its published transfer curve:

- ``srgb``: IEC 61966-2-1 (Rec. 709 primaries, D65, the sRGB curve);
- ``adobe-rgb``: Adobe RGB (1998) (D65, gamma 563/256);
- ``display-p3``: Apple Display P3 (DCI-P3 primaries, D65, the sRGB curve);
- ``rec2020``: ITU-R BT.2020 (D65, the BT.2020 / BT.709 camera curve);
- ``prophoto``: ROMM RGB (ISO 22028-2; D50, gamma 1.8 with a linear toe below 1/512);
- ``linear-srgb``: sRGB primaries, D65, no curve (linear light).

Linear sRGB -> another space goes through XYZ, with a Bradford chromatic adaptation where the
white points differ (ProPhoto's D50). :func:`icc_profile` builds a small ICC v2 display profile
of each space (D50-adapted colorants, Bradford; a 1024-entry tone curve), which colour-managed
viewers and LittleCMS read back to the same primaries (tests/test_colour.py).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable
from functools import cache

import numpy as np

from . import defaults

Curve = Callable[[np.ndarray], np.ndarray]

#: CIE 1931 xy of the standard illuminants used here.
D65 = (0.3127, 0.3290)
D50 = (0.3457, 0.3585)
#: The ICC profile connection space white (D50, as the ICC specification writes it in XYZ).
ICC_D50_XYZ = (0.9642, 1.0, 0.8249)

#: The Bradford cone response matrix (Lam 1985), for chromatic adaptation.
BRADFORD = np.array([[0.8951, 0.2664, -0.1614],
                     [-0.7502, 1.7135, 0.0367],
                     [0.0389, -0.0685, 1.0296]])


# --- transfer curves ------------------------------------------------------------------------------
#: The sRGB curve's constants (IEC 61966-2-1): linear segment below BREAK, then a 1/GAMMA power.
SRGB_BREAK, SRGB_SLOPE, SRGB_GAMMA, SRGB_OFFSET = 0.0031308, 12.92, 2.4, 0.055


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer curve (IEC 61966-2-1) on values in [0, 1]; float32 in, float32 out."""
    linear = np.asarray(linear, np.float32)
    low = linear * np.float32(SRGB_SLOPE)
    high = np.float32(1 + SRGB_OFFSET) * np.power(np.maximum(linear, np.float32(SRGB_BREAK)),
                                                  np.float32(1 / SRGB_GAMMA)) - np.float32(SRGB_OFFSET)
    return np.where(linear <= np.float32(SRGB_BREAK), low, high).astype(np.float32)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    """The inverse of :func:`srgb_encode`."""
    encoded = np.asarray(encoded, np.float32)
    return np.where(encoded <= 0.04045, encoded / 12.92,
                    np.power((np.maximum(encoded, 0.04045) + 0.055) / 1.055, 2.4)).astype(np.float32)


def _gamma(exponent: float) -> tuple[Curve, Curve]:
    def encode(v):
        return np.power(np.maximum(np.asarray(v, np.float32), 0.0), np.float32(1 / exponent)).astype(np.float32)

    def decode(v):
        return np.power(np.maximum(np.asarray(v, np.float32), 0.0), np.float32(exponent)).astype(np.float32)
    return encode, decode


def _rec2020_encode(v):
    v = np.asarray(v, np.float32)
    a, b = np.float32(1.09929682680944), np.float32(0.018053968510807)
    return np.where(v < b, 4.5 * v, a * np.power(np.maximum(v, b), np.float32(0.45)) - (a - 1)).astype(np.float32)


def _rec2020_decode(v):
    v = np.asarray(v, np.float32)
    a, b = np.float32(1.09929682680944), np.float32(0.018053968510807)
    return np.where(v < 4.5 * b, v / 4.5,
                    np.power((np.maximum(v, 4.5 * b) + (a - 1)) / a, np.float32(1 / 0.45))).astype(np.float32)


def _romm_encode(v):
    v = np.asarray(v, np.float32)
    return np.where(v < 1 / 512, 16 * v, np.power(np.maximum(v, 1 / 512), np.float32(1 / 1.8))).astype(np.float32)


def _romm_decode(v):
    v = np.asarray(v, np.float32)
    return np.where(v < 16 / 512, v / 16, np.power(np.maximum(v, 16 / 512), np.float32(1.8))).astype(np.float32)


def _identity(v):
    return np.asarray(v, np.float32)


# --- the spaces ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ColourSpace:
    """An RGB output space: ``primaries`` (xy of R, G, B), ``white`` (xy), the transfer curve
    (``encode``: linear -> stored, ``decode``: its inverse) and the ICC profile's description."""

    name: str
    description: str
    primaries: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    white: tuple[float, float]
    encode: Curve
    decode: Curve


_REC709 = ((0.640, 0.330), (0.300, 0.600), (0.150, 0.060))
SPACES: dict[str, ColourSpace] = {s.name: s for s in (
    ColourSpace("srgb", "sRGB IEC61966-2.1 (microisp)", _REC709, D65, srgb_encode, srgb_decode),
    ColourSpace("adobe-rgb", "Adobe RGB (1998) compatible (microisp)",
                ((0.640, 0.330), (0.210, 0.710), (0.150, 0.060)), D65, *_gamma(563 / 256)),
    ColourSpace("display-p3", "Display P3 (microisp)",
                ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060)), D65, srgb_encode, srgb_decode),
    ColourSpace("rec2020", "ITU-R BT.2020 (microisp)",
                ((0.708, 0.292), (0.170, 0.797), (0.131, 0.046)), D65, _rec2020_encode, _rec2020_decode),
    ColourSpace("prophoto", "ProPhoto RGB / ROMM (microisp)",
                ((0.7347, 0.2653), (0.1596, 0.8404), (0.0366, 0.0001)), D50, _romm_encode, _romm_decode),
    ColourSpace("linear-srgb", "Linear sRGB (microisp)", _REC709, D65, _identity, _identity),
)}
COLOUR_SPACES: tuple[str, ...] = tuple(SPACES)


def space(name: str) -> ColourSpace:
    """The :class:`ColourSpace` called ``name``; ValueError listing them otherwise."""
    if name not in SPACES:
        raise ValueError(f"unknown colour space {name!r}; available: {', '.join(SPACES)}")
    return SPACES[name]


def xy_to_xyz(xy: tuple[float, float]) -> np.ndarray:
    """XYZ with Y = 1 of chromaticity ``xy``."""
    x, y = xy
    return np.array([x / y, 1.0, (1 - x - y) / y])


def rgb_to_xyz(primaries, white) -> np.ndarray:
    """The (3, 3) linear RGB -> XYZ matrix of RGB ``primaries`` (xy) whose (1, 1, 1) is ``white``."""
    columns = np.stack([xy_to_xyz(p) for p in primaries], axis=1)
    return columns * np.linalg.solve(columns, xy_to_xyz(white))


def bradford(source_white, target_white) -> np.ndarray:
    """XYZ under ``source_white`` -> XYZ under ``target_white`` (xy or XYZ), Bradford method."""
    src = BRADFORD @ (xy_to_xyz(source_white) if len(source_white) == 2 else np.asarray(source_white))
    dst = BRADFORD @ (xy_to_xyz(target_white) if len(target_white) == 2 else np.asarray(target_white))
    return np.linalg.inv(BRADFORD) @ np.diag(dst / src) @ BRADFORD


#: Linear sRGB (D65) -> CIE XYZ, IEC 61966-2-1 (the values that standard prints).
SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                        [0.2126729, 0.7151522, 0.0721750],
                        [0.0193339, 0.1191920, 0.9503041]])


@cache
def from_srgb(name: str) -> np.ndarray:
    """(3, 3) float32: linear sRGB -> linear RGB of the space ``name`` (Bradford where the white differs)."""
    target = space(name)
    xyz = bradford(D65, target.white) @ rgb_to_xyz(_REC709, D65)  # the identity where both are D65
    matrix = (np.linalg.inv(rgb_to_xyz(target.primaries, target.white)) @ xyz).astype(np.float32)
    matrix.flags.writeable = False
    return matrix


# --- ICC profiles ---------------------------------------------------------------------------------
def _s15f16(value: float) -> bytes:
    return struct.pack(">i", int(round(value * 65536)))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15f16(x) + _s15f16(y) + _s15f16(z)


def _text_description(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_text)) + ascii_text
            + struct.pack(">II", 0, 0)            # Unicode language code and count: none
            + struct.pack(">HB", 0, 0) + b"\0" * 67)  # ScriptCode code, count, 67-byte field


def _curve_tag(decode: Curve, entries: int = 1024) -> bytes:
    if decode is _identity:  # a count of 0: the identity response
        return b"curv" + b"\0" * 4 + struct.pack(">I", 0)
    table = np.round(np.clip(decode(np.linspace(0.0, 1.0, entries)), 0, 1) * 65535).astype(">u2")
    return b"curv" + b"\0" * 4 + struct.pack(">I", entries) + table.tobytes()


@cache
def icc_profile(name: str = "srgb") -> bytes:
    """A small ICC v2 display profile of the colour space ``name``, built from its constants:
    colorants adapted to the D50 connection space (Bradford), the D50 white, its tone curve."""
    target = space(name)
    to_pcs = bradford(target.white, ICC_D50_XYZ) @ rgb_to_xyz(target.primaries, target.white)
    curve = _curve_tag(target.decode)
    tags: list[tuple[bytes, bytes]] = [
        (b"desc", _text_description(target.description)),
        (b"wtpt", _xyz_tag(*ICC_D50_XYZ)),
        (b"rXYZ", _xyz_tag(*to_pcs[:, 0])),
        (b"gXYZ", _xyz_tag(*to_pcs[:, 1])),
        (b"bXYZ", _xyz_tag(*to_pcs[:, 2])),
        (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve),
        (b"cprt", b"text" + b"\0" * 4 + b"No copyright, use freely\0"),
    ]
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    entries, blobs, placed = [], b"", {}
    for signature, data in tags:
        if data in placed:  # identical data is stored once and shared (the three TRCs)
            entries.append((signature, placed[data], len(data)))
            continue
        blobs += b"\0" * ((-(offset + len(blobs))) % 4)
        placed[data] = offset + len(blobs)
        entries.append((signature, placed[data], len(data)))
        blobs += data
    blobs += b"\0" * ((-(offset + len(blobs))) % 4)
    table = struct.pack(">I", len(tags)) + b"".join(struct.pack(">4sII", s, o, n) for s, o, n in entries)
    size = 128 + len(table) + len(blobs)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000)
              + b"mntr" + b"RGB " + b"XYZ " + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
              + b"acsp" + b"\0" * 4 + struct.pack(">I", 0) + b"\0" * 4 + b"\0" * 4 + b"\0" * 8
              + struct.pack(">I", 0) + b"".join(_s15f16(v) for v in ICC_D50_XYZ)
              + b"\0" * 4 + b"\0" * 16 + b"\0" * 28)
    assert len(header) == 128
    return header + table + blobs


def srgb_icc_profile() -> bytes:
    """:func:`icc_profile` of sRGB."""
    return icc_profile("srgb")


# --- camera colour: matrices and white balance from RAW metadata, and their sanity checks ------
def camera_from_srgb(xyz_to_camera: np.ndarray) -> np.ndarray:
    """Linear sRGB -> camera RGB with rows normalised so that sRGB white maps to (1, 1, 1)
    (white-balanced camera RGB), the convention of dcraw / LibRaw for a DNG ColorMatrix
    (XYZ D65 -> camera)."""
    a = np.asarray(xyz_to_camera, np.float64).reshape(3, 3) @ SRGB_TO_XYZ
    return a / a.sum(axis=1, keepdims=True)


def cam_to_srgb_from_xyz(xyz_to_camera: np.ndarray) -> np.ndarray:
    """White-balanced camera RGB -> linear sRGB (float32, rows summing to 1), from an XYZ (D65) ->
    camera matrix (a DNG ColorMatrix, LibRaw's camera table); see :func:`camera_from_srgb`."""
    with np.errstate(all="ignore"):
        return normalise_rows(np.linalg.inv(normalise_rows(
            np.asarray(xyz_to_camera, np.float64).reshape(3, 3) @ SRGB_TO_XYZ)))


def daylight_neutral(xyz_to_camera: np.ndarray) -> np.ndarray:
    """Camera RGB of D65 white (green = 1), from an XYZ (D65) -> camera matrix."""
    n = (np.asarray(xyz_to_camera, np.float64).reshape(3, 3) @ SRGB_TO_XYZ).sum(axis=1)
    return n / n[1]


def normalise_rows(m: np.ndarray) -> np.ndarray:
    """``m`` with each row divided by its sum (float32); unchanged if a row sums to about 0 or a
    coefficient is not finite (:func:`matrix_problem` then says why it is unusable)."""
    with np.errstate(all="ignore"):
        sums = m.sum(axis=1, keepdims=True)
        if not np.all(np.isfinite(m)) or np.any(np.abs(sums) < 1e-6):
            return m.astype(np.float32)
        return (m / sums).astype(np.float32)


def matrix_problem(m: np.ndarray) -> str | None:
    """Why a camera -> sRGB matrix (rows meant to sum to 1) cannot be used, or None if it can.

    Unusable: non-finite, rows not summing to 1 (a row of the source matrix summed to 0), a
    coefficient beyond ``defaults.MATRIX_MAX_COEFFICIENT``, or a condition number above
    ``defaults.MATRIX_MAX_CONDITION`` (singular or nearly so).
    """
    m = np.asarray(m, np.float64)
    if not np.all(np.isfinite(m)):
        return "non-finite coefficients"
    if np.any(np.abs(m.sum(axis=1) - 1.0) > 1e-3):
        return "a row sums to zero"
    largest = float(np.abs(m).max())
    if largest > defaults.MATRIX_MAX_COEFFICIENT:
        return f"a coefficient of {largest:.3g}, beyond {defaults.MATRIX_MAX_COEFFICIENT:g}"
    with np.errstate(all="ignore"):
        condition = float(np.linalg.cond(m))
    if not condition <= defaults.MATRIX_MAX_CONDITION:
        return "singular" if not np.isfinite(condition) or condition > 1e12 else \
            f"nearly singular (condition number {condition:.3g})"
    return None


def rgb_gains(values, desc: str) -> tuple[np.ndarray | None, str | None]:
    """R, G, B gains (G = 1) from LibRaw's 4 multipliers (indexed like ``color_desc``).

    Returns (gains, None) when usable, (None, None) when absent (R and B zero, or all equal:
    LibRaw's "unknown"), (None, why) when present but non-finite, not positive or outside
    ``defaults.WB_GAIN_LIMITS``.
    """
    v = np.asarray(values, np.float64).reshape(-1)
    if v.size < 3 or len(desc) < 3:
        return None, None
    idx = {c: desc.index(c) for c in "RGB"}
    gains = np.array([v[idx["R"]], v[idx["G"]], v[idx["B"]]])
    if (gains[0] == 0 and gains[2] == 0) or (np.all(np.isfinite(gains)) and np.allclose(gains, gains[0])):
        return None, None  # LibRaw's "unknown": (0, 1, 0), all zero or all equal
    shown = ", ".join(f"{g:.4g}" for g in gains)
    if not np.all(np.isfinite(gains)):
        return None, f"non-finite gains {shown}"
    if not np.all(gains > 0):
        return None, f"gains {shown} are not all positive"
    gains = gains / gains[1]
    low, high = defaults.WB_GAIN_LIMITS
    if gains.min() < low or gains.max() > high:
        return None, f"gains R {gains[0]:.4g}, B {gains[2]:.4g} relative to G are outside {low:g}..{high:g}"
    return gains.astype(np.float32), None


# --- white balance from a colour temperature ----------------------------------------------------------
#: Colour temperatures (K) and tints (Duv x 1000) that ``--wb 5500K,TINT`` accepts.
KELVIN_RANGE = (2000.0, 25000.0)
TINT_RANGE = (-50.0, 50.0)


@dataclasses.dataclass(frozen=True)
class Kelvin:
    """A white balance asked for as a light source: its correlated colour ``temperature`` (K) and
    ``tint``, its distance from the Planckian locus in thousandths of CIE 1960 Duv (positive:
    greener, above the locus; negative: more magenta)."""

    temperature: float
    tint: float = 0.0

    def __str__(self) -> str:
        return f"{self.temperature:g}K" + (f",{self.tint:+g}" if self.tint else "")


def illuminant_xy(kelvin: Kelvin) -> np.ndarray:
    """CIE 1931 xy of the light ``kelvin`` describes (colour-science: Ohno 2013)."""
    import warnings

    with warnings.catch_warnings():  # colour-science notes missing optional plotting packages
        warnings.simplefilter("ignore")
        import colour

    uv = colour.temperature.CCT_to_uv(np.array([kelvin.temperature, kelvin.tint / 1000.0]),
                                      method="Ohno 2013")
    return np.asarray(colour.UCS_uv_to_xy(uv), np.float64)


def kelvin_gains(kelvin: Kelvin, cam_to_srgb: np.ndarray, daylight_gains: np.ndarray) -> np.ndarray:
    """White-balance gains (R, G, B; G = 1) that make the light ``kelvin`` neutral, from the
    camera's matrices: ``cam_to_srgb`` (D65-balanced camera RGB -> linear sRGB, rows summing to 1,
    as a DNG ColorMatrix or LibRaw's table gives it) and ``daylight_gains`` (the gains that
    balance D65, LibRaw's daylight white balance). The light's XYZ (Y = 1) -> linear sRGB ->
    D65-balanced camera RGB (the matrix's inverse) -> the camera's raw response (divided by the
    daylight gains); the gains are its reciprocal. D65 itself gives ``daylight_gains``."""
    xy = illuminant_xy(kelvin)
    srgb = np.linalg.inv(SRGB_TO_XYZ) @ xy_to_xyz(tuple(xy))
    balanced = np.linalg.solve(np.asarray(cam_to_srgb, np.float64), srgb)
    raw = balanced / np.asarray(daylight_gains, np.float64)
    gains = 1.0 / raw
    return (gains / gains[1]).astype(np.float32)
