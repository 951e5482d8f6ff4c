"""Rendering: the network's RGB -> display-ready, quantised pixels. Pointwise, per tile.

- ``output == "linear"`` weights return white-balanced linear camera RGB: highlights are treated
  (:func:`recover_highlights`), the exposure gain and the camera -> output-space matrix applied,
  the result clipped to [0, 1] and encoded with the output space's transfer curve.
- ``output == "srgb"`` weights draw sRGB directly: the result is clipped, and only when a
  :class:`Look` asks for another exposure or colour space decoded to linear light and re-rendered.

Then the values are quantised (rounded) to uint8 or uint16. Orientation is applied to the finished
image as a view (:func:`orient`).
"""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np

from . import defaults
from .colour import from_srgb, space, srgb_decode, srgb_encode
from .vocabulary import OUTPUT_KINDS, choose


#: Entries of the lookup table that applies the sRGB curve and quantises, per output bit depth:
#: linear values are rounded to 1 / (entries - 1) first. The curve's steepest slope (12.92, at
#: black) turns that into at most 0.03 of an 8-bit level, 0.4 of a 16-bit level: the table's
#: result is the exact curve's or one level off. A 1 MP tile renders in 15 ms against 74 ms.
LUT_ENTRIES = {8: 1 << 16, 16: 1 << 20}


@dataclasses.dataclass(frozen=True)
class Look:
    """What a photographer chose for the rendering: a linear ``gain`` (2**EV) before the curve,
    the output ``colorspace`` (``colour.SPACES``), the ``highlights`` mode, and the ``tone``
    curve: ``"neutral"`` (none: the linear rendering) or a scene-referred :func:`tone_map` with
    ``contrast`` and ``saturation``."""

    gain: float = 1.0
    colorspace: str = defaults.COLORSPACE
    highlights: str = defaults.HIGHLIGHTS
    tone: str = "neutral"
    contrast: float = 1.0
    saturation: float = 1.0


#: Rec. 709 / sRGB luminance of linear RGB.
LUMINANCE = np.array([0.2126729, 0.7151522, 0.0721750], np.float32)


def tone_map(rgb: np.ndarray, white: float, contrast: float, saturation: float = 1.0,
             grey: float = defaults.LOOK_GREY) -> np.ndarray:
    """A scene-referred look on linear sRGB (h, w, 3) float32 (values up to ``white``, the scene's
    brightest possible value after the exposure gain) -> display-referred linear sRGB in [0, 1].

    The curve is a log-logistic sigmoid ``f(m) = A m^c / (m^c + K)`` of each pixel's largest
    channel ``m``, with ``A`` and ``K`` chosen so that ``f(grey) = grey`` (mid grey stays mid
    grey) and ``f(white) = 1`` (the brightest scene value is display white, approached with a
    slope that falls smoothly: no hard clip); ``c = contrast`` steepens the mid-tones (shadows
    deeper, highlights compressed). The pixel is scaled by ``f(m) / m``: its channel ratios, so
    its hue, are kept, and a grey stays grey. Then ``saturation`` scales the distance from the
    pixel's luminance (greys untouched). Not clipped: values outside sRGB's gamut (negative) are
    kept for a wider output space, whose curve clips."""
    c = np.float64(contrast)
    white = max(float(white), grey * 1.5)
    wc, gc = white ** c, grey ** c
    rgb = np.asarray(rgb, np.float32)
    if grey * wc - gc <= 1e-9 * gc:  # contrast 1 with the white at 1: no curve is left but x
        out = rgb / np.float32(white)
        if saturation != 1.0:
            luma = out @ LUMINANCE[:, None]
            out = luma + np.float32(saturation) * (out - luma)
        return out
    k = wc * gc * (1.0 - grey) / (grey * wc - gc)
    a = (wc + k) / wc
    m = np.maximum(rgb.max(axis=-1, keepdims=True), np.float32(1e-8))
    mc = np.power(m, np.float32(c))
    ratio = np.float32(a) * mc / (mc + np.float32(k)) / m
    out = rgb * ratio
    if saturation != 1.0:
        luma = out @ LUMINANCE[:, None]
        out = luma + np.float32(saturation) * (out - luma)
    return out


