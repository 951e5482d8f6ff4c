"""Hostile environments (issue 28): the report path, full disks, claims and append-only folders,
signals, memory limits, native crashes in the metadata library, and smaller breaks.

Real files, real rawpy / pyexiv2 / OpenVINO; hostile conditions are made for real where the
machine allows (a small tmpfs, ``chattr +a``, ``RLIMIT_AS``, an ``LD_PRELOAD`` shim compiled
here) and the test is skipped, with the reason, where it does not.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers import develop, small_dng

ROOT = Path(__file__).resolve().parents[1]


def _env(**extra) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
           **extra}
    return env


def run_microisp(*args, env: dict | None = None, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    """``microisp ARGS`` in a new process (for limits, signals and preloaded shims)."""
    return subprocess.run([sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
                           *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=env or _env(), **kwargs)


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text, text


# --- 1. the --json report follows the output contract --------------------------------------------
def test_json_refuses_an_input_an_existing_file_and_an_output(tmp_path):
    a = small_dng(tmp_path / "a.dng")
    before = a.read_bytes()
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", a)
    assert result.exit_code == 2 and "is an input of this batch" in result.output
    assert a.read_bytes() == before and not (tmp_path / "out").exists()  # refused before the batch

    report = tmp_path / "report.json"
    report.write_text("keep me")
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", report)
    assert result.exit_code == 2 and "exists (use --overwrite" in result.output
    assert report.read_text() == "keep me"
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", tmp_path / "out" / "a.png")
    assert result.exit_code == 2 and "is the output of" in result.output

    result = develop(a, "-o", f"{tmp_path}/out/", "--json", report, "--overwrite")
    assert result.exit_code == 0 and json.loads(report.read_text())[0]["status"] == "done"


def test_json_into_a_fifo_is_written_into_it_not_replaced(tmp_path):
    a = small_dng(tmp_path / "a.dng")
    fifo = tmp_path / "report"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", fifo, "-q")
    reader.join(30)
    assert result.exit_code == 0
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the FIFO
    assert json.loads(got[0])[0]["status"] == "done"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a character device needs root")
def test_json_into_a_character_device_is_written_into_it(tmp_path):
    a = small_dng(tmp_path / "a.dng")
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # a /dev/null of our own
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", null, "-q")
    assert result.exit_code == 0 and stat.S_ISCHR(os.lstat(null).st_mode)


def test_json_in_an_unwritable_place_is_refused_before_the_batch(tmp_path):
    a = small_dng(tmp_path / "a.dng")
    (tmp_path / "file").write_text("")
    result = develop(a, "-o", f"{tmp_path}/out/", "--json", tmp_path / "file" / "r.json")
    assert result.exit_code == 2 and "is a file, not a folder" in result.output
    assert not (tmp_path / "out").exists()  # nothing developed for a report that cannot be written


# --- 2. a full disk never publishes a truncated photo ---------------------------------------------
def _dng_with_xmp(path: Path, kilobytes: int = 20) -> Path:
    """A small DNG carrying about ``kilobytes`` KB of XMP (a long description), like a
    catalogued camera file."""
    import pyexiv2

    small_dng(path, camera="Test Camera X1")
    with pyexiv2.Image(str(path)) as image:
        image.modify_xmp({"Xmp.dc.description": {'lang="x-default"': "x" * (kilobytes * 1024)}})
    return path


def _limited_file_size(limit: int):
    import resource

    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


@pytest.mark.parametrize("extension", ["png", pytest.param("tif", marks=pytest.mark.slow),
                                       pytest.param("jpg", marks=pytest.mark.slow)])  # PNG in the quick subset
def test_a_disk_full_before_the_metadata_is_a_failed_file_not_a_truncated_one(tmp_path, extension):
    dng = _dng_with_xmp(tmp_path / "a.dng")
    sizes = {}
    for flag in ("--strip-metadata", "--quiet"):  # the photo without and with its metadata
        out = tmp_path / flag.strip("-") / f"a.{extension}"
        assert run_microisp("develop", dng, "-o", out, flag).returncode == 0
        sizes[flag] = out.stat().st_size
    assert sizes["--quiet"] > sizes["--strip-metadata"] + 10_000
    # room for the pixels, not for the pixels and the metadata (RLIMIT_FSIZE: a full disk for us)
    room = (sizes["--quiet"] + sizes["--strip-metadata"]) // 2
    out = tmp_path / "full" / f"a.{extension}"
    result = run_microisp("develop", dng, "-o", out, preexec_fn=_limited_file_size(room))
    _no_traceback(result.stderr)
    assert result.returncode == 1, result.stderr
    assert f"error: {dng}: {out}: cannot write (File too large)" in result.stderr
    assert os.listdir(out.parent) == []  # no photo, no temporary file


# --- 3, 4, 10. claims, append-only folders, refused permissions ----------------------------------
@pytest.fixture(scope="module")
def shim(tmp_path_factory) -> Path:
    """tests/hostile_shim.c built for LD_PRELOAD (skipped without a C compiler)."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None or not sys.platform.startswith("linux"):
        pytest.skip("the LD_PRELOAD shim needs Linux and a C compiler (gcc)")
    library = tmp_path_factory.mktemp("shim") / "hostile_shim.so"
    subprocess.run([compiler, "-shared", "-fPIC", "-O1", "-o", library, ROOT / "tests" / "hostile_shim.c",
                    "-ldl"], check=True, capture_output=True)
    return library


