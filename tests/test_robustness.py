"""Hostile inputs: the megapixel limit, metadata fallbacks, representative mutated files, and output
names that cannot leave the output folder. The fuzz campaign itself is benchmarks/fuzz_raw.py."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from helpers import small_dng
from microisp_cli import defaults
from microisp_cli.bayer import mosaic_rggb
from microisp_cli.errors import ImageTooLargeError, InputError, MicroISPError, MicroISPWarning
from microisp_cli.colour import matrix_problem
from microisp_cli.raw import DumpFormat, decode
from microisp_cli.synthetic import gradient_scene
from microisp_cli.training.dng import write_dng
from malformed import patch_tag

XYZ_TO_CAM = np.array([[0.65, -0.12, -0.09], [-0.38, 1.16, 0.25], [-0.08, 0.19, 0.65]])

def _dng(path: Path, h: int = 64, w: int = 80, cfa: str = "RGGB", **kwargs) -> Path:
    mosaic = np.round(mosaic_rggb(gradient_scene(h, w), cfa) * 4000 + 64).astype(np.uint16)
    return small_dng(path, mosaic=mosaic, cfa=cfa, **{"color_matrix": XYZ_TO_CAM, **kwargs})


def _decode_warned(path: Path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mosaic = decode(path, **kwargs)
    return mosaic, [str(w.message) for w in caught if issubclass(w.category, MicroISPWarning)]


# --- the megapixel limit --------------------------------------------------------------------------
def test_declared_frame_over_the_limit_fails_before_allocating(tmp_path):
    """A 64x80 file that declares 20000x12500 (250 MP, 500 MB of samples): refused from its header
    in a child whose address space could not hold those samples."""
    path = patch_tag(patch_tag(_dng(tmp_path / "big.dng"), 256, [20000]), 257, [12500])
    code = (
        "import resource, sys\n"
        "from microisp_cli.raw import decode\n"
        "from microisp_cli.errors import ImageTooLargeError\n"
        "import rawpy\n"
        "vm = int(open('/proc/self/status').read().split('VmSize:')[1].split()[0]) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (vm + 300 * 2**20, vm + 300 * 2**20))\n"
        "try:\n"
        f"    decode({str(path)!r})\n"
        "except ImageTooLargeError as exc:\n"
        "    print('refused:', exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "refused: the declared frame of 20000x12500 (250.0 MP) is over the 200 MP limit" in result.stdout


def test_limit_is_configurable_and_applies_to_every_input_kind(tmp_path):
    path = _dng(tmp_path / "small.dng")  # 80x64 = 0.005 MP
    assert decode(path, max_megapixels=0.006).size == (80, 64)
    with pytest.raises(ImageTooLargeError, match=r"80x64 \(0.0 MP\) is over the 0.004 MP limit"):
        decode(path, max_megapixels=0.004)
    np.save(tmp_path / "m.npy", np.random.default_rng(0).integers(0, 4095, (32, 40, 4)).astype(np.uint16))
    with pytest.raises(ImageTooLargeError, match="a .npy mosaic of 80x64"):
        decode(tmp_path / "m.npy", max_megapixels=0.004)
    (tmp_path / "d.raw").write_bytes(b"\0" * (2 * 80 * 64))
    with pytest.raises(ImageTooLargeError, match="a dump of 80x64"):
        decode(tmp_path / "d.raw", DumpFormat(size=(80, 64)), max_megapixels=0.004)
    assert defaults.MAX_MEGAPIXELS == 200


# --- metadata fallbacks ---------------------------------------------------------------------------
@pytest.mark.parametrize("matrix", [np.ones((3, 3)), np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1.0]])],
                         ids=["rank-1", "rows-sum-to-zero"])
def test_singular_colour_matrix_falls_back_with_a_warning(tmp_path, matrix):
    mosaic, messages = _decode_warned(_dng(tmp_path / "m.dng", color_matrix=matrix))
    assert mosaic.matrix_source.startswith("identity")
    np.testing.assert_array_equal(mosaic.cam_to_srgb, np.eye(3))
    assert len(messages) == 1 and "colour matrix is unusable" in messages[0]
    assert "using the identity matrix instead" in messages[0] and "\n" not in messages[0]


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_colour_matrix_falls_back(tmp_path, value):
    """LibRaw itself drops a ColorMatrix1 with a NaN or inf (it reports no matrix): identity."""
    path = _dng(tmp_path / "m.dng")
    patch_tag(path, 50721, [value] + XYZ_TO_CAM.reshape(-1)[1:].tolist(), new_type=12)  # SRATIONAL -> DOUBLE
    mosaic, _ = _decode_warned(path)
    assert np.all(np.isfinite(mosaic.cam_to_srgb)) and mosaic.matrix_source.startswith("identity")


@pytest.mark.parametrize("matrix, why", [
    (np.full((3, 3), np.nan), "non-finite"), (np.where(np.eye(3) > 0, np.inf, 0.0), "non-finite"),
    (np.array([[1, 0, 0], [0, 1, 0], [0.5, 0.5, 0]]), "singular"),
    (np.array([[40.0, -39, 0], [0, 1, 0], [0, 0, 1]]), "a coefficient of 40"),
    (np.array([[1.0, 0, 0], [0, 1 - 1e-5, 1e-5], [0, 1, 1e-6]]) @ np.diag([1, 1, 1]), "nearly singular"),
    (np.zeros((3, 3)), "a row sums to zero"),
])
def test_matrix_problems_are_named(matrix, why):
    assert why in matrix_problem(matrix)


def test_good_metadata_gives_no_warning(tmp_path):
    mosaic, messages = _decode_warned(_dng(tmp_path / "ok.dng"))
    assert messages == [] and mosaic.wb_source == "as shot" and mosaic.matrix_source.startswith("file")
    assert matrix_problem(mosaic.cam_to_srgb) is None


def _white_balanced(path: Path, wanted="camera"):
    """``path`` decoded (no white-balance line: the reader only keeps why) and white-balanced as
    the develop does (:func:`white_balance.apply`), with the lines that said it."""
    from microisp_cli import white_balance

    mosaic, decoded = _decode_warned(path)
    assert not any("white balance" in m for m in decoded)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mosaic = white_balance.apply(mosaic, wanted)
    return mosaic, [str(w.message) for w in caught if issubclass(w.category, MicroISPWarning)]


@pytest.mark.parametrize("neutral, why", [([0.04, 1.0, 0.5], "outside 0.125..16"),
                                          ([0.5, 1.0, 9.0], "outside 0.125..16")])
def test_extreme_white_balance_falls_back_with_a_warning(tmp_path, neutral, why):
    mosaic, messages = _white_balanced(_dng(tmp_path / "wb.dng", as_shot_neutral=neutral))
    assert mosaic.wb_source != "as shot"
    low, high = defaults.WB_GAIN_LIMITS
    assert np.all(mosaic.wb >= low) and np.all(mosaic.wb <= high) and np.all(np.isfinite(mosaic.wb))
    assert len(messages) == 1 and "as-shot white balance is unusable" in messages[0] and why in messages[0]
    # asked for another white balance, the file's unusable gains are not mentioned
    assert _white_balanced(tmp_path / "wb.dng", "auto")[1] == []


def test_nan_white_balance_falls_back_with_a_warning(tmp_path):
    path = patch_tag(_dng(tmp_path / "wb.dng"), 50728, [float("nan"), 1.0, 0.7], new_type=12)
    mosaic, messages = _white_balanced(path)
    assert mosaic.wb_source != "as shot" and np.all(np.isfinite(mosaic.wb))
    assert any("white balance is unusable" in m for m in messages)


def test_grey_world_gains_are_clipped(tmp_path):
    """No metadata and a nearly blue-free scene: grey world would ask for a huge blue gain."""
    rgb = np.zeros((64, 80, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.6, 0.5, 0.001
    mosaic = np.round(mosaic_rggb(rgb, "RGGB") * 4000 + 64).astype(np.uint16)
    mosaic[0, 0] = 4095  # not a constant frame
    path = write_dng(tmp_path / "blue.dng", mosaic, "RGGB", black_level=64, white_level=4095)
    m, _ = _decode_warned(path)
    assert m.wb_source == "grey world" and m.wb[2] == pytest.approx(defaults.WB_GAIN_LIMITS[1])


# --- representative mutated files -----------------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    from microisp_cli.develop import make_runner
    from microisp_cli.weights import load_weights

    weights = load_weights()
    return weights, make_runner(weights, threads=1)


def _truncate(path: Path, keep: float) -> Path:
    blob = path.read_bytes()
    path.write_bytes(blob[:int(len(blob) * keep)])
    return path


MUTATIONS = {
    "truncated in the header": lambda p: _truncate(p, 0.01),
    "truncated in the pixels": lambda p: _truncate(p, 0.6),
    "huge width": lambda p: patch_tag(p, 256, [2 ** 32 - 1]),
    "huge width and height": lambda p: patch_tag(patch_tag(p, 256, [60000]), 257, [60000]),
    "huge height, within the limit": lambda p: patch_tag(p, 257, [9000]),
    "zero white level": lambda p: patch_tag(p, 50717, [0]),
    "white level below black": lambda p: patch_tag(p, 50717, [10]),
    "NaN black level": lambda p: patch_tag(p, 50714, [float("nan")] * 4, new_type=12),
    "zero-denominator neutral": lambda p: patch_tag(p, 50728, [(1, 0), (1, 1), (0, 0)]),
    "CFA pattern dims 6x6": lambda p: patch_tag(p, 33421, [6, 6]),
}


@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_mutated_file_gives_a_typed_error_or_a_clean_develop(tmp_path, engine, mutation):
    from microisp_cli.develop import develop_to_file

    weights, runner = engine
    path = MUTATIONS[mutation](_dng(tmp_path / "in.dng", 70, 90, "GBRG"))
    out = tmp_path / "out"
    out.mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MicroISPWarning)
        try:
            written = develop_to_file(path, out / "x.png", weights, runner=runner, tile_size=0)
        except MicroISPError as exc:
            assert str(exc) and "\n" not in str(exc)
            assert list(out.iterdir()) == []  # nothing left behind
        else:
            assert written.stat().st_size > 0 and [p.name for p in out.iterdir()] == ["x.png"]


def test_expected_outcomes_of_some_mutations(tmp_path):
    with pytest.raises(ImageTooLargeError, match="declared frame of 60000x60000"):
        decode(MUTATIONS["huge width and height"](_dng(tmp_path / "a.dng", 70, 90)))
    with pytest.raises(InputError, match="black level 64 is not below the white level 10"):
        decode(MUTATIONS["white level below black"](_dng(tmp_path / "b.dng")))
    with pytest.raises(InputError, match="truncated"):
        decode(MUTATIONS["truncated in the pixels"](_dng(tmp_path / "c.dng")))


# --- output names ---------------------------------------------------------------------------------
ODD_NAMES = ["a\nb.dng", "wé ird:name?.dng", "-rf.dng", "....dng", "\u202egnp.exe.dng", "$(reboot).dng",
             "é" * 120 + ".dng", "_MG_1234.dng", "ünïcode.dng", " .dng"]


def _plan(inputs, out, extension=".png"):
    from microisp_cli.batch import collect, plan_outputs

    jobs = collect(tuple(inputs))
    plan_outputs(jobs, tuple(inputs), out, extension, folder=True)
    return {str(j.source): j.output for j in jobs if j.error is None}


def _assert_contained(outputs, out):
    root = out.resolve()
    names = [str(o).casefold() for o in outputs.values()]
    assert len(set(names)) == len(names), "two inputs share an output"
    for target in outputs.values():
        assert root in target.resolve().parents, target
        for part in target.relative_to(out).parts:
            assert part and not part.startswith((".", "-")) and "\n" not in part and "/" not in part
            assert len(part.encode()) <= 255


def test_odd_input_names_stay_inside_the_output_folder(tmp_path):
    src = tmp_path / "in"
    (src / "sub dir?").mkdir(parents=True)
    for name in ODD_NAMES:
        (src / name).write_bytes(b"II*\0")
    (src / "sub dir?" / "x..dng").write_bytes(b"II*\0")
    out = tmp_path / "out"
    outputs = _plan([src], out)
    _assert_contained(outputs, out)
    names = {Path(k).name: v.relative_to(out).as_posix() for k, v in outputs.items()}
    assert names["a\nb.dng"] == "a_b.png" and names["-rf.dng"] == "rf.png"
    assert names[" .dng"] == "image.png" and names["_MG_1234.dng"] == "_MG_1234.png"
    assert _plan([src / "....dng"], out)[str(src / "....dng")] == out / "image.png"  # hidden: given directly
    assert names["ünïcode.dng"] == "ünïcode.png" and names["$(reboot).dng"] == "_(reboot).png"
    assert names["x..dng"] == "sub dir_/x.png"
    assert names["é" * 120 + ".dng"] == "é" * 80 + ".png"  # 160 bytes, cut between characters


def test_inputs_mapping_to_one_name_get_distinct_outputs(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ["a?.dng", "a*.dng", "X.dng", "x.DNG", "x.nef", "?.dng", "*.dng"]:
        (src / name).write_bytes(b"II*\0")
    out = tmp_path / "out"
    outputs = _plan([src], out)
    _assert_contained(outputs, out)
    assert len(outputs) == 7
    direct = _plan([src / "X.dng", src / "X.dng", tmp_path / "in" / ".." / "in" / "X.dng"], out)
    _assert_contained(direct, out)


def test_parent_references_in_inputs_cannot_escape(tmp_path):
    """``in/../../elsewhere/x.dng`` is lexically under ``in``: it must not be written to
    ``out/../../elsewhere``."""
    src, elsewhere = tmp_path / "a" / "in", tmp_path / "elsewhere"
    src.mkdir(parents=True)
    elsewhere.mkdir()
    (src / "y.dng").write_bytes(b"II*\0")
    (elsewhere / "x.dng").write_bytes(b"II*\0")
    sneaky = Path(str(src) + "/../../elsewhere/x.dng")
    out = tmp_path / "a" / "out"
    outputs = _plan([src, sneaky], out)
    _assert_contained(outputs, out)
    assert outputs[str(sneaky)] == out / "x.png"


def test_cli_batch_with_odd_names_and_a_metadata_warning(tmp_path):
    from click.testing import CliRunner

    from microisp_cli.cli.main import cli

    src = tmp_path / "in"
    src.mkdir()
    _dng(src / "~$HOME\n.dng")
    _dng(src / "-x.dng", color_matrix=np.ones((3, 3)))
    _dng(src / "-x.nef.dng")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["develop", str(src), "-o", str(out), "--tile-size", "0"])
    assert result.exit_code == 0, result.output
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["__HOME_.png", "x.nef.png", "x.png"], written
    warnings_shown = [ln for ln in result.output.splitlines() if ln.startswith("warning:")]
    assert len(warnings_shown) == 1 and "colour matrix is unusable" in warnings_shown[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
