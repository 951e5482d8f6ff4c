"""colour.py: output colour spaces against colour-science, and their ICC profiles through LittleCMS."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageCms

from microisp_cli.colour import COLOUR_SPACES, D50, ICC_D50_XYZ, from_srgb, icc_profile, space, srgb_encode

colour = pytest.importorskip("colour", reason="colour-science is a test dependency (pip install colour-science)")

#: colour-science's names of our spaces.
REFERENCE = {"srgb": "sRGB", "adobe-rgb": "Adobe RGB (1998)", "display-p3": "Display P3",
             "rec2020": "ITU-R BT.2020", "prophoto": "ProPhoto RGB", "linear-srgb": "sRGB"}


@pytest.mark.parametrize("name", COLOUR_SPACES)
def test_matrix_from_srgb_matches_colour_science(name):
    expected = colour.matrix_RGB_to_RGB(colour.RGB_COLOURSPACES["sRGB"], colour.RGB_COLOURSPACES[REFERENCE[name]],
                                        chromatic_adaptation_transform="Bradford")
    np.testing.assert_allclose(from_srgb(name), expected, atol=2e-3)


@pytest.mark.parametrize("name", [n for n in COLOUR_SPACES if n != "linear-srgb"])
def test_transfer_curve_matches_colour_science(name):
    x = np.linspace(0, 1, 101)
    reference = colour.RGB_COLOURSPACES[REFERENCE[name]].cctf_encoding(x)
    np.testing.assert_allclose(space(name).encode(x), reference, atol=2e-3)
    np.testing.assert_allclose(space(name).decode(space(name).encode(x)), x, atol=2e-5)


@pytest.mark.parametrize("name", COLOUR_SPACES)
def test_primaries_round_trip_through_the_icc_profile(name):
    """LittleCMS reads our profile: each primary, the white and a mid grey land where the space's
    published primaries and curve put them (CIELAB D50, as the profile connection space)."""
    target = space(name)
    profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile(name)))
    assert ImageCms.getProfileDescription(profile).strip() == target.description
    lab = ImageCms.createProfile("LAB", colorTemp=5000)
    samples = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255], [128, 128, 128]]], np.uint8)
    transform = ImageCms.buildTransform(profile, lab, "RGB", "LAB", renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
    out = np.asarray(ImageCms.applyTransform(Image.fromarray(samples, "RGB"), transform))[0]
    # Pillow's 8-bit LAB: L scaled to 0..255, a and b signed bytes
    measured = np.concatenate([out[:, :1] / 2.55, out[:, 1:].view(np.int8)], axis=-1)
    # independently: colour-science's space, its primaries adapted to D50 (Bradford)
    reference = colour.RGB_COLOURSPACES[REFERENCE[name]]
    linear = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [0.0] * 3], float)
    linear[4] = target.decode(np.full(3, 128 / 255))
    xyz = colour.RGB_to_XYZ(linear, reference, illuminant=np.array(D50),
                            chromatic_adaptation_transform="Bradford")
    expected = colour.XYZ_to_Lab(xyz, np.array(D50))
    expected[:, 1:] = np.clip(expected[:, 1:], -128, 127)  # what 8-bit LAB can hold (wide gamuts)
    assert np.abs(measured - expected).max() < 2.0, (measured, expected)


def test_srgb_profile_white_is_the_d50_connection_space():
    p = icc_profile("srgb")
    assert ICC_D50_XYZ == (0.9642, 1.0, 0.8249) and b"sRGB" in p
    assert srgb_encode(np.array([0.18]))[0] == pytest.approx(0.4614, abs=1e-4)
