"""bayer.py: CFA phase, odd sizes, conditioning and lazy packing."""

from __future__ import annotations

import numpy as np
import pytest

from microisp_cli.bayer import (CFA_PATTERNS, PackedBayerSource, canonical_padding, mosaic_rggb,
                                pack_bayer, red_offset, reflect_index)
from microisp_cli.weights import UPSTREAM_IMX586, Conditioning

PLAIN = Conditioning(channels=("R", "Gr", "Gb", "B"), black_level=False, scale=1.0,
                     white_balance=False, output="linear")


def _colour_image(h, w):
    """An RGB image whose value says its colour: R = 1000, G = 2000, B = 3000."""
    return np.broadcast_to(np.array([1000, 2000, 3000], np.uint16), (h, w, 3))


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
@pytest.mark.parametrize("h, w", [(8, 10), (9, 10), (8, 11), (9, 11)])
def test_every_cfa_and_size_lands_on_rggb(cfa, h, w):
    data = mosaic_rggb(_colour_image(h, w), cfa)
    source = PackedBayerSource(data, cfa, 0, 4095, (1, 1, 1), PLAIN)
    top, bottom, left, right = source.padding
    assert (h + top + bottom) % 2 == 0 and (w + left + right) % 2 == 0
    assert top + bottom <= 2 and left + right <= 2  # a row/column for the phase, one for parity
    packed = source.read_all()
    assert packed.shape == ((h + top + bottom) // 2, (w + left + right) // 2, 4)
    np.testing.assert_array_equal(packed[..., 0], 1000)  # every R channel sample is red
    np.testing.assert_array_equal(packed[..., 1], 2000)
    np.testing.assert_array_equal(packed[..., 2], 2000)
    np.testing.assert_array_equal(packed[..., 3], 3000)
    assert source.crop == (top, left, h, w)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_samples_are_the_stored_ones(cfa):
    data = np.arange(12 * 14, dtype=np.uint16).reshape(12, 14)
    source = PackedBayerSource(data, cfa, 0, 65535, (1, 1, 1), PLAIN)
    top, _, left, _ = source.padding
    packed = source.read_all()
    # the R channel at packed (i, j) is full-resolution (2i, 2j) of the padded frame
    for i in range(1, 5):
        for j in range(1, 6):
            assert packed[i, j, 0] == data[2 * i - top, 2 * j - left]
            assert packed[i, j, 3] == data[2 * i + 1 - top, 2 * j + 1 - left]


def test_red_offset():
    assert [red_offset(c) for c in ("RGGB", "GRBG", "GBRG", "BGGR")] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    with pytest.raises(ValueError, match="RGGB, BGGR, GRBG, GBRG"):
        red_offset("RGBG")


def test_reflect_index_keeps_parity():
    idx = np.arange(-25, 40)
    out = reflect_index(idx, 7)
    assert out.min() >= 0 and out.max() <= 6
    np.testing.assert_array_equal(out % 2, idx % 2)
    np.testing.assert_array_equal(reflect_index(np.array([-1, 7]), 7), [1, 5])


def test_minimum_size_padding():
    assert canonical_padding(10, 12, "RGGB", min_size=79) == (0, 148, 0, 146)
    data = mosaic_rggb(_colour_image(10, 12), "GBRG")
    source = PackedBayerSource(data, "GBRG", 0, 4095, (1, 1, 1), PLAIN, min_size=79)
    assert source.shape == (79, 79)
    packed = source.read_all()
    np.testing.assert_array_equal(packed[..., 0], 1000)
    np.testing.assert_array_equal(packed[..., 3], 3000)


def test_tiles_equal_the_whole():
    data = np.random.default_rng(0).integers(0, 4095, (37, 51)).astype(np.uint16)
    source = PackedBayerSource(data, "BGGR", [[60, 61], [62, 63]], 4095, (2.0, 1.0, 1.5),
                               Conditioning(), min_size=0)
    whole = source.read_all()
    assert whole.dtype == np.float32
    np.testing.assert_array_equal(source.read(3, 11, 5, 20), whole[3:11, 5:20])
    np.testing.assert_array_equal(source.read(0, 1, 0, 26), whole[0:1])


def test_conditioning_black_scale_wb_and_order():
    h, w = 8, 8
    data = np.zeros((h, w), np.uint16)
    data[0::2, 0::2], data[0::2, 1::2], data[1::2, 0::2], data[1::2, 1::2] = 1064, 2065, 2066, 3067
    black = [[64, 65], [66, 67]]
    cond = Conditioning(channels=("B", "Gb", "Gr", "R"), black_level=True, scale="white",
                        white_balance=True, output="linear")
    packed = pack_bayer(data, "RGGB", black, 4095.0, (2.0, 1.0, 0.5), cond)
    np.testing.assert_allclose(packed[0, 0], [3000 * 0.5 / (4095 - 67), 2000 / (4095 - 66),
                                              2000 / (4095 - 65), 1000 * 2.0 / (4095 - 64)], rtol=1e-6)


def test_black_levels_follow_the_phase_shift():
    # GBRG file: cell (0, 0) is G(b), (0, 1) B, (1, 0) R, (1, 1) G(r)
    data = np.zeros((8, 8), np.uint16)
    data[0::2, 0::2], data[0::2, 1::2], data[1::2, 0::2], data[1::2, 1::2] = 10, 20, 30, 40
    cond = Conditioning(channels=("R", "Gr", "Gb", "B"), black_level=True, scale=1.0,
                        white_balance=False)
    packed = pack_bayer(data, "GBRG", [[10, 20], [30, 40]], 4095, (1, 1, 1), cond)
    np.testing.assert_array_equal(packed, 0)


def test_upstream_channels_match_the_published_script():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 1023, (16, 20)).astype(np.uint16)
    ours = pack_bayer(raw, "RGGB", 64, 1023, (2.0, 1.0, 1.5), UPSTREAM_IMX586)
    f = raw.astype(np.float32)
    script = np.dstack((f[1::2, 1::2], f[0::2, 1::2], f[0::2, 0::2], f[1::2, 0::2])) / (4 * 255)
    np.testing.assert_allclose(ours, script, rtol=1e-6)


def test_source_from_a_mosaic_reads_its_levels_and_gains():
    """``from_mosaic`` takes the samples, CFA order, levels and gains of a decoded mosaic: the same
    packed frame as the fields given one by one."""
    from microisp_cli.mosaic import Mosaic

    rng = np.random.default_rng(3)
    data = rng.integers(64, 4095, (10, 14)).astype(np.uint16)
    mosaic = Mosaic(data, "GRBG", [[60, 61], [62, 63]], 4095, wb=[2.0, 1.0, 1.5])
    conditioning = Conditioning()
    expected = PackedBayerSource(data, "GRBG", [[60, 61], [62, 63]], 4095, (2.0, 1.0, 1.5), conditioning,
                                 min_size=9)
    source = PackedBayerSource.from_mosaic(mosaic, conditioning, min_size=9)
    assert source.shape == expected.shape and source.crop == expected.crop
    np.testing.assert_array_equal(source.read_all(), expected.read_all())
    assert not np.array_equal(source.read_all(), PackedBayerSource.from_mosaic(
        Mosaic(data, "GRBG", 0, 4095), conditioning, min_size=9).read_all())