def recover_highlights(rgb: np.ndarray, mode: str, level: float = 1.0) -> np.ndarray:
    """White-balanced linear camera RGB (h, w, 3) whose channels saturate at ``level`` (and above,
    where a white-balance gain lifted a clipped channel) -> values at most ``level``.

    - ``"clip"``: every channel is clipped at ``level`` (clipped areas turn white; dcraw ``-H 0``).
    - ``"blend"``: clipped as above, then a pixel whose *lowest* channel is above
      ``defaults.HIGHLIGHT_BLEND_START`` x ``level`` is blended towards the neutral grey of its
      own mean, fully so at ``level``: no magenta or cyan cast where a near-white highlight
      clipped one channel first, while a highlight with a channel well below the clip level
      (a lit coloured panel) keeps its colour.
    - ``"reconstruct"``: the lightness comes from the unclipped values (the channels that were
      lifted above ``level`` by white balance carry information), the colour from the clipped
      ones: ``clipped - mean(clipped) + mean(unclipped)``, then clipped (the idea of darktable's
      "reconstruct in LCh", per pixel); partly clipped highlights keep more of their brightness.
    """
    rgb = np.asarray(rgb, np.float32)
    level = np.float32(level)
    clipped = np.minimum(rgb, level)
    if mode == "clip":
        return clipped
    mean = clipped.mean(axis=-1, keepdims=True)
    if mode == "blend":
        start = np.float32(defaults.HIGHLIGHT_BLEND_START) * level
        weight = np.clip((clipped.min(axis=-1, keepdims=True) - start) / (level - start), 0.0, 1.0)
        return clipped + weight * (mean - clipped)
    if mode == "reconstruct":
        return np.minimum(clipped - mean + np.maximum(rgb, 0.0).mean(axis=-1, keepdims=True), level)
    raise ValueError(f"highlights must be clip, blend or reconstruct, got {mode!r}")


def dtype_for_bits(bits: int) -> type[np.unsignedinteger]:
    if bits == 8:
        return np.uint8
    if bits == 16:
        return np.uint16
    raise ValueError(f"bits must be 8 or 16, got {bits}")


def quantise(values: np.ndarray, bits: int) -> np.ndarray:
    """Values in [0, 1] -> uint8/uint16, rounded to the nearest level."""
    top = float(2 ** bits - 1)
    return np.rint(np.clip(values, 0.0, 1.0) * np.float32(top)).astype(dtype_for_bits(bits))


@cache
def srgb_lut(bits: int) -> np.ndarray:
    """Quantised :func:`srgb_encode` of ``LUT_ENTRIES[bits]`` evenly spaced values in [0, 1]."""
    entries = LUT_ENTRIES[bits]
    table = quantise(srgb_encode(np.arange(entries, dtype=np.float64) / (entries - 1)), bits)
    table.setflags(write=False)
    return table


def encode_srgb(linear: np.ndarray, bits: int) -> np.ndarray:
    """Linear sRGB (h, w, 3) float32 (overwritten) -> quantised sRGB through :func:`srgb_lut`."""
    table = srgb_lut(bits)
    index = np.clip(linear, 0.0, 1.0, out=linear)
    index *= np.float32(len(table) - 1)
    return np.take(table, np.rint(index, out=index).astype(np.intp))  # take: faster than table[...]