def shimmed(shim: Path, **switches) -> dict:
    return _env(LD_PRELOAD=str(shim), **switches)


def test_a_failed_publish_without_hard_links_leaves_no_claim(tmp_path, shim):
    dng = small_dng(tmp_path / "a.dng")
    out = tmp_path / "fat"
    # a file system without unnamed files or hard links (vfat, exFAT) whose final rename fails
    env = shimmed(shim, HOSTILE_NO_TMPFILE="1", HOSTILE_NO_LINKS="1", HOSTILE_FAIL_RENAME="/fat/")
    result = run_microisp("develop", dng, "-o", f"{out}/", env=env)
    _no_traceback(result.stderr)
    assert result.returncode == 1 and f"{out / 'a.png'}: cannot write (Input/output error)" in result.stderr
    assert os.listdir(out) == []  # neither the 0-byte claim nor a temporary file
    result = run_microisp("develop", dng, "-o", f"{out}/")  # so the next run develops it
    assert result.returncode == 0 and (out / "a.png").stat().st_size > 1000


def test_a_claim_a_failed_run_left_is_stale_an_empty_file_of_the_user_is_not(tmp_path):
    from microisp_cli.publish import CLAIM_MTIME

    dng = small_dng(tmp_path / "a.dng")
    claims, users = tmp_path / "claims", tmp_path / "users"
    for folder in (claims, users):
        folder.mkdir()
        (folder / "a.png").touch()
    os.utime(claims / "a.png", (CLAIM_MTIME, CLAIM_MTIME))  # what an interrupted claim left
    assert develop(dng, "-o", f"{claims}/").exit_code == 0
    assert (claims / "a.png").stat().st_size > 1000
    result = develop(dng, "-o", f"{users}/")
    assert result.exit_code == 0 and "skipped" in result.output
    assert (users / "a.png").stat().st_size == 0


@contextlib.contextmanager
def append_only(folder: Path):
    if os.geteuid() != 0 or shutil.which("chattr") is None:
        pytest.skip("chattr +a needs root and chattr")
    if subprocess.run(["chattr", "+a", folder], capture_output=True).returncode != 0:
        pytest.skip(f"this file system does not take chattr +a ({folder})")
    try:
        yield folder
    finally:
        subprocess.run(["chattr", "-a", folder], check=True)


