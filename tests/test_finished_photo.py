"""Issue 29, "a finished photo": the DNG's default crop and camera name, ``--json -``, presets
that choose the format, the CFA-phase check, and the rest of the photographer's controls, each
through the real CLI on real files (small DNGs written by the project's DNG writer, and the files
of ../shared/data/raw)."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import shared_file
from helpers import NEUTRAL, develop, small_dng
from microisp_cli.bayer import CFA_PATTERNS, crop_cfa
from microisp_cli.raw import decode
from microisp_cli.synthetic import random_mosaic

BLACKMAGIC = "Blackmagic Pocket Cinema Camera 4K"


def _exif(path):
    import pyexiv2

    with pyexiv2.Image(str(path)) as image:
        return image.read_exif()


# --- point 3: DefaultCrop, ActiveArea, UniqueCameraModel -----------------------------------------
@pytest.mark.parametrize("cfa", CFA_PATTERNS)
@pytest.mark.parametrize(("top", "left"), [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_crop_cfa_names_the_colours_at_the_new_corner(cfa, top, left):
    colour = lambda y, x: cfa[2 * (y % 2) + x % 2]  # noqa: E731
    cropped = crop_cfa(cfa, top, left)
    assert cropped in CFA_PATTERNS
    assert all(cropped[2 * y + x] == colour(y + top, x + left) for y in range(2) for x in range(2))


@pytest.mark.parametrize(("origin", "cfa"), [((16, 8), "RGGB"), ((17, 9), "BGGR"), ((3, 0), "GRBG")])
def test_a_dng_default_crop_inside_its_active_area_is_honoured(tmp_path, origin, cfa):
    data = random_mosaic(216, 412, seed=3)
    path = small_dng(tmp_path / "bm.dng", mosaic=data, cfa=cfa, camera=BLACKMAGIC, make_model=False,
                     active_area=(2, 4, 214, 410), default_crop=(*origin, 360, 192))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning: as-shot neutral, crop usable
        warnings.filterwarnings("ignore", message=".*colour matrix.*")
        mosaic = decode(path)
    x, y = origin
    np.testing.assert_array_equal(mosaic.data, data[2 + y:2 + y + 192, 4 + x:4 + x + 360])
    assert mosaic.cfa == crop_cfa(cfa, y, x)


def test_the_blackmagic_like_dng_develops_to_its_crop_with_its_camera_name(tmp_path):
    path = small_dng(tmp_path / "bm.dng", mosaic=random_mosaic(216, 412, seed=4), cfa="RGGB",
                     camera=BLACKMAGIC, make_model=False, active_area=(0, 0, 216, 412),
                     default_crop=(16, 8, 360, 192))
    out = tmp_path / "bm.jpg"
    result = develop(path, "-o", out)
    assert result.exit_code == 0, result.output
    assert Image.open(out).size == (360, 192)
    exif = _exif(out)
    assert exif.get("Exif.Image.Model") == BLACKMAGIC and "Exif.Image.Make" not in exif


def test_the_blackmagic_pocket_4k_geometry_decodes_to_4096x2160(tmp_path):
    """The file the issue names (not at hand): 4128x2176 stored, DefaultCropOrigin 16,8 and
    DefaultCropSize 4096x2160, UniqueCameraModel and no Make/Model."""
    from microisp_cli.metadata import camera_and_date, read

    path = small_dng(tmp_path / "bmpcc4k.dng", mosaic=random_mosaic(2176, 4128, seed=6), cfa="RGGB",
                     camera=BLACKMAGIC, make_model=False, default_crop=(16, 8, 4096, 2160))
    assert decode(path).size == (4096, 2160)
    assert read(path).exif["Exif.Image.Model"] == BLACKMAGIC
    assert camera_and_date(path)[0] == BLACKMAGIC


def test_make_and_model_win_over_unique_camera_model(tmp_path):
    path = small_dng(tmp_path / "named.dng", camera="Unique Name")
    out = tmp_path / "named.jpg"
    assert develop(path, "-o", out).exit_code == 0
    exif = _exif(out)
    assert (exif["Exif.Image.Make"], exif["Exif.Image.Model"]) == ("microisp", "Unique Name")


def test_a_default_crop_outside_the_active_area_is_ignored_with_a_warning(tmp_path):
    path = small_dng(tmp_path / "odd.dng", mosaic=random_mosaic(120, 160, seed=5), cfa="RGGB",
                     active_area=(0, 0, 120, 160), default_crop=(100, 0, 100, 100))
    with pytest.warns(UserWarning, match="default crop .* does not lie inside"):
        mosaic = decode(path)
    assert mosaic.data.shape == (120, 160)


def test_the_canon_dng_crop_is_its_visible_area():
    mosaic = decode(shared_file("data", "raw", "canon550d_colorchart.dng"))
    assert mosaic.size == (1734, 1156)


# --- point 7: --json - ------------------------------------------------------------------------------
def test_json_dash_writes_the_report_to_standard_output(tmp_path):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / "a.png", "--json", "-", "-q")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["status"] for r in records] == ["done"] and records[0]["output"].endswith("a.png")
    assert not (tmp_path / "-").exists() and not list(tmp_path.glob("*-*"))


def test_json_dash_with_output_dash_is_a_usage_error(tmp_path):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", "-", "--format", "png", "--json", "-")
    assert result.exit_code == 2
    assert "--json" in result.output and "standard output" in result.output


# --- point 6: presets choose the format; errors name the preset's key --------------------------------
def test_bundled_proof_preset_writes_jpegs_into_a_folder(tmp_path):
    small_dng(tmp_path / "in" / "a.dng", 96, 128, "RGGB") if (tmp_path / "in").mkdir() is None else None
    result = develop(tmp_path / "in", "-o", tmp_path / "out", "--preset", "proof")
    assert result.exit_code == 0, result.output
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["a.jpg"]
    # --format on the command line still wins over the preset's
    result = develop(tmp_path / "in", "-o", tmp_path / "png", "--preset", "proof", "-f", "png")
    assert [p.name for p in (tmp_path / "png").iterdir()] == ["a.png"]


def test_a_preset_value_that_cannot_be_used_names_the_preset_key(tmp_path):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / "x.jpg", "--preset", "archive")
    assert result.exit_code == 2
    assert "--preset archive" in result.output and "bits = 16" in result.output
    assert "Invalid value for --bits" not in result.output
    # the same value typed by the user is blamed on the option
    result = develop(path, "-o", tmp_path / "x.jpg", "--bits", "16")
    assert result.exit_code == 2 and "--bits" in result.output


@pytest.mark.parametrize(("toml", "words"), [
    ('format = "bmp"', ["format = 'bmp'", "png, tif"]),
    ("quality = 500", ["quality = 500", "1-100"]),
    ('high-lights = "glow"', ["high-lights", "cannot be set by a preset"]),
    ('highlights = "glow"', ["highlights = 'glow'"]),
])
def test_a_bad_toml_preset_is_reported_by_its_key(tmp_path, toml, words):
    preset = tmp_path / "style.toml"
    preset.write_text(toml + "\n")
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", f"{tmp_path}/out/", "--preset", preset)
    assert result.exit_code == 2
    assert f"--preset {preset}" in result.output
    assert all(w in result.output for w in words), result.output


def test_a_toml_preset_chooses_the_format_of_a_folder(tmp_path):
    preset = tmp_path / "web.toml"
    preset.write_text('format = "webp"\nquality = 70\nsize = 40\n')
    path = small_dng(tmp_path / "a.dng", 64, 96, "RGGB")
    result = develop(path, "-o", f"{tmp_path}/out/", "--preset", preset)
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "a.webp") as image:
        assert image.format == "WEBP" and image.size == (40, 27)


# --- point 8: the CFA-phase check and the identity-matrix warning ------------------------------------
def _warnings_of(result, name):
    return [ln for ln in result.output.splitlines() if ln.startswith("warning:") and name in ln]


def test_the_pi_camera_dng_gets_one_line_naming_the_likely_force_cfa(tmp_path):
    path = shared_file("data", "raw", "picam_gbrg_10bit.dng")
    result = develop(path, "-o", tmp_path / "p.png")
    assert result.exit_code == 0
    lines = [ln for ln in _warnings_of(result, path.name) if "green samples" in ln]
    assert len(lines) == 1 and "--force-cfa BGGR (or RGGB)" in lines[0], result.output
    forced = develop(path, "-o", tmp_path / "q.png", "--force-cfa", "BGGR")
    assert forced.exit_code == 0 and "green samples" not in forced.output


@pytest.mark.parametrize("true", ["rggb", "bggr", "grbg", "gbrg"])
def test_the_cfa_check_on_the_real_nikon_dumps_read_with_every_order(true):
    path = shared_file("data", "raw", f"nikon_crop_768x512_{true}.u16le.raw")
    from microisp_cli.raw import DumpFormat

    for tagged in CFA_PATTERNS:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            decode(path, DumpFormat(size=(768, 512), cfa=tagged, black=600))
        doubts = [str(w.message) for w in caught if "green samples" in str(w.message)]
        greens_agree = (tagged[0] == "G") == (true[0] == "g")
        if greens_agree:
            assert doubts == [], (tagged, doubts)
        else:
            assert len(doubts) == 1 and "--cfa " in doubts[0]
            assert true.upper() in doubts[0].split("try ")[1]


@pytest.mark.parametrize("name", ["canon550d_colorchart.dng", "kodak_dc50_grbg.kdc"])
def test_correctly_tagged_real_files_raise_no_cfa_doubt(name):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode(shared_file("data", "raw", name))
    assert not [w for w in caught if "green samples" in str(w.message)]


def test_random_mosaics_raise_no_cfa_doubt():
    from microisp_cli.mosaic import unlikely_cfa

    for cfa in CFA_PATTERNS:
        assert unlikely_cfa(random_mosaic(128, 128, seed=1), cfa, 64.0, 4095.0) is None


def test_the_identity_matrix_fallback_says_what_it_does_in_one_line(tmp_path):
    path = shared_file("data", "raw", "kodak_dc50_grbg.kdc")
    result = develop(path, "-o", tmp_path / "k.png")
    lines = [ln for ln in _warnings_of(result, path.name) if "identity matrix" in ln]
    assert len(lines) == 1 and "muted" in lines[0]


# --- point 10: highlight blend keeps the colour of coloured highlights ---------------------------------
def test_blend_keeps_the_vivo_lit_panel_coloured():
    from microisp_cli.develop import develop as develop_array

    path = shared_file("data", "raw", "vivo_x90_rggb_patch.npy")
    mosaic = decode(path)
    cells = mosaic.data.reshape(mosaic.data.shape[0] // 2, 2, mosaic.data.shape[1] // 2, 2)
    clipped = np.repeat(np.repeat((cells >= 0.98 * mosaic.white).any(axis=(1, 3)), 2, 0), 2, 1)
    images = {mode: develop_array(path, colorspace="linear-srgb", highlights=mode)[clipped] / 65535.0
              for mode in ("clip", "blend")}
    coloured = images["clip"].min(axis=1) < 0.75
    chroma = {m: np.ptp(v, axis=1) for m, v in images.items()}
    assert coloured.mean() > 0.3  # the lit panel and lanterns: a real share of the clipped pixels
    # coloured highlights keep their colour (the former blend left 3% of it: 0.225 -> 0.013 overall)
    assert chroma["blend"][coloured].mean() > 0.95 * chroma["clip"][coloured].mean()
    # near-white ones lose some of their cast
    assert chroma["blend"][~coloured].mean() < 0.8 * chroma["clip"][~coloured].mean()


# --- point 5: --wb 5500K and a tint ----------------------------------------------------------------
def _as_shot_light(mosaic):
    """The CCT and tint (Duv x 1000) of the light the file's as-shot gains balance, worked out
    with colour-science directly (the inverse of colour.kelvin_gains)."""
    import colour

    from microisp_cli.colour import SRGB_TO_XYZ

    balanced = mosaic.daylight_wb / mosaic.wb  # the light's camera response, D65-balanced
    xyz = SRGB_TO_XYZ @ (mosaic.cam_to_srgb.astype(float) @ balanced)
    uv = colour.xy_to_UCS_uv(colour.XYZ_to_xy(xyz))
    cct, duv = colour.temperature.uv_to_CCT(uv, method="Ohno 2013")
    return float(cct), float(duv) * 1000


def test_kelvin_white_balance_round_trips_the_canon_as_shot_gains(tmp_path):
    from microisp_cli.white_balance import apply as apply_wb
    from microisp_cli.colour import Kelvin

    mosaic = decode(shared_file("data", "raw", "canon550d_colorchart.dng"))
    cct, tint = _as_shot_light(mosaic)
    assert 4000 < cct < 7000
    gains = apply_wb(mosaic, Kelvin(cct, tint)).wb
    np.testing.assert_allclose(gains, mosaic.wb, rtol=0.005)
    # D65 (6504 K, Duv +3.2) is the daylight white balance
    np.testing.assert_allclose(apply_wb(mosaic, Kelvin(6504, 3.2)).wb, mosaic.daylight_wb, rtol=0.005)
    # warmer light needs more blue gain and less red gain; a greener tint more of both
    blue = [apply_wb(mosaic, Kelvin(t)).wb for t in (2800, 4000, 5500, 7500, 12000)]
    assert all(a[2] > b[2] and a[0] < b[0] for a, b in zip(blue, blue[1:]))
    green, magenta = apply_wb(mosaic, Kelvin(5500, 10)).wb, apply_wb(mosaic, Kelvin(5500, -10)).wb
    assert green[0] > magenta[0] and green[2] > magenta[2]


def test_wb_kelvin_from_the_command_line(tmp_path):
    path = shared_file("data", "raw", "canon550d_colorchart.dng")
    for value, source in [("5500", "5500K"), ("3200K,-4", "3200K,-4")]:
        report = tmp_path / f"{value}.json"
        result = develop(path, "-o", tmp_path / f"{value}.jpg", "--half-size", "--wb", value, "--json", report)
        assert result.exit_code == 0, result.output
        record = json.loads(report.read_text())[0]
        assert record["wb_source"] == f"{source} (colour temperature)"
    for bad in ("900K", "5500K,+80", "5500K,x"):
        result = develop(path, "-o", tmp_path / "bad.jpg", "--wb", bad)
        assert result.exit_code == 2 and "--wb" in result.output, bad


def test_wb_kelvin_without_a_colour_matrix_falls_back_in_one_line(tmp_path):
    path = shared_file("data", "raw", "kodak_dc50_grbg.kdc")
    result = develop(path, "-o", tmp_path / "k.jpg", "--wb", "5500K")
    assert result.exit_code == 0
    lines = [ln for ln in result.output.splitlines() if "5500K needs the camera's colour matrix" in ln]
    assert len(lines) == 1 and "grey world" in lines[0]


# --- point 4: name templates, --width/--height/--size, --upscale, linear-light resampling ------------
def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_name_templates_over_a_folder_of_real_files(tmp_path):
    shoot = tmp_path / "shoot"
    (shoot / "day1").mkdir(parents=True)
    for name in ("canon550d_colorchart.dng", "kodak_dc50_grbg.kdc"):
        (shoot / "day1" / name).symlink_to(shared_file("data", "raw", name))
    out = tmp_path / "out"
    result = develop(shoot, "-o", f"{out}/{{camera}}/{{date}}/{{folder}}/{{stem}}_{{ext}}.jpg",
                     "--half-size", "-q")
    assert result.exit_code == 0, result.output
    files = _files(out)
    # the Canon DNG has no capture date: its file's date; the Kodak has DateTimeOriginal
    assert files[0].startswith("Canon EOS Kiss X4/") and files[0].endswith("/day1/canon550d_colorchart_dng.jpg")
    assert files[1:] == ["Kodak Digital Science DC50 Zoom Camera/1997-04-23/day1/kodak_dc50_grbg_kdc.jpg"]


def test_a_template_without_an_extension_takes_the_format_and_equal_names_are_numbered(tmp_path):
    a = small_dng(tmp_path / "in" / "x.dng", 64, 64, "RGGB") if (tmp_path / "in").mkdir() is None else None
    small_dng(tmp_path / "in" / "x.nef", 64, 64, "RGGB")
    result = develop(a, tmp_path / "in" / "x.nef", "-o", f"{tmp_path}/out/{{stem}}_dev", "-f", "webp", "-q")
    assert result.exit_code == 0, result.output
    assert _files(tmp_path / "out") == ["x_dev-2.webp", "x_dev.webp"]


@pytest.mark.parametrize(("output", "words"), [
    ("out/$(FILE_NAME)_dev.jpg", ["$(...)", "darktable", "{stem}"]),
    ("out/{name}.jpg", ["{name} is not a template field", "{camera}"]),
    ("out/{stem.jpg", ["not a name template"]),
])
def test_bad_templates_are_usage_errors(tmp_path, output, words):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / output)
    assert result.exit_code == 2 and all(w in result.output for w in words), result.output
    assert not (tmp_path / "out").exists()


def test_width_height_and_size_fit_a_box_and_never_upscale_unless_asked(tmp_path):
    from microisp_cli.adjust import target_size

    assert target_size(1734, 1156, box_width=800) == (800, 533)
    assert target_size(1734, 1156, box_height=400) == (600, 400)
    assert target_size(1734, 1156, long_side=1000, box_width=800, box_height=500) == (750, 500)
    assert target_size(1734, 1156, long_side=4000) is None
    assert target_size(1734, 1156, long_side=3468, upscale=True) == (3468, 2312)
    path = small_dng(tmp_path / "a.dng", 96, 128, "RGGB")
    out = tmp_path / "w.png"
    assert develop(path, "-o", out, "--width", "50").exit_code == 0
    assert Image.open(out).size == (50, 38)
    result = develop(path, "-o", tmp_path / "big.png", "--size", "300")
    assert result.exit_code == 0 and Image.open(tmp_path / "big.png").size == (128, 96)
    assert "kept at its size (--upscale enlarges it)" in result.output
    result = develop(path, "-o", tmp_path / "up.png", "--size", "256", "--upscale")
    assert result.exit_code == 0 and Image.open(tmp_path / "up.png").size == (256, 192)


def test_resampling_is_in_linear_light():
    from microisp_cli.adjust import resize
    from microisp_cli.colour import srgb_decode, srgb_encode

    # a one-pixel black and white checkerboard: half the light of white, whatever the curve
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 65535).astype(np.uint16)
    image = np.repeat(board[..., None], 3, axis=2)
    half = resize(image, (16, 16), "srgb")
    centre = half[4:12, 4:12].astype(float) / 65535
    np.testing.assert_allclose(srgb_decode(centre), 0.5, atol=0.01)  # linear light: 0.5 -> sRGB 0.735
    assert abs(centre.mean() - float(srgb_encode(np.array(0.5)))) < 0.01


# --- point 9: AVIF and JPEG XL with EXIF, XMP and the ICC profile ------------------------------------
@pytest.mark.parametrize("suffix", [".avif", ".jxl"])
def test_avif_and_jpeg_xl_carry_exif_xmp_and_icc(tmp_path, suffix):
    import shutil

    import pyexiv2

    from microisp_cli.colour import icc_profile

    if suffix == ".jxl":
        pytest.importorskip("pillow_jxl")
    source = tmp_path / "chart.dng"
    shutil.copyfile(shared_file("data", "raw", "canon550d_colorchart.dng"), source)
    with pyexiv2.Image(str(source)) as image:  # the Canon has no XMP packet: give it one
        image.modify_xmp({"Xmp.dc.creator": ["microisp test"], "Xmp.xmp.Rating": "4"})
    out = tmp_path / f"chart{suffix}"
    space = "display-p3" if suffix == ".avif" else "srgb"  # JPEG XL: sRGB only (the plugin's limit)
    result = develop(source, "-o", out, "--half-size", "--colorspace", space, "--quality", "80")
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    with Image.open(out) as image:
        assert image.size == (866, 578)  # the half-size develop of 1734x1156
        if suffix == ".avif":
            assert image.info["icc_profile"] == icc_profile("display-p3")
        else:  # libjxl's own sRGB description, read back through LittleCMS
            from PIL import ImageCms
            import io

            profile = ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"]))
            assert ImageCms.getProfileDescription(profile).strip() == "sRGB"
        exif = image.getexif()
        # Orientation 1 (AVIF: Pillow moves it into the irot/imir boxes, none for 1)
        assert (exif[271], exif[272], exif.get(274, 1)) == ("Canon", "Canon EOS Kiss X4", 1)
        assert exif[305].startswith("microisp ")
        assert 0x829D in exif.get_ifd(0x8769)  # FNumber, an Exif.Photo tag, kept
    assert b"microisp test" in data and b"xmp:Rating" in data  # the XMP packet, as written
    stripped = tmp_path / f"bare{suffix}"
    assert develop(source, "-o", stripped, "--half-size", "--strip-metadata").exit_code == 0
    assert b"Canon EOS" not in stripped.read_bytes()


def test_jpeg_xl_in_another_space_than_srgb_fails_before_developing(tmp_path):
    pytest.importorskip("pillow_jxl")
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / "a.jxl", "--colorspace", "display-p3")
    assert result.exit_code == 1 and "JPEG XL is written in sRGB only" in result.output
    assert not (tmp_path / "a.jxl").exists()


def test_avif_refuses_16_bit(tmp_path):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / "a.avif", "--bits", "16")
    assert result.exit_code == 2 and "AVIF is 8-bit only" in result.output


# --- point 1: looks and capture sharpening --------------------------------------------------------
@pytest.mark.parametrize(("contrast", "white"), [(1.5, 1.0), (1.5, 1.41), (2.0, 4.0), (1.0, 1.0)])
def test_the_sigmoid_tone_map_keeps_grey_reaches_white_smoothly_and_keeps_hue(contrast, white):
    from microisp_cli.render import tone_map

    ramp = np.geomspace(1e-4, white, 2001, dtype=np.float32)
    grey = np.repeat(ramp[:, None], 3, axis=1)[None]
    out = tone_map(grey, white, contrast)[0]
    assert np.all(out[:, 0] == out[:, 1]) and np.all(out[:, 1] == out[:, 2])  # greys stay neutral
    curve = out[:, 0].astype(float)
    assert np.all(np.diff(curve) > 0)  # monotonic
    np.testing.assert_allclose(curve[-1], 1.0, atol=1e-5)  # the scene white is display white
    mid = np.interp(np.log(0.18), np.log(ramp), curve)
    np.testing.assert_allclose(mid, 0.18, atol=2e-3)  # mid grey stays mid grey
    # smooth roll-off: the slope never jumps, and near white it is below the linear slope
    slope = np.diff(curve) / np.diff(ramp)
    assert np.all(np.abs(np.diff(slope)) < 0.05 * slope.max())
    if contrast > 1:
        assert slope[-1] < 1.0 / white
    # a coloured pixel keeps its channel ratios (its hue) when saturation is 1
    colour = np.array([[[0.4, 0.2, 0.05]]], np.float32) * white
    mapped = tone_map(colour, white, contrast)[0, 0]
    np.testing.assert_allclose(mapped / mapped[0], [1.0, 0.5, 0.125], rtol=1e-4)


def test_saturation_leaves_greys_and_luminance_alone():
    from microisp_cli.render import LUMINANCE, tone_map

    pixels = np.array([[[0.3, 0.3, 0.3], [0.5, 0.2, 0.1]]], np.float32)
    plain, vivid = tone_map(pixels, 1.0, 1.5, 1.0), tone_map(pixels, 1.0, 1.5, 1.4)
    np.testing.assert_allclose(vivid[0, 0], plain[0, 0])
    np.testing.assert_allclose(vivid[0, 1] @ LUMINANCE, plain[0, 1] @ LUMINANCE, rtol=1e-5)
    assert np.ptp(vivid[0, 1]) > np.ptp(plain[0, 1])


def test_the_sigmoid_look_on_a_grey_dng_keeps_it_grey_and_brightens_it(tmp_path):
    h, w = 96, 128
    level = np.linspace(200, 3000, w)[None, :].repeat(h, 0)  # a grey ramp under the as-shot light
    sites = np.empty((h, w))
    sites[0::2, 0::2], sites[1::2, 1::2] = (level * NEUTRAL[0])[0::2, 0::2], (level * NEUTRAL[2])[1::2, 1::2]
    sites[0::2, 1::2], sites[1::2, 0::2] = level[0::2, 1::2], level[1::2, 0::2]
    path = small_dng(tmp_path / "grey.dng", mosaic=np.rint(sites + 64).astype(np.uint16), cfa="RGGB")
    images = {}
    for look in ("neutral", "sigmoid"):
        out = tmp_path / f"{look}.png"
        assert develop(path, "-o", out, "--look", look, "--bits", "16").exit_code == 0
        images[look] = np.asarray(Image.open(out)).astype(float)[8:-8, 8:-8] / 65535
    chroma = {k: np.ptp(v, axis=-1).mean() for k, v in images.items()}
    assert chroma["sigmoid"] <= chroma["neutral"] + 1 / 255  # as grey as the neutral rendering
    assert images["sigmoid"].mean() > images["neutral"].mean()  # +0.5 EV, mid grey kept


def test_looks_are_options_presets_and_refuse_contrast_without_a_curve(tmp_path):
    path = small_dng(tmp_path / "a.dng", 64, 64, "RGGB")
    result = develop(path, "-o", tmp_path / "a.jpg", "--contrast", "2")
    assert result.exit_code == 2 and "--contrast" in result.output and "--look" in result.output
    preset = tmp_path / "film.toml"
    preset.write_text('look = "sigmoid"\ncontrast = 1.8\nsaturation = 1.3\nsharpen = 0.6\n')
    report = tmp_path / "r.json"
    result = develop(path, "-o", tmp_path / "b.jpg", "--preset", preset, "--json", report)
    assert result.exit_code == 0, result.output
    assert json.loads(report.read_text())[0]["exposure"] == 0.5  # the look's +0.5 EV
    preset.write_text('look = "filmic-ish"\n')
    result = develop(path, "-o", tmp_path / "c.jpg", "--preset", preset)
    assert result.exit_code == 2 and "look = 'filmic-ish'" in result.output


def test_capture_sharpening_adds_detail_without_colour_fringes():
    from microisp_cli.adjust import sharpen
    from microisp_cli.develop import develop as develop_array

    image = develop_array(shared_file("data", "raw", "canon550d_colorchart.dng"), half_size=True, bits=16)
    sharp = sharpen(image, 1.0)
    detail = lambda a: np.abs(np.diff(a.astype(float).mean(axis=-1), axis=1)).mean()  # noqa: E731
    assert detail(sharp) > 1.2 * detail(image)
    change = sharp.astype(float) - image
    unclipped = (sharp > 0).all(axis=-1) & (sharp < 65535).all(axis=-1)
    assert np.abs(np.ptp(change[unclipped], axis=-1)).max() <= 1.0  # the same change in every channel
    assert sharpen(image, 0.0) is image


# --- point 2: lens correction through lensfun -----------------------------------------------------
def _lens_dng(path, lens, focal="24/1", aperture="4/1", h=200, w=300):
    """A flat grey DNG from a Canon EOS 5D Mark II whose EXIF names ``lens`` (pyexiv2)."""
    import pyexiv2

    level = np.full((h, w), 1500.0)
    level[0::2, 0::2] *= NEUTRAL[0]
    level[1::2, 1::2] *= NEUTRAL[2]
    small_dng(path, mosaic=np.rint(level + 64).astype(np.uint16), cfa="RGGB", make="Canon",
              camera="Canon EOS 5D Mark II")
    with pyexiv2.Image(str(path)) as image:
        image.modify_exif({"Exif.Photo.LensModel": lens, "Exif.Photo.FocalLength": focal,
                           "Exif.Photo.FNumber": aperture})
    return path


def test_lens_correction_with_a_lens_in_the_database(tmp_path):
    pytest.importorskip("lensfunpy")
    from microisp_cli.colour import srgb_decode

    path = _lens_dng(tmp_path / "ef24-105.dng", "Canon EF 24-105mm f/4L IS USM")
    plain, fixed = tmp_path / "plain.png", tmp_path / "fixed.png"
    assert develop(path, "-o", plain, "--bits", "16").exit_code == 0
    result = develop(path, "-o", fixed, "--bits", "16", "--lens-correction")
    assert result.exit_code == 0 and "warning" not in result.output, result.output
    before, after = (srgb_decode(np.asarray(Image.open(p)).astype(float) / 65535) for p in (plain, fixed))
    assert before.shape == after.shape == (200, 300, 3)
    centre = (slice(90, 110), slice(140, 160))
    corner = (slice(14, 24), slice(20, 30))
    # the flat field keeps its level at the centre; the corners are lifted (vignetting at f/4)
    np.testing.assert_allclose(after[centre].mean(), before[centre].mean(), rtol=0.03)
    assert after[corner].mean() > 1.3 * before[corner].mean()
    assert np.ptp(after[centre], axis=-1).mean() < 0.01  # still grey


def test_lens_correction_remaps_as_lensfun_says():
    pytest.importorskip("lensfunpy")
    from microisp_cli.lens import remap

    image = np.random.default_rng(0).random((40, 60, 3), dtype=np.float32)
    ys, xs = np.mgrid[0:40, 0:60].astype(np.float32)
    identity = np.stack([np.stack([xs, ys], axis=-1)] * 3, axis=2)
    np.testing.assert_allclose(remap(image, identity), image, atol=1e-6)
    shifted = identity.copy()
    shifted[..., 0] += 1.0  # read one pixel to the right
    np.testing.assert_allclose(remap(image, shifted)[:, :-1], image[:, 1:], atol=1e-6)


@pytest.mark.parametrize(("lens", "reason"), [
    ("Acme Zoomatic 9-900mm f/1.0", "the lens Acme Zoomatic 9-900mm f/1.0 is not in the lensfun database"),
    ("", "the file names no lens"),
])
def test_lens_correction_of_an_unknown_lens_warns_and_leaves_the_photo(tmp_path, lens, reason):
    pytest.importorskip("lensfunpy")
    path = _lens_dng(tmp_path / "x.dng", lens)
    plain, asked = tmp_path / "plain.png", tmp_path / "asked.png"
    assert develop(path, "-o", plain).exit_code == 0
    result = develop(path, "-o", asked, "--lens-correction")
    assert result.exit_code == 0
    lines = [ln for ln in result.output.splitlines() if "lens correction skipped" in ln]
    assert len(lines) == 1 and reason in lines[0], result.output
    difference = np.abs(np.asarray(Image.open(plain)).astype(int) - np.asarray(Image.open(asked)))
    assert difference.max() <= 1  # as developed (16-bit, then 8: at most one level of rounding)


def test_lens_correction_on_the_canon_dng_says_it_names_no_lens(tmp_path):
    pytest.importorskip("lensfunpy")
    path = shared_file("data", "raw", "canon550d_colorchart.dng")
    result = develop(path, "-o", tmp_path / "c.jpg", "--half-size", "--lens-correction")
    assert result.exit_code == 0 and "lens correction skipped: the file names no lens" in result.output


def test_a_16_bit_tiff_does_not_inherit_the_raw_files_array_description(tmp_path, caplog):
    """tifffile writes ``{"shape": [H, W]}`` as the ImageDescription of a DNG it makes; copied into
    the developed RGB TIFF it made tifffile warn "shaped series shape does not match page shape"."""
    import tifffile

    tags = [(33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
            (50706, "B", 4, (1, 4, 0, 0), True), (50717, "I", 1, 4095, True), (271, "s", 0, "Test", True)]
    tifffile.imwrite(tmp_path / "shaped.dng", random_mosaic(60, 84, 0), photometric=32803,
                     extratags=tags, subfiletype=0)
    assert json.loads(tifffile.TiffFile(tmp_path / "shaped.dng").pages[0].description) == {"shape": [60, 84]}
    result = develop(tmp_path / "shaped.dng", "-o", tmp_path / "out.tif")
    assert result.exit_code == 0, result.output
    with caplog.at_level("ERROR", logger="tifffile"), tifffile.TiffFile(tmp_path / "out.tif") as tif:
        assert tif.series[0].shape == (60, 84, 3) and not tif.pages[0].description
    assert "shaped series" not in caplog.text
