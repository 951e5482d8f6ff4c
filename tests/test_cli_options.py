"""``microisp develop``'s photographer's options, through the CLI: metadata, controls, output, presets."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pyexiv2
import pytest
import tifffile
from PIL import Image

from conftest import shared_file
from helpers import develop, small_dng
from microisp_cli.colour import COLOUR_SPACES, icc_profile
from microisp_cli.training.dng import write_dng


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    """A small DNG with an as-shot white balance and a camera name (EXIF Make/Model)."""
    folder = tmp_path_factory.mktemp("in")
    yy, xx = np.mgrid[0:60, 0:84]
    mosaic = (200 + 1500 * (xx / 84) + 800 * (yy / 60)).astype(np.uint16)
    return small_dng(folder / "shot.dng", mosaic=mosaic, cfa="RGGB", camera="Test Camera X1")


def develop_json(tmp_path, *args, name="out.tif"):
    """Develop ``dng`` with ``args``; the output path and its --json record."""
    report = tmp_path / f"{name}.json"
    result = develop(*args, "-o", tmp_path / name, "--json", report, "--overwrite")
    assert result.exit_code == 0, result.output
    (record,) = json.loads(report.read_text())
    return tmp_path / name, record


def linear(path):
    return tifffile.imread(path).astype(np.float64) / 65535


# --- metadata -------------------------------------------------------------------------------------
@pytest.mark.parametrize("extension", ["png", "tif", "jpg", "webp"])
def test_exif_and_profile_in_every_format(tmp_path, dng, extension):
    out = tmp_path / f"x.{extension}"
    assert develop(dng, "-o", out).exit_code == 0
    with pyexiv2.Image(str(out)) as image:
        exif = image.read_exif()
    assert exif["Exif.Image.Model"] == "Test Camera X1" and exif["Exif.Image.Make"] == "microisp"
    assert exif["Exif.Image.Orientation"] == "1" and exif["Exif.Image.Software"].startswith("microisp ")
    assert exif["Exif.Image.XResolution"] == "300/1" and exif["Exif.Image.ResolutionUnit"] == "2"
    with Image.open(out) as picture:
        assert picture.info.get("icc_profile") == icc_profile("srgb") or extension == "tif"
    if shutil.which("exiftool"):  # what photo catalogues read
        shown = subprocess.run(["exiftool", "-s3", "-Model", "-ProfileDescription", str(out)],
                               capture_output=True, text=True).stdout.split("\n")
        assert shown[:2] == ["Test Camera X1", "sRGB IEC61966-2.1 (microisp)"]
    # --strip-metadata leaves the camera out, keeps the profile
    stripped = tmp_path / f"s.{extension}"
    assert develop(dng, "-o", stripped, "--strip-metadata").exit_code == 0
    with pyexiv2.Image(str(stripped)) as image:
        assert "Exif.Image.Model" not in image.read_exif()


def test_exif_of_a_real_camera_file(tmp_path):
    canon = shared_file("data", "raw", "canon550d_colorchart.dng")
    out = tmp_path / "canon.jpg"
    assert develop(canon, "-o", out, "--half-size").exit_code == 0
    with pyexiv2.Image(str(out)) as image:
        exif = image.read_exif()
    assert exif["Exif.Image.Make"] == "Canon" and exif["Exif.Image.Model"] == "Canon EOS Kiss X4"
    assert "Exif.Photo.ExposureTime" in exif


# --- controls ---------------------------------------------------------------------------------------
def test_plus_one_ev_doubles_the_linear_value(tmp_path, dng):
    base, record = develop_json(tmp_path, dng, "--colorspace", "linear-srgb", name="a.tif")
    brighter, record_up = develop_json(tmp_path, dng, "--colorspace", "linear-srgb", "--exposure", "+1",
                                       name="b.tif")
    a, b = linear(base), linear(brighter)
    unclipped = a < 0.45
    assert unclipped.mean() > 0.5
    np.testing.assert_allclose(b[unclipped], 2 * a[unclipped], atol=2 / 65535)
    assert record["exposure"] == 0 and record_up["exposure"] == 1


def test_auto_exposure_is_recorded(tmp_path, dng):
    _, record = develop_json(tmp_path, dng, "--exposure", "auto")
    assert record["exposure"] != 0 and abs(record["exposure"]) <= 4


def test_custom_wb_gains_are_applied(tmp_path, dng):
    camera, record = develop_json(tmp_path, dng, name="camera.tif")
    assert record["wb_source"] == "as shot"
    np.testing.assert_allclose(record["wb"], [2.0, 1.0, 1 / 0.7], rtol=1e-4)
    # the same gains given by hand give the same photo; other gains another one
    same, record_same = develop_json(tmp_path, dng, "--wb", "4,2,2.857143", name="same.tif")
    assert record_same["wb_source"] == "user"
    np.testing.assert_allclose(record_same["wb"], record["wb"], rtol=1e-5)
    assert np.abs(linear(same) - linear(camera)).max() <= 2 / 65535
    neutral, record_neutral = develop_json(tmp_path, dng, "--wb", "1,1,1", name="neutral.tif")
    assert record_neutral["wb"] == [1.0, 1.0, 1.0]
    assert linear(neutral)[..., 0].mean() < linear(camera)[..., 0].mean() - 0.05  # less red gain


def test_wb_fallback_is_one_warning_line(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    plain = write_dng(folder / "plain.dng", np.random.default_rng(1).integers(300, 3000, (40, 40)).astype(np.uint16),
                      "RGGB", white_level=4095)
    result = develop(plain, "-o", tmp_path / "p.png")
    assert result.exit_code == 0
    lines = [ln for ln in result.output.splitlines() if "white balance" in ln]
    assert lines == [f"warning: {plain}: the file has no as-shot white balance; using grey world gains instead"]
    # asking for grey world explicitly is no fallback: no white-balance warning
    result = develop(plain, "-o", tmp_path / "q.png", "--wb", "auto")
    assert result.exit_code == 0 and "white balance" not in result.output


@pytest.mark.parametrize("name", COLOUR_SPACES)
def test_colour_space_embeds_its_profile(tmp_path, dng, name):
    out, record = develop_json(tmp_path, dng, "--colorspace", name, name=f"{name}.tif")
    with tifffile.TiffFile(out) as tif:
        assert bytes(tif.pages[0].tags[34675].value) == icc_profile(name)
    assert record["colorspace"] == name


def test_highlight_modes_change_only_clipped_pixels(tmp_path):
    mosaic = np.full((48, 48), 600, np.uint16)
    mosaic[16:32, 16:32] = 4095  # a clipped patch
    mosaic[16:32, 16:32][1::2, 1::2] = 3000  # blue not clipped there
    path = write_dng(tmp_path / "hl.dng", mosaic, "RGGB", white_level=4095, as_shot_neutral=[0.5, 1.0, 0.6])
    images = {}
    for mode in ("clip", "blend", "reconstruct"):
        out, _ = develop_json(tmp_path, path, "--highlights", mode, name=f"{mode}.tif")
        images[mode] = linear(out)
    patch = (slice(20, 28), slice(20, 28))
    chroma = {m: np.ptp(img[patch], axis=-1).mean() for m, img in images.items()}
    assert chroma["blend"] < chroma["clip"]  # blended towards neutral
    np.testing.assert_allclose(images["blend"][:8, :8], images["clip"][:8, :8], atol=2 / 65535)


def test_half_size_and_size(tmp_path, dng):
    half, record = develop_json(tmp_path, dng, "--half-size")
    assert tifffile.imread(half).shape == (30, 42, 3) and record["size"] == [42, 30]
    small, record = develop_json(tmp_path, dng, "--size", "40", name="small.tif")
    assert tifffile.imread(small).shape == (29, 40, 3) and record["size"] == [40, 29]


def test_thumbnail(tmp_path, dng):
    result = develop(dng, "-o", tmp_path / "t.jpg", "--thumbnail")
    assert result.exit_code == 1
    assert f"error: {dng}: no embedded preview" in result.output and not (tmp_path / "t.jpg").exists()
    kodak = shared_file("data", "raw", "kodak_dc50_grbg.kdc")
    out = tmp_path / "k.jpg"
    assert develop(kodak, "-o", out, "--thumbnail").exit_code == 0
    with Image.open(out) as picture:
        assert picture.size == (96, 64)


def test_bad_values_are_usage_errors(tmp_path, dng):
    for args, message in ((("--wb", "1,2"), "--wb"), (("--wb", "-1,1,1"), "--wb"),
                          (("--exposure", "bright"), "--exposure"), (("--subsampling", "411"), "--subsampling"),
                          (("--colorspace", "cmyk"), "--colorspace"), (("--preset", "nope"), "--preset")):
        result = develop(dng, "-o", tmp_path / "x.png", *args)
        assert result.exit_code == 2 and message in result.output, (args, result.output)
        assert not (tmp_path / "x.png").exists()
    result = develop(dng, "-o", tmp_path / "x.webp", "--bits", "16")
    assert result.exit_code == 2 and "8-bit" in result.output


# --- batches ----------------------------------------------------------------------------------------
def test_no_recursive_and_json(tmp_path, dng):
    shoot = tmp_path / "shoot"
    (shoot / "day2").mkdir(parents=True)
    shutil.copy(dng, shoot / "a.dng")
    shutil.copy(dng, shoot / "day2" / "b.dng")
    (shoot / "bad.dng").write_bytes(b"not a raw")
    report = tmp_path / "report.json"
    result = develop(shoot, "-o", tmp_path / "out", "--no-recursive", "--json", report)
    assert result.exit_code == 1  # bad.dng failed, a.dng done, day2/ not searched
    records = {r["input"]: r for r in json.loads(report.read_text())}
    assert set(records) == {str(shoot / "a.dng"), str(shoot / "bad.dng")}
    done, failed = records[str(shoot / "a.dng")], records[str(shoot / "bad.dng")]
    assert done["status"] == "done" and done["error"] is None and done["seconds"] > 0
    assert done["wb_source"] == "as shot" and len(done["matrix"]) == 3
    assert failed["status"] == "failed" and failed["error"]
    assert develop(shoot, "-o", tmp_path / "all", "--overwrite").output.count("->") == 2  # recursive


# --- presets ----------------------------------------------------------------------------------------
def test_presets(tmp_path, dng):
    listed = develop("--list-presets")
    assert listed.exit_code == 0 and "proof" in listed.output and "web" in listed.output
    out, record = develop_json(tmp_path, dng, "--preset", "proof")
    assert tifffile.imread(out).shape == (30, 42, 3) and record["exposure"] != 0  # half size, auto
    _, record = develop_json(tmp_path, dng, "--preset", "proof", "--exposure", "0.5", name="o.tif")
    assert record["exposure"] == 0.5  # the command line wins over the preset
    mine = tmp_path / "mine.toml"
    mine.write_text('description = "mine"\nwb = [4.0, 2.0, 2.0]\ncolorspace = "display-p3"\n')
    _, record = develop_json(tmp_path, dng, "--preset", mine, name="m.tif")
    assert record["wb"] == [2.0, 1.0, 1.0] and record["colorspace"] == "display-p3"
    mine.write_text("tile_size = 64\n")
    result = develop(dng, "-o", tmp_path / "y.png", "--preset", mine)
    assert result.exit_code == 2 and "tile_size cannot be set by a preset" in result.output