def test_an_append_only_folder_gets_new_photos_and_no_temporary_files(tmp_path):
    a, b = small_dng(tmp_path / "a.dng"), small_dng(tmp_path / "b.dng", seed=1)
    out = tmp_path / "out"
    out.mkdir()
    with append_only(out):
        result = develop(a, b, "-o", out)
        assert result.exit_code == 0, result.output
        assert sorted(os.listdir(out)) == ["a.png", "b.png"]
        before = (out / "a.png").read_bytes()
        result = develop(a, b, "-o", out, "--overwrite")
        assert result.exit_code == 1
        assert f"error: {a}: {out / 'a.png'}: cannot replace it: {out} is append-only" in result.output
        assert sorted(os.listdir(out)) == ["a.png", "b.png"] and (out / "a.png").read_bytes() == before


@pytest.mark.parametrize("unnamed", [True, False])
def test_a_refused_chmod_is_a_warning_and_the_photo_is_written(tmp_path, shim, unnamed):
    dng = small_dng(tmp_path / "a.dng")
    out = tmp_path / "out" / "a.png"
    env = shimmed(shim, HOSTILE_NO_CHMOD="1", HOSTILE_NO_TMPFILE="" if unnamed else "1")
    result = run_microisp("develop", dng, "-o", out, env=env)
    assert result.returncode == 0, result.stderr
    assert f"warning: {dng}: {out}: the file system refused its permissions" in result.stderr
    assert out.stat().st_size > 1000 and os.listdir(out.parent) == ["a.png"]


