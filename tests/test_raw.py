"""raw.py: decoding DNGs (made here), sensor dumps and .npy mosaics; sensor checks; bad files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import shared_file
from microisp_cli.errors import InputError, UnsupportedSensorError
from microisp_cli.synthetic import random_mosaic
from microisp_cli.raw import CFA_PATTERNS, DumpFormat, Mosaic, decode, grey_world, parse_size
from microisp_cli.training.dng import write_dng

XYZ_TO_CAM = np.array([[0.6722, -0.0635, -0.0963], [-0.4287, 1.1460, 0.3246], [-0.0813, 0.1497, 0.7050]])


def _mosaic(h=40, w=62, bits=12, seed=0):
    return random_mosaic(h, w, seed, low=64, high=2 ** bits - 1)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
@pytest.mark.parametrize("bits", [10, 12, 14])
def test_dng_with_colour_metadata(tmp_path, cfa, bits):
    data = _mosaic(bits=bits)
    path = write_dng(tmp_path / "x.dng", data, cfa, black_level=[64, 65, 66, 67],
                     white_level=2 ** bits - 1, color_matrix=XYZ_TO_CAM,
                     as_shot_neutral=[0.5, 1.0, 0.8], orientation=6)
    m = decode(path)
    assert m.cfa == cfa
    np.testing.assert_array_equal(m.data, data)
    assert m.data.dtype == np.uint16
    np.testing.assert_array_equal(m.black, [[64, 65], [66, 67]])  # per cell, in file order
    assert m.white == 2 ** bits - 1
    np.testing.assert_allclose(m.wb, [2.0, 1.0, 1.25], rtol=1e-4)
    assert m.wb_source == "as shot"
    assert m.matrix_source.startswith("file")
    np.testing.assert_allclose(m.cam_to_srgb.sum(axis=1), 1.0, atol=1e-4)
    assert not np.allclose(m.cam_to_srgb, np.eye(3))
    assert m.orientation == 6


def test_dng_without_colour_metadata_falls_back(tmp_path):
    data = _mosaic()
    data[0::2, 0::2] //= 2  # a red-poor scene: grey world must raise the red gain
    path = write_dng(tmp_path / "x.dng", data, "GRBG", black_level=0, white_level=4095)
    m = decode(path)
    assert m.cfa == "GRBG"
    assert m.wb_source == "grey world"
    assert m.matrix_source.startswith("identity")
    np.testing.assert_array_equal(m.cam_to_srgb, np.eye(3))
    # GRBG: red sits at (0, 1), which was left alone; green at (0, 0) was halved
    assert m.wb[1] == 1.0 and m.wb[0] < 1.0
    assert m.orientation == 0


@pytest.mark.parametrize("tiff, flip", [(1, 0), (3, 3), (6, 6), (8, 5)])
def test_orientation(tmp_path, tiff, flip):
    path = write_dng(tmp_path / "x.dng", _mosaic(), "RGGB", white_level=4095, orientation=tiff)
    assert decode(path).orientation == flip


def test_grey_world_ignores_clipped():
    data = np.full((64, 64), 1000, np.uint16)
    data[0::2, 0::2] = 500  # R half of G
    data[1::2, 1::2] = 2000  # B twice G
    data[:8, :] = 4095  # clipped rows are ignored
    gains = grey_world(data, "RGGB", np.zeros((2, 2), np.float32), 4095)
    np.testing.assert_allclose(gains, [2.0, 1.0, 0.5], rtol=1e-6)


def test_mosaic_validation():
    with pytest.raises(ValueError, match="RGGB"):
        Mosaic(np.zeros((4, 4), np.uint16), "RGBG", 0, 1023)
    with pytest.raises(ValueError, match="uint16"):
        Mosaic(np.zeros((4, 4), np.float32), "RGGB", 0, 1023)
    with pytest.raises(InputError, match="white level"):
        Mosaic(np.zeros((4, 4), np.uint16), "RGGB", 2000, 1023)


# --- dumps and .npy -------------------------------------------------------------------------
@pytest.mark.parametrize("cfa", CFA_PATTERNS)
def test_headerless_dump(tmp_path, cfa):
    data = _mosaic(30, 50, bits=14)
    path = tmp_path / "frame.raw"
    data.astype("<u2").tofile(path)
    m = decode(path, DumpFormat(size=(50, 30), cfa=cfa, bits=14, black=64))
    np.testing.assert_array_equal(m.data, data)
    assert m.cfa == cfa and m.white == 2 ** 14 - 1
    np.testing.assert_array_equal(m.black, np.full((2, 2), 64))


def test_headerless_file_needs_a_size(tmp_path):
    path = tmp_path / "frame.raw"
    _mosaic(512, 768).astype("<u2").tofile(path)  # a size LibRaw would take for some camera
    with pytest.raises(InputError, match="no file header: .* needs --raw-size"):
        decode(path)


def test_dump_size_leaves_real_raw_files_to_libraw(tmp_path):
    path = write_dng(tmp_path / "x.dng", _mosaic(), "GBRG", white_level=4095)
    assert decode(path, DumpFormat(size=(10, 10))).cfa == "GBRG"


def test_dump_of_wrong_size(tmp_path):
    path = tmp_path / "frame.raw"
    _mosaic(30, 50).astype("<u2").tofile(path)
    with pytest.raises(InputError, match="truncated: a 60x30 uint16 dump has 3600 bytes, the file 3000"):
        decode(path, DumpFormat(size=(60, 30)))


def test_npy_two_d_and_packed(tmp_path):
    data = _mosaic(32, 48, bits=12)
    np.save(tmp_path / "flat.npy", data)
    m = decode(tmp_path / "flat.npy", DumpFormat(cfa="BGGR"))
    assert m.cfa == "BGGR" and m.white == 4095  # 12 bits inferred from the maximum
    np.testing.assert_array_equal(m.data, data)
    packed = np.stack([data[0::2, 0::2], data[0::2, 1::2], data[1::2, 0::2], data[1::2, 1::2]], -1)
    np.save(tmp_path / "packed.npy", packed)
    m = decode(tmp_path / "packed.npy")
    assert m.cfa == "RGGB"
    np.testing.assert_array_equal(m.data, data)


def test_npy_rgb_is_unsupported(tmp_path):
    np.save(tmp_path / "rgb.npy", np.zeros((8, 8, 3), np.uint16))
    with pytest.raises(UnsupportedSensorError, match="unsupported sensor layout: .*RGB"):
        decode(tmp_path / "rgb.npy")


def test_parse_size():
    assert parse_size("768x512") == (768, 512)
    with pytest.raises(ValueError, match="WIDTHxHEIGHT"):
        parse_size("768")


# --- unsupported sensors ------------------------------------------------------------------------
def _dng_with_pattern(path, dim, pattern, planes=(0, 1, 2)):
    data = _mosaic(96, 96)
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50707, "B", 4, (1, 1, 0, 0), True),
            (50708, "s", 0, "test", True), (33421, "H", 2, dim, True),
            (33422, "B", len(pattern), tuple(pattern), True),
            (50710, "B", len(planes), tuple(planes), True), (50711, "H", 1, 1, True),
            (50717, "I", 1, 4095, True), (271, "s", 0, "test", True), (272, "s", 0, "test", True)]
    tifffile.imwrite(path, data, photometric=32803, planarconfig=1, subfiletype=0, metadata=None,
                     extratags=tags)
    return path


def test_xtrans_is_unsupported(tmp_path):
    xtrans = [1, 1, 0, 1, 1, 2, 1, 1, 2, 1, 1, 0, 2, 0, 1, 0, 2, 1,
              1, 1, 2, 1, 1, 0, 1, 1, 0, 1, 1, 2, 0, 2, 1, 2, 0, 1]
    path = _dng_with_pattern(tmp_path / "xt.dng", (6, 6), xtrans)
    with pytest.raises(UnsupportedSensorError, match="unsupported sensor layout: .*X-Trans"):
        decode(path)


def test_cmyg_is_unsupported(tmp_path):
    path = _dng_with_pattern(tmp_path / "cmyg.dng", (2, 2), [0, 1, 2, 3], planes=(3, 4, 5, 1))
    with pytest.raises(UnsupportedSensorError, match="unsupported sensor layout: .*CMYG"):
        decode(path)


def test_linear_dng_is_unsupported(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 4000, (64, 64, 3)).astype(np.uint16)
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "lin", True),
            (50717, "I", 1, 4095, True)]
    tifffile.imwrite(tmp_path / "lin.dng", rgb, photometric=34892, planarconfig=1, extratags=tags,
                     subfiletype=0)
    with pytest.raises(UnsupportedSensorError, match="unsupported sensor layout: .*linear/demosaiced"):
        decode(tmp_path / "lin.dng")


# --- bad files ----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        decode(tmp_path / "nope.dng")


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.dng").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        decode(tmp_path / "empty.dng")


def test_text_renamed_dng(tmp_path):
    (tmp_path / "notes.dng").write_text("these are my holiday notes\n" * 10)
    with pytest.raises(InputError, match="a text file, not a RAW image"):
        decode(tmp_path / "notes.dng")


def test_truncated_dng(tmp_path):
    path = write_dng(tmp_path / "x.dng", _mosaic(200, 300), "RGGB", white_level=4095)
    blob = path.read_bytes()
    path.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(InputError, match="truncated or unreadable RAW file"):
        decode(path)


def test_random_bytes(tmp_path):
    (tmp_path / "noise.nef").write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(InputError):
        decode(tmp_path / "noise.nef")


@pytest.mark.parametrize("name", ["CanonRaw.cr2", "DNG.dng", "FujiFilm.raf", "Nikon.nef", "Panasonic.rw2"])
def test_pixel_stripped_files(name):
    path = shared_file("data", "raw", "bad", name)
    with pytest.raises(InputError) as info:
        decode(path)
    message = str(info.value)
    assert "\n" not in message and message


# --- the real files in ../shared ------------------------------------------------------------------
def test_shared_canon_dng():
    m = decode(shared_file("data", "raw", "canon550d_colorchart.dng"))
    assert m.cfa == "RGGB" and m.data.shape == (1156, 1734)
    assert m.white == 15000 and np.all(m.black == 2056)
    assert m.wb_source == "as shot" and m.matrix_source.startswith("file")


@pytest.mark.parametrize("name, cfa, shape", [("picam_gbrg_10bit.dng", "GBRG", (480, 640)),
                                              ("kodak_dc50_grbg.kdc", "GRBG", (512, 768))])
def test_shared_files_without_metadata(name, cfa, shape):
    m = decode(shared_file("data", "raw", name))
    assert m.cfa == cfa and m.data.shape == shape
    assert m.wb_source == "grey world" and m.matrix_source.startswith("identity")


@pytest.mark.parametrize("cfa", ["rggb", "bggr", "grbg", "gbrg"])
def test_shared_dumps(cfa):
    path = shared_file("data", "raw", f"nikon_crop_768x512_{cfa}.u16le.raw")
    m = decode(path, DumpFormat(size=(768, 512), cfa=cfa.upper(), bits=14))
    assert m.data.shape == (512, 768) and m.cfa == cfa.upper()


def test_shared_packed_npy():
    m = decode(shared_file("data", "raw", "vivo_x90_rggb_patch.npy"))
    assert m.data.shape == (1024, 1024) and m.cfa == "RGGB" and m.white == 4095
