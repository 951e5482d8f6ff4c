"""Issue 14: the contract (one line naming the file and the cause, a documented exit code, no
traceback, nothing lost or half-written, the batch goes on) for races, same-file outputs, odd
names, special files, hostile ``.npy`` headers, weights and ``.tflite`` files, signals, option
values and the ``-o`` rules. Every input is a real file made here."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from microisp_cli.options import DevelopOptions
import tifffile
from click.testing import CliRunner

from helpers import develop, output_lines, small_dng
from microisp_cli import defaults
from microisp_cli.batch import printable
from microisp_cli.cli.signals import Interrupted, signals_as_interrupt
from microisp_cli.errors import InputError, OutputExistsError, UnsupportedSensorError, WeightsError
from microisp_cli.publish import atomic_file, remove_stale_temporaries
from microisp_cli.raw import decode
from microisp_cli.synthetic import random_mosaic
from malformed import npz_bytes

SRC = Path(__file__).resolve().parents[1] / "src"


def _dng(path: Path, h: int = 60, w: int = 84, **kwargs) -> Path:
    """A small DNG with a colour matrix and an as-shot white balance (no fallback warnings)."""
    return small_dng(path, h, w, "GBRG", seed=len(str(path)), **{"color_matrix": np.eye(3), **kwargs})


def cli_main():
    from microisp_cli.cli.main import cli

    return cli


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) if the block takes longer than ``seconds``."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _sparse_npy(path: Path, shape: tuple[int, ...], dtype="<u2") -> Path:
    """A ``.npy`` whose header declares ``shape``; its data is a hole (no disk, no memory)."""
    from numpy.lib import format as npy

    with open(path, "wb") as f:
        npy.write_array_header_1_0(f, {"descr": npy.dtype_to_descr(np.dtype(dtype)),
                                       "fortran_order": False, "shape": shape})
        f.truncate(f.tell() + int(np.prod(shape)) * np.dtype(dtype).itemsize)
    return path


# --- 1, 2: no data lost ----------------------------------------------------------------------------
def test_a_file_that_appears_during_the_write_is_never_replaced(tmp_path):
    """Two writers of one name: the second to finish fails and leaves the first one's file."""
    target = tmp_path / "x.png"
    with pytest.raises(OutputExistsError, match="appeared while"):
        with atomic_file(target) as first:
            first.write(b"first")
            with atomic_file(target) as second:
                second.write(b"second")
    assert target.read_bytes() == b"second" and sorted(os.listdir(tmp_path)) == ["x.png"]


def test_output_appearing_while_a_develop_runs_is_skipped_not_replaced(tmp_path):
    from microisp_cli.batch_step import develop_file
    from microisp_cli.develop import cached_runner
    from microisp_cli.weights import load_weights

    source, target = _dng(tmp_path / "a.dng"), tmp_path / "a.png"
    weights = load_weights()

    def user_saves_a_file(done: int, total: int) -> None:  # while the network runs
        if not target.exists():
            target.write_bytes(b"the user's file")

    result = develop_file(source, target, weights, runner=cached_runner(weights),
                          options=DevelopOptions(tile_size=32), progress=user_saves_a_file)
    assert result.status == "skipped" and result.message.startswith(f"{target} appeared while it was being developed")
    assert target.read_bytes() == b"the user's file" and sorted(os.listdir(tmp_path)) == ["a.dng", "a.png"]


@pytest.mark.parametrize("how", ["same name", "symlink", "hard link"])
def test_output_that_is_the_input_is_refused(tmp_path, how):
    source = _dng(tmp_path / "same.tif")
    before = source.read_bytes()
    target = {"same name": source, "symlink": tmp_path / "link.tif", "hard link": tmp_path / "hard.tif"}[how]
    if how == "symlink":
        target.symlink_to(source)
    elif how == "hard link":
        os.link(source, target)
    result = develop(source, "-o", target, "--overwrite")
    assert result.exit_code == 1
    assert f"error: {source}: {target} is the input file itself" in result.output
    assert source.read_bytes() == before