# --- 5, 6. Ctrl-C while the PNG encoder syncs; SIGHUP ---------------------------------------------
def _start(args, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
                             *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the slow fsync was never reached"
        time.sleep(0.05)


@pytest.mark.parametrize("signum, code, said", [  # one signal in the quick subset, all three in the whole suite
    (signal.SIGTERM, 143, "terminated"),
    pytest.param(signal.SIGINT, 130, "interrupted", marks=pytest.mark.slow),
    pytest.param(signal.SIGHUP, 129, "hung up (SIGHUP)", marks=pytest.mark.slow),
])
def test_a_signal_while_the_png_encoder_syncs_leaves_nothing(tmp_path, shim, signum, code, said):
    dng = small_dng(tmp_path / "a.dng")
    out, mark = tmp_path / "out", tmp_path / "syncing"
    # named temporary files (as on vfat), so one left behind would show; the first fsync is slow
    env = shimmed(shim, HOSTILE_NO_TMPFILE="1", HOSTILE_SLOW_FSYNC=str(mark))
    process = _start(["develop", dng, "-o", f"{out}/"], env)
    _wait_for(mark, process)  # the encoder thread is syncing the file, the main thread waits for it
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    _no_traceback(stderr)
    assert process.returncode == code, stderr
    assert f"{said}: the file being written was not left behind" in stderr
    assert os.listdir(out) == []


# --- 7. memory limits ------------------------------------------------------------------------------
def _address_space(megabytes: int):
    import resource

    limit = megabytes * 2**20
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


@pytest.fixture(scope="module")
def batch_with_a_large_file(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("memory")
    return [small_dng(folder / "a.dng"), small_dng(folder / "big.dng", h=4000, w=6000),  # 24 MP
            small_dng(folder / "b.dng", seed=1)]


@pytest.mark.parametrize("megabytes", [
    300,  # OpenVINO's CPU plugin cannot be mapped
    800,  # std::bad_alloc while the network compiles
    pytest.param(1800, marks=pytest.mark.slow),  # the small files develop, the 24 MP one cannot
])
def test_a_memory_limit_is_one_line_per_file_and_the_batch_goes_on(tmp_path, batch_with_a_large_file,
                                                                   megabytes):
    out = tmp_path / "out"
    result = run_microisp("develop", *batch_with_a_large_file, "-o", f"{out}/",
                          preexec_fn=_address_space(megabytes))
    _no_traceback(result.stderr)
    assert result.returncode in (0, 1), result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln and not ln.startswith("warning:")]
    for dng in batch_with_a_large_file:  # one line each: developed, or why not
        (line,) = [ln for ln in lines if str(dng) in ln]
        assert line.startswith(f"{dng} -> ") or (
            line.startswith(f"error: {dng}: not enough memory") and "address space limited to" in line), line
    assert lines[-1].endswith("failed") and len(lines) == 4, result.stderr  # 3 files and the summary
    assert not [p for p in out.glob("*") if p.suffix != ".png"] if out.exists() else True


def test_out_of_memory_in_its_disguises_is_recognised():
    from microisp_cli.errors import out_of_memory

    assert out_of_memory(MemoryError("Unable to allocate 137. MiB for an array with shape (6000, 4000)"))\
        .startswith("not enough memory to develop it (137 MiB more were needed")
    assert "std::bad_alloc" in out_of_memory(RuntimeError("Exception from plugin.cpp:54:\nstd::bad_alloc\n"),
                                             "compile the network")
    assert "(can't alloc" in out_of_memory(RuntimeError(  # OpenVINO compiling a graph under a limit
        "Exception from src/inference/src/cpp/core.cpp:117:\nException from src/inference/src/dev/plugin.cpp:54:\n"
        "can't alloc\n\n\n"), "load and compile the network")
    assert "libgomp.so.1 could not be loaded" in out_of_memory(ImportError(
        "libgomp.so.1: failed to map segment from shared object"))
    assert out_of_memory(OSError(12, "Cannot allocate memory")).startswith("not enough memory")
    assert out_of_memory(RuntimeError("a bug")) is None and out_of_memory(OSError(2, "No such file")) is None


# --- 8. a crash inside the metadata library ------------------------------------------------------
@pytest.mark.parametrize("workers", [None, pytest.param(2, marks=pytest.mark.slow)])
def test_a_crash_inside_exiv2_fails_its_file_in_one_line(tmp_path, shim, workers):
    files = [small_dng(tmp_path / "a.dng"), small_dng(tmp_path / "crashes.dng", seed=1),
             small_dng(tmp_path / "b.dng", seed=2)]
    out = tmp_path / "out"
    env = shimmed(shim, HOSTILE_EXIV2_CRASH="crashes.dng")  # Exiv2 opening it raises SIGSEGV
    result = run_microisp("develop", *files, "-o", f"{out}/", *(["--workers", workers] if workers else []),
                          env=env)
    _no_traceback(result.stderr)
    assert result.returncode == 1, result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln and not ln.startswith("warning:")]
    assert f"error: {files[1]}: the metadata library (Exiv2) crashed on it (SIGSEGV); the file was not written" \
        in lines
    assert lines[-1] == "2 done, 0 skipped, 1 failed"
    assert len(lines) == 4 + (workers is not None), result.stderr  # (the cluster's one line)
    assert sorted(os.listdir(out)) == ["a.png", "b.png"]


# --- 9, 11. the scratch file's folder; a tag that is not UTF-8 -----------------------------------
@pytest.mark.skipif(os.geteuid() != 0 or not sys.platform.startswith("linux"), reason="mounting a small tmpfs needs root")
def test_a_full_tmpdir_says_it_is_the_scratch_file(tmp_path):
    dng = small_dng(tmp_path / "mid.dng", h=1500, w=2000)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", scratch]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = run_microisp("develop", dng, "-o", tmp_path / "out.png", env=_env(TMPDIR=str(scratch)))
    finally:
        subprocess.run(["umount", scratch], check=True)
    _no_traceback(result.stderr)
    assert result.returncode == 1
    assert (f"error: {dng}: no room for the network's scratch file (126 MB) in {scratch} (No space left "
            "on device): this is not the output's disk; set TMPDIR to a folder with room") in result.stderr


