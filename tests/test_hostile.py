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


@pytest.mark.parametrize("extension", ["png", "tif", "jpg"])
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