# --- 3, 10: names ----------------------------------------------------------------------------------
def test_names_that_are_not_utf8_develop_and_print_escaped(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    name = os.fsdecode(b"Caf\xe9.dng")
    try:
        _dng(src / name)
    except (OSError, UnicodeError):
        pytest.skip("this file system refuses names that are not UTF-8")
    _dng(src / "b.dng")
    result = develop(src, "-o", tmp_path / "out", "--tile-size", "0")
    assert result.exit_code == 0, result.output
    assert f"{src}/Caf\\xe9.dng -> {tmp_path}/out/Caf_.png (wrote" in result.output
    assert sorted(os.listdir(tmp_path / "out")) == ["Caf_.png", "b.png"]


def test_control_characters_in_names_are_escaped_in_every_line(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    (src / "x\n12 done, 0 skipped, 0 failed\r.dng").write_bytes(b"II*\0 not a raw")
    (src / "\x1b[31mred\x1b[0m.dng").write_bytes(b"")
    _dng(src / "ok\u202e.dng")
    result = develop(src, "-o", tmp_path / "out", "--tile-size", "0")
    assert result.exit_code == 1
    lines = output_lines(result)
    assert lines[-1] == "1 done, 0 skipped, 2 failed" and len(lines) == 4, lines
    assert not any(ln.startswith("12 done") for ln in lines)
    assert "\x1b" not in result.output and "\r" not in result.output and "\u202e" not in result.output
    assert any("\\x1b[31mred\\x1b[0m.dng: empty file" in ln for ln in lines)
    assert any("x\\n12 done, 0 skipped, 0 failed\\r.dng: " in ln for ln in lines)


def test_printable():
    assert printable("plain é ü name.dng") == "plain é ü name.dng"
    assert printable("a\nb\r\x1b[0m\t\u202e") == "a\\nb\\r\\x1b[0m\\t\\u202e"
    assert printable(os.fsdecode(b"Caf\xe9")) == "Caf\\xe9"


# --- 4, 5, 7: .npy from the header ------------------------------------------------------------------
@pytest.mark.parametrize("shape, message", [
    ((0, 0), "empty array of shape (0, 0)"), ((4, 0), "empty array of shape (4, 0)"),
    ((2 ** 30,), "array of shape (1073741824,)"), ((100, 100, 100000), "array of shape (100, 100, 100000)"),
    ((30000, 30000), "30000x30000 (900.0 MP) is over the 200 MP limit"),
    ((10000, 10000, 4), "20000x20000 (400.0 MP) is over the 200 MP limit"),
])
def test_npy_refused_from_its_header_before_reading(tmp_path, shape, message):
    path = _sparse_npy(tmp_path / "x.npy", shape)
    started = time.perf_counter()
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        decode(path)
    assert time.perf_counter() - started < 2  # nothing of the declared gigabytes was read


def test_npy_header_longer_than_the_file_and_odd_types(tmp_path):
    good = tmp_path / "g.npy"
    np.save(good, np.arange(40 * 60, dtype=np.uint16).reshape(40, 60))
    cut = tmp_path / "cut.npy"
    cut.write_bytes(good.read_bytes()[:500])
    with pytest.raises(InputError, match=r"truncated: the header declares \(40, 60\) uint16"):
        decode(cut)
    np.save(tmp_path / "c.npy", np.ones((8, 8), np.complex64))
    with pytest.raises(InputError, match="unsupported array type complex64"):
        decode(tmp_path / "c.npy")
    fortran = tmp_path / "f.npy"
    np.save(fortran, np.asfortranarray(np.load(good)))
    assert np.array_equal(decode(fortran).data, decode(good).data)


def test_npy_batch_goes_on_after_empty_and_sparse_files(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    np.save(src / "a_empty.npy", np.zeros((0, 0), np.uint16))
    _sparse_npy(src / "b_huge.npy", (2 ** 30,))
    np.save(src / "c_good.npy", np.random.default_rng(0).integers(0, 4000, (40, 60)).astype(np.uint16))
    result = develop(src, "-o", tmp_path / "out", "--tile-size", "0")
    assert result.exit_code == 1 and output_lines(result)[-1] == "1 done, 0 skipped, 2 failed"
    assert os.listdir(tmp_path / "out") == ["c_good.png"]


def test_out_of_memory_while_reading_is_one_input_error(tmp_path):
    """Under an address-space limit, a .npy allowed by --max-megapixels that does not fit."""
    path = _sparse_npy(tmp_path / "big.npy", (20000, 20000))  # 800 MB of uint16, a hole on disk
    code = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (600 << 20, 600 << 20))\n"
            "from microisp_cli.raw import decode\n"
            "try:\n    decode(sys.argv[1], max_megapixels=1000)\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
    assert out.stdout.strip() == "InputError not enough memory to read the array", out.stdout + out.stderr


# --- 6, 14: special files ---------------------------------------------------------------------------
def test_fifo_and_devices_as_inputs_fail_at_once(tmp_path):
    fifo = tmp_path / "f.dng"
    os.mkfifo(fifo)
    good = _dng(tmp_path / "good.dng")
    with deadline(120):
        result = develop(fifo, "/dev/urandom", "/dev/null", good, "-o", tmp_path / "out", "--tile-size", "0")
    assert result.exit_code == 1
    lines = output_lines(result)
    assert f"error: {fifo}: is a FIFO (named pipe), not a regular file" in lines
    assert "error: /dev/urandom: is a character device, not a regular file" in lines
    assert "error: /dev/null: is a character device, not a regular file" in lines
    assert lines[-1] == "1 done, 0 skipped, 3 failed"
    assert os.listdir(tmp_path / "out") == ["good.png"]


def test_fifo_inside_a_folder_is_passed_over(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    os.mkfifo(src / "f.dng")
    _dng(src / "a.dng")
    with deadline(120):
        result = develop(src, "-o", tmp_path / "out", "--tile-size", "0")
    assert result.exit_code == 0 and output_lines(result)[-1] == "1 done, 0 skipped, 0 failed"


@pytest.mark.parametrize("special", ["fifo", "/dev/zero"])
@pytest.mark.parametrize("option,name,message", [
    ("--weights", "w.json", "{path}: the weights manifest is {kind}, not a regular file"),
    ("--preset", "look.toml", "not a regular file"),
])
def test_special_files_as_weights_or_presets_are_refused(tmp_path, special, option, name, message):
    path = special
    if special == "fifo":
        path = tmp_path / name
        os.mkfifo(path)
    with deadline(60):
        result = develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", option, path)
    assert result.exit_code == 2
    kind = "a FIFO (named pipe)" if special == "fifo" else "a character device"
    assert message.format(path=path, kind=kind) in result.output
    assert not (tmp_path / "a.png").exists()


# --- 8: weights -------------------------------------------------------------------------------------
def _manifest(tmp_path: Path, model=None, npz: bytes | None = None, text: str | None = None) -> Path:
    from microisp_cli.model import PUBLISHED, init_parameters
    from microisp_cli.weights import Conditioning, Weights, save_weights

    path = save_weights(Weights("w", PUBLISHED, init_parameters(PUBLISHED), Conditioning()), tmp_path / "w")
    manifest = json.loads(path.read_text())
    if model is not None:
        manifest["model"] = model
    if npz is not None:
        (tmp_path / "w.npz").write_bytes(npz)
        manifest["sha256"] = hashlib.sha256(npz).hexdigest()
    path.write_text(text if text is not None else json.dumps(manifest))
    return path


def _npy_bytes(shape, dtype="<f4", body: bytes = b"") -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + body


@pytest.mark.parametrize("case, message", [
    ("blocks 1e9", "ModelConfig.blocks must be an integer 0..16, got 1000000000.0"),
    ("stages 1e8", "ModelConfig.stages must be an integer 1..16, got 100000000"),
    ("many parameters", "parameters, more than 10000000"),
    ("nested", "nested too deeply"),
    ("large manifest", "too large"),
    ("inflates beyond its shape", "bytes of data for (3, 3, 4, 4) float32"),
    ("declares another shape", "s0.b0.conv0.kernel is float32 (40000, 40000), expected float (3, 3, 4, 4)"),
    ("not a zip", "File is not a zip file"),
])
def test_hostile_weights_are_one_line(tmp_path, case, message):
    if case == "blocks 1e9":
        path = _manifest(tmp_path, model={"blocks": 1e9})
    elif case == "stages 1e8":
        path = _manifest(tmp_path, model={"stages": 10 ** 8})
    elif case == "many parameters":
        path = _manifest(tmp_path, model={"stages": 16, "blocks": 16, "features": 256})
    elif case == "nested":
        path = _manifest(tmp_path, text='{"format": "microisp-weights/1", "x": ' + "[" * 100000 + "]" * 100000 + "}")
    elif case == "large manifest":
        path = _manifest(tmp_path, text=" " * (defaults.MAX_MANIFEST_BYTES + 1))
    elif case == "inflates beyond its shape":  # 64 MB of zeros behind a (3, 3, 4, 4) header
        path = _manifest(tmp_path, npz=npz_bytes({"s0.b0.conv0.kernel.npy": _npy_bytes((3, 3, 4, 4), body=bytes(64 << 20))}))
    elif case == "declares another shape":
        path = _manifest(tmp_path, npz=npz_bytes({"s0.b0.conv0.kernel.npy": _npy_bytes((40000, 40000))}))
    else:
        path = _manifest(tmp_path, npz=b"PK not a zip")
    from microisp_cli.weights import load_weights

    with deadline(60), pytest.raises(WeightsError) as caught:
        load_weights(path)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_hostile_weights_through_the_cli(tmp_path):
    path = _manifest(tmp_path, model={"blocks": 1e9})
    result = develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", "--weights", path)
    assert result.exit_code == 2 and "ModelConfig.blocks must be an integer 0..16" in result.output


# --- 9: .tflite -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    """A segmented FP32 export of a tiny network, and its weights."""
    pytest.importorskip("ai_edge_litert")
    from microisp_cli import export
    from microisp_cli.model import ModelConfig, init_parameters
    from microisp_cli.weights import Conditioning, Weights, save_weights

    config = ModelConfig(stages=1, blocks=1, base="mhc")
    weights = Weights("tiny", config, init_parameters(config, seed=1), Conditioning())
    folder = tmp_path_factory.mktemp("tflite")
    manifest = save_weights(weights, folder / "tiny")
    path = folder / "tiny.tflite"
    export.export_tflite(weights, path, precision="fp32")
    return path, manifest


def _hostile_tflite(good: Path, case: str, folder: Path) -> Path:
    from microisp_cli.tflite_format import read_metadata

    data = good.read_bytes()
    meta = json.dumps(read_metadata(good), sort_keys=True).encode()  # as export writes it
    meta_at = data.index(meta)
    meta_end = meta_at + len(meta)
    if case.startswith("truncated"):
        data = data[:len(data) * int(case.split()[1].rstrip("%")) // 100] if "%" in case else data[:64]
    elif case == "claims another network":
        data = data.replace(b'"stages": 1', b'"stages": 2', 1)
    elif case == "claims another base":  # same segments, but the last one's inputs differ
        data = data.replace(b'"base": "mhc"', b'"base":"none"', 1)
    elif case == "metadata without model":
        data = data[:meta_at] + data[meta_at:].replace(b'"model"', b'"mode_"', 1)
    elif case == "metadata not an object":
        data = data[:meta_at] + b"[" + b" " * (meta_end - meta_at - 2) + b"]" + data[meta_end:]
    elif case == "random body":
        data = data[:8] + np.random.default_rng(0).integers(0, 256, len(data) - 8, np.uint8).tobytes()
    path = folder / "bad.tflite"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", ["truncated 10%", "truncated 50%", "truncated 90%", "truncated 64 bytes",
                                  "claims another network", "claims another base", "metadata without model",
                                  "metadata not an object", "random body"])
def test_hostile_tflite_is_one_line_model_file_error(tflite, tmp_path, case):
    good, manifest = tflite
    bad = _hostile_tflite(good, case, tmp_path)
    code = ("import sys\nfrom microisp_cli.runtimes.litert import LiteRTRunner, ModelFileError\n"
            "try:\n    LiteRTRunner(sys.argv[1])\nexcept ModelFileError as exc:\n    print('ModelFileError', exc)\n")
    out = subprocess.run([sys.executable, "-c", code, str(bad)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)  # a crash ends only this
    assert out.returncode == 0 and out.stdout.startswith("ModelFileError"), (out.returncode, out.stdout, out.stderr)
    assert out.stdout.count("\n") == 1 and "Traceback" not in out.stderr
    if case.startswith("claims another"):
        assert "its signatures do not match the network its metadata describes" in out.stdout


def test_tflite_that_loads_but_cannot_run_fails_each_file_in_one_line(tflite, tmp_path):
    """A stride beyond what LiteRT's kernels accept (the fuzz campaign's bit flip did this)."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    good, manifest = tflite
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(good.read_bytes()))
    conv = [i for i, c in enumerate(model.operatorCodes)
            if max(c.builtinCode, c.deprecatedBuiltinCode) == schema.BuiltinOperator.CONV_2D]
    for graph in model.subgraphs:
        for op in graph.operators:
            if op.opcodeIndex in conv:
                op.builtinOptions.strideH = 1 << 15
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))
    result = develop(_dng(tmp_path / "a.dng"), _dng(tmp_path / "b.dng"), "-o", tmp_path / "out", "--tile-size", "64",
                 "--backend", "tflite", "--model", bad, "--weights", manifest)
    assert result.exit_code == 1 and output_lines(result)[-1] == "0 done, 0 skipped, 2 failed"
    assert f"{bad}: LiteRT cannot run it (" in output_lines(result)[0] and not (tmp_path / "out").exists()


def test_hostile_tflite_through_the_cli(tflite, tmp_path):
    good, manifest = tflite
    bad = _hostile_tflite(good, "truncated 50%", tmp_path)
    result = develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", "--backend", "tflite",
                 "--model", bad, "--weights", manifest)
    assert result.exit_code == 2 and "truncated or corrupt TFLite file" in result.output
    assert not (tmp_path / "a.png").exists()


# --- 11: signals and what a killed run left ---------------------------------------------------------
def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path):
    target = tmp_path / "x.png"
    with pytest.raises(Interrupted) as caught, signals_as_interrupt():
        with atomic_file(target) as handle:
            handle.write(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the handler raises before this ends
    assert caught.value.exit_code == 143 and os.listdir(tmp_path) == []


def test_sigterm_ends_a_cli_batch_with_143_and_nothing_left(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    _dng(src / "a.dng")
    _dng(src / "b.dng", h=1200, w=1600)  # long enough to be signalled while it develops
    process = subprocess.Popen([sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
                                "develop", str(src), "-o", str(out), "--tile-size", "64"], stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(SRC)}, start_new_session=True)
    started = time.monotonic()
    while not (out / "a.png").exists() and process.poll() is None and time.monotonic() - started < 300:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "terminated: the file being written was not left behind" in stderr and "Traceback" not in stderr
    assert os.listdir(out) == ["a.png"]


def test_the_next_run_removes_stale_temporaries_of_its_outputs(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / f".a.png.{dead.pid}-k3j2h1gf.part", out / ".a.png.zq8w7e6r.part"]  # killed; older version
    alive = out / f".a.png.{os.getppid()}-abcdefgh.part"  # a run still writing
    other = out / f".z.png.{dead.pid}-abcdefgh.part"  # an output this run does not write
    for path in [*stale, alive, other]:
        path.write_bytes(b"partial")
    result = develop(_dng(tmp_path / "a.dng"), "-o", out / "a.png", "--tile-size", "0")
    assert result.exit_code == 0
    assert sorted(os.listdir(out)) == sorted(["a.png", alive.name, other.name])
    assert remove_stale_temporaries([out / "z.png"]) == 1


# --- 12, 14: what is not a Bayer RAW, and messages that say what is wrong ---------------------------
def _tiff_dng(path: Path, data: np.ndarray, tags: list, make: bool = True) -> Path:
    extra = [(50706, "B", 4, (1, 4, 0, 0), True), (33421, "H", 2, (2, 2), True)] + tags
    tifffile.imwrite(path, data, photometric=32803, compression=None, metadata=None,
                     extratags=extra + ([(271, "s", 0, "x", True)] if make else []))
    return path


def test_plain_and_odd_tiffs_named_dng_say_what_is_wrong(tmp_path):
    mosaic = random_mosaic(64, 80)
    tifffile.imwrite(tmp_path / "gray.dng", mosaic, photometric="minisblack", metadata=None)
    _tiff_dng(tmp_path / "nan.dng", np.full((64, 80), np.nan, np.float32),
              [(33422, "B", 4, (0, 1, 1, 2), True), (50717, "I", 1, 1, True)])
    _tiff_dng(tmp_path / "rgbe.dng", mosaic, [(33422, "B", 4, (0, 1, 3, 2), True),
                                              (50710, "B", 4, (0, 1, 2, 3), True), (50717, "I", 1, 4095, True)])
    _tiff_dng(tmp_path / "neg.dng", mosaic, [(33422, "B", 4, (0, 1, 1, 2), True), (50714, "2i", 1, (-64, 1), True),
                                             (50717, "I", 1, 4095, True)])
    names = ["gray", "nan", "rgbe", "neg"]
    result = develop(*[tmp_path / f"{n}.dng" for n in names], "-o", tmp_path / "out")
    lines = dict(ln.split(": ", 1)[1].split(": ", 1) for ln in output_lines(result)[:-1])
    assert lines[f"{tmp_path}/gray.dng"] == "a plain TIFF image (no CFA, DNG or camera metadata), not a camera RAW"
    assert "floating-point pixel data without finite values" in lines[f"{tmp_path}/nan.dng"]
    assert "colour filter array of RGCB (its CFAPattern)" in lines[f"{tmp_path}/rgbe.dng"]
    assert "a negative or corrupt BlackLevel tag" in lines[f"{tmp_path}/neg.dng"]
    assert result.exit_code == 1 and not (tmp_path / "out").exists()
    with pytest.raises(UnsupportedSensorError):
        decode(tmp_path / "rgbe.dng")


# --- 13: option values ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--max-megapixels", "nan"], "nan is not a finite number"),
    (["--max-megapixels", "inf"], "inf is not a finite number"),
    (["--black-level", "nan"], "nan is not a finite number"),
    (["--tile-size", "20"], "tile size must be 0 (whole frame) or an even number >= 32"),
    (["--tile-size", "33"], "an even number >= 32 output pixels, got 33"),
    (["--scheduler", "not a url"], "'not a url' is not a scheduler address tcp://HOST:PORT"),
])
def test_option_values_are_usage_errors(tmp_path, args, message):
    result = develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "a.png").exists()


def test_a_refused_scheduler_fails_at_once(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    result = develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", "--scheduler", f"tcp://127.0.0.1:{port}")
    assert time.perf_counter() - started < 10
    assert result.exit_code == 2 and "connection refused" in result.output


def test_smallest_tile_size_develops(tmp_path):
    assert develop(_dng(tmp_path / "a.dng"), "-o", tmp_path / "a.png", "--tile-size", "32").exit_code == 0


# --- 15: -o - and names without an extension --------------------------------------------------------
def test_standard_output(tmp_path):
    source = _dng(tmp_path / "a.dng")
    result = CliRunner().invoke(cli_main(), ["develop", str(source), "-o", "-", "--format", "png",
                                             "--tile-size", "0"])
    assert result.exit_code == 0, result.output
    assert develop(source, "-o", tmp_path / "a.png", "--tile-size", "0").exit_code == 0
    assert result.stdout_bytes == (tmp_path / "a.png").read_bytes()
    assert "a.dng -> standard output (wrote" in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["a.dng", "a.png"] and not (Path.cwd() / "-").exists()


@pytest.mark.parametrize("inputs, args, message", [
    (1, ["-o", "-"], "give its format with --format"),
    (2, ["-o", "-", "--format", "png"], "takes exactly one input file"),
    (1, ["-o", "noext"], "-o noext has no extension and is not a folder"),
    (1, ["-o", ""], "-o is empty"),
])
def test_output_rules(tmp_path, inputs, args, message):
    sources = [_dng(tmp_path / f"{name}.dng") for name in "ab"[:inputs]]
    before = sorted(os.listdir(tmp_path))
    with contextlib.chdir(tmp_path):
        result = develop(*sources, *args)
    assert result.exit_code == 2 and message in result.output, result.output
    assert sorted(os.listdir(tmp_path)) == before  # no folder named - or noext


def test_extensionless_outputs_that_are_folders(tmp_path):
    source = _dng(tmp_path / "a.dng")
    with contextlib.chdir(tmp_path):
        assert develop(source, "-o", "one/", "--tile-size", "0").exit_code == 0
        assert develop(source, _dng(tmp_path / "b.dng"), "-o", "two", "--tile-size", "0").exit_code == 0
    assert os.listdir(tmp_path / "one") == ["a.png"] and sorted(os.listdir(tmp_path / "two")) == ["a.png", "b.png"]
