"""A plain install develops without TensorFlow or Dask; a missing extra is named in one line.

Each case runs ``microisp`` in a fresh interpreter (this test process has TensorFlow loaded by
other tests). A missing package is simulated by ``sys.modules[name] = None``, which makes every
``import name`` fail as if it were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import small_dng

SRC = Path(__file__).resolve().parents[1] / "src"
OPTIONAL = ("tensorflow", "ai_edge_litert", "dask", "distributed", "lensfunpy", "pillow_jxl")


def microisp(args: list[str], hide: tuple[str, ...] = (), report: bool = False):
    """``microisp ARGS`` in a new interpreter with the packages ``hide`` made unimportable;
    with ``report``, the optional packages that were imported are printed last."""
    code = (f"import sys; sys.path.insert(0, {str(SRC)!r})\n"
            + "".join(f"sys.modules[{name!r}] = None\n" for name in hide)
            + "from microisp_cli.cli.main import main\n"
            + "try:\n    main()\nfinally:\n"
            + (f"    print('IMPORTED', [m for m in {OPTIONAL!r} if sys.modules.get(m)])\n" if report
               else "    pass\n"))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def dng(tmp_path_factory):
    return small_dng(tmp_path_factory.mktemp("in") / "shot.dng", 200, 240, "RGGB")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_develop_imports_neither_tensorflow_nor_dask(tmp_path, dng, suffix):
    out = tmp_path / f"out{suffix}"
    result = microisp(["develop", str(dng), "-o", str(out)], hide=OPTIONAL, report=True)
    assert result.returncode == 0, result.stderr
    assert out.stat().st_size > 0
    assert "IMPORTED []" in result.stdout


def test_a_broken_file_is_reported_quickly_without_the_network(tmp_path):
    bad = tmp_path / "bad.dng"
    bad.write_bytes(b"II*\x00" + b"\x00" * 60)
    started = time.perf_counter()
    result = microisp(["develop", str(bad), "-o", str(tmp_path / "bad.png")], report=True)
    seconds = time.perf_counter() - started
    assert result.returncode == 1
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and str(bad) in errors[0] and "Traceback" not in result.stderr
    assert "IMPORTED []" in result.stdout
    assert seconds < 5  # about 0.6 s on a quiet 2-core machine; generous for a loaded one


@pytest.mark.parametrize(("args", "extra"), [
    (["develop", "{dng}", "-o", "{out}/a.png", "--backend", "tf"], "tf"),
    (["develop", "{dng}", "-o", "{out}/b.png", "--workers", "1"], "dask"),
    (["develop", "{dng}", "-o", "{out}/c.png", "--scheduler", "tcp://127.0.0.1:1"], "dask"),
    (["export", "--tflite", "-o", "{out}/m.tflite"], "tf"),
    (["develop", "{dng}", "-o", "{out}/d.png", "--lens-correction"], "lens"),
    (["develop", "{dng}", "-o", "{out}/e.jxl"], "jxl"),
])
def test_a_missing_extra_is_named_in_one_line(tmp_path, dng, args, extra):
    args = [a.format(dng=dng, out=tmp_path) for a in args]
    result = microisp(args, hide=OPTIONAL)
    assert result.returncode == 2  # a usage error, as docs/cli.md documents
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if f"pip install -e '.[{extra}]'" in ln]
    assert len(lines) == 1, result.stderr
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("*.tflite"))
