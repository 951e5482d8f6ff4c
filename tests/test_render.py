"""render.py: colour matrix, clipping, sRGB curve, quantisation and orientation."""

from __future__ import annotations

import numpy as np
import pytest

from microisp_cli.colour import from_srgb, space
from microisp_cli.render import (Look, orient, quantise, recover_highlights, render_tile,
                                 srgb_decode, srgb_encode)


def test_srgb_curve_known_values():
    x = np.array([0.0, 0.0031308, 0.18, 0.5, 1.0], np.float32)
    np.testing.assert_allclose(srgb_encode(x), [0.0, 0.04045, 0.46135612, 0.7353569, 1.0], atol=2e-6)
    np.testing.assert_allclose(srgb_decode(srgb_encode(x)), x, atol=1e-6)


def test_linear_output_uses_the_matrix_then_the_curve():
    rgb = np.array([[[0.2, 0.3, 0.4]]], np.float32)
    m = np.array([[1.5, -0.3, -0.2], [-0.2, 1.4, -0.2], [0.0, -0.5, 1.5]], np.float32)
    out = render_tile(rgb, "linear", m, 16)
    expected = np.rint(srgb_encode(np.clip(rgb @ m.T, 0, 1)) * 65535)
    assert np.abs(out.astype(int) - expected).max() <= 1
    assert out.dtype == np.uint16


@pytest.mark.parametrize("bits", [8, 16])
def test_lookup_table_render_is_the_curve_within_one_level(bits):
    """The sRGB curve by lookup table: the exact curve's level, or its neighbour, everywhere
    (dense near black, where the curve is steepest), and mostly exactly it."""
    values = np.concatenate([np.linspace(0, 0.01, 200_001), np.linspace(0, 1, 400_001)]).astype(np.float32)
    rgb = np.stack([values] * 3, -1)[None]
    exact = quantise(srgb_encode(values), bits).astype(int)
    got = render_tile(rgb, "linear", None, bits)[0, :, 0].astype(int)
    assert np.abs(got - exact).max() <= 1
    assert (got == exact).mean() > (0.99 if bits == 8 else 0.9)


def test_srgb_output_is_only_clipped():
    rgb = np.array([[[-0.1, 0.5, 1.2]]], np.float32)
    out = render_tile(rgb, "srgb", np.full((3, 3), 7.0), 8)
    np.testing.assert_array_equal(out, [[[0, 128, 255]]])
    assert out.dtype == np.uint8


def test_quantise_rounds():
    np.testing.assert_array_equal(quantise(np.array([0.0, 0.51 / 255, 0.49 / 255, 1.0]), 8), [0, 1, 0, 255])
    with pytest.raises(ValueError, match="8 or 16"):
        quantise(np.zeros(1), 12)


def test_unknown_output():
    with pytest.raises(ValueError, match="linear, srgb"):
        render_tile(np.zeros((1, 1, 3)), "log", None, 8)


def test_orientation_codes():
    image = np.arange(6).reshape(2, 3)  # [[0 1 2] [3 4 5]]
    np.testing.assert_array_equal(orient(image, 0), image)
    np.testing.assert_array_equal(orient(image, 3), np.rot90(image, 2))
    np.testing.assert_array_equal(orient(image, 6), np.rot90(image, -1))  # 90 clockwise
    np.testing.assert_array_equal(orient(image, 5), np.rot90(image, 1))  # 90 counter-clockwise
    assert orient(image, 6).base is not None  # a view, not a copy


def test_exposure_gain_is_linear_before_the_curve():
    rgb = np.array([[[0.1, 0.2, 0.3]]], np.float32)
    plain = render_tile(rgb, "linear", None, 16, Look(colorspace="linear-srgb"))
    brighter = render_tile(rgb, "linear", None, 16, Look(gain=2.0, colorspace="linear-srgb"))
    np.testing.assert_allclose(brighter.astype(float), 2 * plain.astype(float), atol=1)


def test_colour_space_matrix_and_curve():
    rgb = np.array([[[0.2, 0.3, 0.4]]], np.float32)
    out = render_tile(rgb, "linear", None, 16, Look(colorspace="adobe-rgb"))
    expected = space("adobe-rgb").encode(np.clip(rgb @ from_srgb("adobe-rgb").T, 0, 1))
    np.testing.assert_allclose(out / 65535, expected, atol=2e-5)
    # weights that draw sRGB are decoded to linear light first, then converted
    srgb = render_tile(srgb_encode(rgb), "srgb", None, 16, Look(colorspace="adobe-rgb"))
    np.testing.assert_allclose(srgb / 65535, expected, atol=1e-4)


def test_highlight_modes():
    # red clipped (lifted above the clip level by a white-balance gain), green and blue not
    rgb = np.array([[[1.8, 0.7, 0.6], [0.2, 0.3, 0.4], [2.0, 1.2, 1.5]]], np.float32)
    clip = recover_highlights(rgb, "clip")
    np.testing.assert_allclose(clip, [[[1.0, 0.7, 0.6], [0.2, 0.3, 0.4], [1.0, 1.0, 1.0]]])
    blend = recover_highlights(rgb, "blend")
    # a red highlight whose green and blue are well below the clip level is a real colour: kept
    np.testing.assert_allclose(blend, clip)
    # a near-white pixel whose green clipped first (a magenta cast) is blended to neutral
    near = np.array([[[1.3, 1.0, 0.95], [1.3, 1.0, 0.85]]], np.float32)
    cast, clipped = recover_highlights(near, "blend"), recover_highlights(near, "clip")
    # weight (0.95 - 0.75) / 0.25 = 0.8 and 0.4: that share of the cast goes
    np.testing.assert_allclose(np.ptp(cast, axis=-1), [[0.2 * 0.05, 0.6 * 0.15]], atol=1e-6)
    np.testing.assert_allclose(cast.mean(axis=-1), clipped.mean(axis=-1), atol=1e-6)  # same brightness
    rebuilt = recover_highlights(rgb, "reconstruct")
    assert rebuilt[0, 0, 1] > clip[0, 0, 1] and rebuilt[0, 0, 0] == 1.0  # brighter, not above 1
    np.testing.assert_allclose(rebuilt[0, 1:], clip[0, 1:], atol=1e-6)
    with pytest.raises(ValueError, match="highlights"):
        recover_highlights(rgb, "paint")