def render_tile(rgb: np.ndarray, output: str, cam_to_srgb: np.ndarray | None, bits: int,
                look: Look = Look(), clip_level: float = 1.0) -> np.ndarray:
    """One tile of network output (h, w, 3) float32 -> quantised (h, w, 3) uint8/uint16 in
    ``look.colorspace`` (sRGB through a lookup table, :func:`srgb_lut`).

    ``cam_to_srgb``: (3, 3) matrix for ``"linear"`` outputs (None: identity). ``clip_level``:
    where the white-balanced camera channels saturate (the smallest white-balance gain).
    """
    choose("output", output, OUTPUT_KINDS)
    rgb = np.asarray(rgb, np.float32)
    if look.tone != "neutral" or look.saturation != 1.0:
        return _render_look(rgb, output, cam_to_srgb, bits, look, clip_level)
    plain = look.gain == 1.0 and look.colorspace == "srgb"
    if output == "srgb":
        if plain:
            return quantise(rgb, bits)
        rgb, matrix = srgb_decode(np.clip(rgb, 0.0, 1.0)), from_srgb(look.colorspace)
    else:
        rgb = recover_highlights(rgb, look.highlights, clip_level)
        matrix = output_matrix(output, cam_to_srgb, look.colorspace)
    # the gain folded into the matrix: one pass over the tile, into a new array (ours to overwrite)
    rgb = rgb @ (matrix.T * np.float32(look.gain)).astype(np.float32)
    if look.colorspace == "srgb":
        return encode_srgb(rgb, bits)
    return quantise(space(look.colorspace).encode(np.clip(rgb, 0.0, 1.0)), bits)


def camera_matrix(output: str, cam_to_srgb: np.ndarray | None) -> np.ndarray:
    """(3, 3) float32: the camera -> linear sRGB matrix render applies to the network's RGB:
    ``cam_to_srgb`` (None: identity) for ``"linear"`` outputs; the identity for ``"srgb"`` ones,
    whose weights drew sRGB themselves."""
    if output == "srgb" or cam_to_srgb is None:
        return np.eye(3, dtype=np.float32)
    return np.asarray(cam_to_srgb, np.float32)


def output_matrix(output: str, cam_to_srgb: np.ndarray | None, colorspace: str) -> np.ndarray:
    """(3, 3) float32: the whole matrix render applies, network RGB -> linear ``colorspace``
    (what ``--json`` reports)."""
    return from_srgb(colorspace) @ camera_matrix(output, cam_to_srgb)


def _render_look(rgb: np.ndarray, output: str, cam_to_srgb: np.ndarray | None, bits: int, look: Look,
                 clip_level: float) -> np.ndarray:
    """:func:`render_tile` with a look: to linear sRGB with the gain (white at ``clip_level`` x
    gain, or the gain for weights that draw sRGB), :func:`tone_map` (or the saturation alone for
    the neutral look), then the output space and its curve."""
    if output == "srgb":
        rgb, camera, white = srgb_decode(np.clip(rgb, 0.0, 1.0)), np.eye(3, dtype=np.float32), 1.0
    else:
        rgb = recover_highlights(rgb, look.highlights, clip_level)
        camera, white = camera_matrix(output, cam_to_srgb), clip_level
    rgb = rgb @ (camera.T * np.float32(look.gain)).astype(np.float32)
    if look.tone != "neutral":
        rgb = tone_map(rgb, white * look.gain, look.contrast, look.saturation)
    else:
        luma = rgb @ LUMINANCE[:, None]
        rgb = luma + np.float32(look.saturation) * (rgb - luma)
    if look.colorspace == "srgb":
        return encode_srgb(np.ascontiguousarray(rgb, np.float32), bits)
    rgb = rgb @ from_srgb(look.colorspace).T
    return quantise(space(look.colorspace).encode(np.clip(rgb, 0.0, 1.0)), bits)


def orient(image: np.ndarray, flip: int) -> np.ndarray:
    """Apply a LibRaw flip code to an (H, W, ...) image, as a view.

    Bit 1 mirrors the rows, bit 0 the columns, then bit 2 transposes: 3 = rotate 180,
    5 = rotate 90 counter-clockwise, 6 = rotate 90 clockwise.
    """
    if not 0 <= flip < 8:
        raise ValueError(f"flip must be 0..7, got {flip}")
    if flip & 2:
        image = image[::-1]
    if flip & 1:
        image = image[:, ::-1]
    if flip & 4:
        image = np.swapaxes(image, 0, 1)
    return image
