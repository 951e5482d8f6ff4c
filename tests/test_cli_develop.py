"""``microisp develop``: exit codes, messages and files, with click's CliRunner."""

from __future__ import annotations

import shutil
import struct

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from conftest import shared_file
from helpers import develop, output_lines, small_dng
from microisp_cli.cli.main import cli
from microisp_cli.encode import srgb_icc_profile
from microisp_cli.training.data import camera_matrix


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    """A small valid DNG, with the white balance and colour matrix a camera writes (no fallback
    warnings)."""
    return small_dng(tmp_path_factory.mktemp("in") / "shot.dng", cfa="GBRG",
                     color_matrix=camera_matrix("Canon EOS 550D"))


def test_single_file_to_png(tmp_path, dng):
    result = develop(dng, "-o", tmp_path / "out.png")
    assert result.exit_code == 0, result.output
    data = (tmp_path / "out.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and b"iCCP" in data[:data.index(b"IDAT")]
    width, height, depth = struct.unpack(">IIB", data[16:25])
    assert (width, height, depth) == (84, 60, 8)
    assert "1 done, 0 skipped, 0 failed" in result.output
    assert "Traceback" not in result.output


def test_tiff_16_bit_default_and_8_bit_option(tmp_path, dng):
    assert develop(dng, "-o", tmp_path / "a.tif").exit_code == 0
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.asarray().dtype == np.uint16 and tif.asarray().shape == (60, 84, 3)
        assert bytes(tif.pages[0].tags[34675].value) == srgb_icc_profile()
    assert develop(dng, "-o", tmp_path / "b.tiff", "--bits", "8").exit_code == 0
    assert tifffile.imread(tmp_path / "b.tiff").dtype == np.uint8


def test_png_16_bit_and_jpeg_quality(tmp_path, dng):
    assert develop(dng, "-o", tmp_path / "a.png", "--bits", "16").exit_code == 0
    assert (tmp_path / "a.png").read_bytes()[24] == 16
    assert develop(dng, "-o", tmp_path / "hi.jpg", "--quality", "98").exit_code == 0
    assert develop(dng, "-o", tmp_path / "lo.jpg", "--quality", "20").exit_code == 0
    hi, lo = (tmp_path / "hi.jpg").read_bytes(), (tmp_path / "lo.jpg").read_bytes()
    assert b"ICC_PROFILE" in hi and len(lo) < len(hi)


def test_folder_in_folder_out_recursive(tmp_path, dng):
    src = tmp_path / "shoot"
    (src / "day2").mkdir(parents=True)
    shutil.copy(dng, src / "a.dng")
    shutil.copy(dng, src / "day2" / "b.DNG")
    (src / "notes.txt").write_text("not a raw")  # ignored: not a RAW extension
    result = develop(src, "-o", tmp_path / "out", "--format", "tif", "--quiet")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == ""  # quiet: nothing when all is well
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.tif")) \
        == ["a.tif", "day2/b.tif"]


def test_same_stem_gets_full_names(tmp_path, dng):
    shutil.copy(dng, tmp_path / "x.dng")
    shutil.copy(dng, tmp_path / "x.nef")  # a DNG under another name: LibRaw reads it by content
    result = develop(tmp_path / "x.dng", tmp_path / "x.nef", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x.dng.png", "x.nef.png"]


def test_existing_output_is_skipped_unless_overwrite(tmp_path, dng):
    target = tmp_path / "out.png"
    target.write_bytes(b"old")
    result = develop(dng, "-o", target)
    assert result.exit_code == 0
    assert f"skipped {dng}: {target} exists (use --overwrite to replace it)" in result.output
    assert "0 done, 1 skipped, 0 failed" in result.output
    assert target.read_bytes() == b"old"
    result = develop(dng, "-o", target, "--overwrite")
    assert result.exit_code == 0 and "(replaced" in result.output
    assert target.read_bytes()[:4] == b"\x89PNG"


# --- bad input: one line naming the file, nothing written, the batch goes on ---------------------
def _bad_batch(tmp_path, dng, bad, expected):
    out = tmp_path / "out"
    result = develop(bad, dng, "-o", out)
    assert result.exit_code == 1, result.output
    errors = [ln for ln in output_lines(result) if ln.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: {bad}: ") and expected in errors[0], result.output
    assert "Traceback" not in result.output
    assert "1 done, 0 skipped, 1 failed" in result.output
    assert sorted(p.name for p in out.iterdir()) == [dng.stem + ".png"]  # only the good one
    return errors[0]


def test_missing_path(tmp_path, dng):
    _bad_batch(tmp_path, dng, tmp_path / "nope.dng", "no such file or directory")


def test_folder_without_raws(tmp_path, dng):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    _bad_batch(tmp_path, dng, empty, "no RAW files in this folder")


def test_zero_byte_file(tmp_path, dng):
    (tmp_path / "zero.dng").write_bytes(b"")
    _bad_batch(tmp_path, dng, tmp_path / "zero.dng", "empty file (0 bytes)")


def test_truncated_file(tmp_path, dng):
    blob = dng.read_bytes()
    (tmp_path / "cut.dng").write_bytes(blob[:len(blob) // 3])
    _bad_batch(tmp_path, dng, tmp_path / "cut.dng", "truncated or unreadable RAW file")


def test_text_renamed_dng(tmp_path, dng):
    (tmp_path / "notes.dng").write_text("shopping list\n- milk\n")
    _bad_batch(tmp_path, dng, tmp_path / "notes.dng", "a text file, not a RAW image")


def test_unsupported_sensor(tmp_path, dng):
    rgb = np.random.default_rng(0).integers(0, 4000, (64, 64, 3)).astype(np.uint16)
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "lin", True), (50717, "I", 1, 4095, True)]
    tifffile.imwrite(tmp_path / "linear.dng", rgb, photometric=34892, planarconfig=1, extratags=tags,
                     subfiletype=0)
    _bad_batch(tmp_path, dng, tmp_path / "linear.dng", "unsupported sensor layout: ")


@pytest.mark.parametrize(("name", "expected"), [
    ("CanonRaw.cr2", "not a RAW file LibRaw can read"),
    ("DNG.dng", "pixel data missing or stripped ("),
    ("FujiFilm.raf", "pixel data missing or stripped ("),
    ("Nikon.nef", "pixel data missing or stripped ("),
    ("Panasonic.rw2", "pixel data missing or stripped ("),
])
def test_pixel_stripped_files(tmp_path, dng, name, expected):
    _bad_batch(tmp_path, dng, shared_file("data", "raw", "bad", name), expected)


def test_unwritable_output_location(tmp_path, dng):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    result = develop(dng, "-o", blocker / "out.png")
    assert result.exit_code == 1
    errors = [ln for ln in output_lines(result) if ln.startswith("error:")]
    assert len(errors) == 1 and f"error: {dng}: " in errors[0] and "cannot write" in errors[0]
    assert blocker.read_text() == "a file where a folder should be"
    assert not list(tmp_path.glob("**/*.part"))


# --- usage errors: exit code 2 ----------------------------------------------------------------------
def test_usage_errors(tmp_path, dng):
    assert develop("-o", tmp_path / "x.png").exit_code == 2  # no input
    assert develop(dng).exit_code == 2  # no -o
    result = develop(dng, "-o", tmp_path / "x.jpg", "--bits", "16")
    assert result.exit_code == 2 and "JPEG is 8-bit only" in result.output
    result = develop(dng, dng, "-o", tmp_path / "x.png")
    assert result.exit_code == 2 and "give a folder" in result.output
    result = develop(dng, "-o", tmp_path / "x.gif")
    assert result.exit_code == 2 and "unknown output format" in result.output
    result = develop(dng, "-o", tmp_path / "x.png", "--weights", "no-such-weights")
    assert result.exit_code == 2 and "unknown weights name" in result.output
    assert develop(dng, "-o", tmp_path / "x.png", "--bits", "12").exit_code == 2
    assert develop(dng, "-o", tmp_path / "x.png", "--tile-size", "7").exit_code == 2
    assert develop(dng, "-o", tmp_path / "x.png", "--raw-size", "12").exit_code == 2
    assert not list(tmp_path.iterdir())


def test_help_lists_the_options():
    result = CliRunner().invoke(cli, ["develop", "--help"])
    assert result.exit_code == 0
    for option in ("--output", "--format", "--bits", "--quality", "--weights", "--overwrite",
                   "--tile-size", "--attention", "--raw-size", "--cfa", "--force-cfa", "--bits-per-sample",
                   "--black-level", "--max-megapixels", "--quiet"):
        assert option in result.output


# --- sensor dumps and the real files in ../shared -----------------------------------------------
def test_headerless_dump(tmp_path):
    mosaic = np.random.default_rng(1).integers(0, 16383, (70, 90)).astype("<u2")
    mosaic.tofile(tmp_path / "frame.raw")
    result = develop(tmp_path / "frame.raw", "-o", tmp_path / "frame.png")
    assert result.exit_code == 1 and "needs --raw-size" in result.output
    result = develop(tmp_path / "frame.raw", "-o", tmp_path / "frame.png", "--raw-size", "90x70",
                 "--cfa", "GRBG", "--bits-per-sample", "14", "--black-level", "512")
    assert result.exit_code == 0, result.output
    assert struct.unpack(">II", (tmp_path / "frame.png").read_bytes()[16:24]) == (90, 70)


@pytest.mark.slow
def test_every_shared_raw_file(tmp_path):
    folder = shared_file("data", "raw")
    result = develop(folder, "-o", tmp_path / "out", "--raw-size", "768x512", "--bits-per-sample", "14",
                 "--tile-size", "0")
    assert result.exit_code == 1  # the files in bad/ fail
    errors = [ln for ln in output_lines(result) if ln.startswith("error:")]
    assert len(errors) == 5 and all("/bad/" in ln for ln in errors), result.output
    names = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*"))
    expected = sorted(p.relative_to(folder).with_suffix(".png").as_posix()
                      for p in folder.glob("*") if p.is_file())
    assert names == expected


def test_max_megapixels(tmp_path, dng):
    result = develop(dng, "-o", tmp_path / "x.png", "--max-megapixels", "0.001")
    assert result.exit_code == 1 and "MP limit" in result.output
    assert not (tmp_path / "x.png").exists()