def test_a_latin1_exif_tag_is_left_out_with_a_warning_and_the_rest_kept(tmp_path):
    import pyexiv2

    dng = small_dng(tmp_path / "a.dng", camera="Test Camera X1")
    data = dng.read_bytes()
    count = data.count(b"Test Camera X1")
    assert count >= 1
    dng.write_bytes(data.replace(b"Test Camera X1", "Test Cam\u00e9ra X1".encode("latin-1")))  # same length
    out = tmp_path / "a.jpg"
    result = develop(dng, "-o", out)
    assert result.exit_code == 0, result.output
    assert f"warning: {dng}: the EXIF tag Exif.Image.Model is not UTF-8 text: left out" in result.output
    with pyexiv2.Image(str(out)) as image:
        exif = image.read_exif()
    assert exif["Exif.Image.Make"] == "microisp" and "Exif.Image.Model" not in exif
    assert exif["Exif.Image.Software"].startswith("microisp ")


# --- 12. hostile presets -------------------------------------------------------------------------
@pytest.mark.parametrize("text, message", [
    ("x = " + "[" * 100_000 + "]" * 100_000, "not a readable TOML file (nested too deeply)"),
    ("quality = 1" + "0" * 5000, "not a readable TOML file (an integer with too many digits)"),
    ('bits = "16"', "bits = '16': must be the integer 8 or 16, got '16'"),
    ("half_size = 1", "half_size = 1: must be true or false, got 1"),
    ("quality = true", "quality = True: must be an integer 1-100, got True"),
    ('wb = "' + "a" * 800_000 + '"', "... (800002 characters) is not one of camera"),
], ids=["deep", "5000 digits", "bits string", "flag int", "quality bool", "800 KB"])
def test_hostile_presets_are_one_short_usage_error(tmp_path, text, message):
    dng = small_dng(tmp_path / "a.dng")
    preset = tmp_path / "p.toml"
    preset.write_text(text + "\n")
    result = develop(dng, "-o", tmp_path / "a.png", "--preset", preset)
    assert result.exit_code == 2 and message in result.output, result.output[-300:]
    assert len(result.output) < 600 and not (tmp_path / "a.png").exists()


# --- 13. notes: a frame too small, an invalid orientation ----------------------------------------
def test_a_frame_under_22_pixels_is_too_small_not_an_unknown_format(tmp_path):
    dng = small_dng(tmp_path / "tiny.dng", h=16, w=20)
    result = develop(dng, "-o", tmp_path / "tiny.png")
    assert result.exit_code == 1
    assert f"error: {dng}: frame too small (20x16 pixels): LibRaw reads frames of at least 22" in result.output


@pytest.mark.parametrize("orientation", [0, 9, 65535])
def test_an_invalid_orientation_is_left_as_stored_with_a_warning(tmp_path, orientation):
    import numpy as np
    from PIL import Image

    plain, odd = small_dng(tmp_path / "plain.dng"), small_dng(tmp_path / "odd.dng", orientation=orientation)
    assert develop(plain, "-o", tmp_path / "plain.png").exit_code == 0
    result = develop(odd, "-o", tmp_path / "odd.png")
    assert result.exit_code == 0
    assert f"warning: {odd}: the Orientation tag is {orientation}, not one of 1-8: the image is left as stored" \
        in result.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "plain.png")), np.asarray(Image.open(tmp_path / "odd.png")))


def test_a_short_strip_of_pixel_data_is_a_warning(tmp_path):
    from malformed import T_STRIP_BYTES, patch_tag

    dng = small_dng(tmp_path / "short.dng")  # one uncompressed 16-bit strip of 84 x 60 samples
    patch_tag(dng, T_STRIP_BYTES, [84 * 60])  # declares half of it: what follows is read as pixels
    result = develop(dng, "-o", tmp_path / "short.png")
    assert result.exit_code == 0
    assert (f"warning: {dng}: strip 1 of 1 of the pixel data holds 5040 of the 10080 bytes it needs: "
            "that part of the image shows other data (garbage)") in result.output
    assert "holds" not in develop(small_dng(tmp_path / "whole.dng"), "-o", tmp_path / "whole.png").output
