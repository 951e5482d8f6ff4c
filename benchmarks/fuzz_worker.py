"""The child process of the fuzz campaign (``fuzz_raw.py --worker``): it develops each case it is
sent (``develop_to_file``, or a command line of :mod:`fuzz_classes` run in-process and judged by
the contract) and answers one JSON line per case."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

from fuzz_classes import digest

# --- judging a command line (the CLI classes) --------------------------------------------------
#: The lines ``microisp develop`` may print on stderr: per-file lines, the summary, click's usage
#: error (three lines), the interruption line.
LINE_FORMS = [r"(error|warning): \S.*", r"skipped \S.*", r"\d+ done, \d+ skipped, \d+ failed",
              r"\S.* -> \S.* \((wrote|replaced), [\d.]+ s\)", r"Usage: .*", r"Try '.*' for help\.",
              r"Error: .*", r"(interrupted|terminated): .*"]
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _listing(folder: str) -> set[str]:
    found = set()
    for root, dirs, files in os.walk(os.fsencode(folder)):
        found.update(os.fsdecode(os.path.join(root, n)) for n in dirs + files)
    return found


def run_cli_case(job: dict) -> dict:
    """Run ``microisp`` with ``job["argv"]`` in this process and judge it by the contract."""
    import io
    import re
    import traceback

    from microisp_cli.cli.main import cli

    before, listed = digest(job["inputs"]), _listing(job["cwd"])
    err, out = io.StringIO(), io.TextIOWrapper(io.BytesIO())
    saved = sys.stdout, sys.stderr, os.getcwd()
    sys.stdout, sys.stderr = out, err
    os.chdir(job["cwd"])
    tb = None
    try:
        cli.main(args=job["argv"], prog_name="microisp", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - any other exception is the finding
        code, tb = None, traceback.format_exc()[-4000:]
    finally:
        out.flush()
        sys.stdout, sys.stderr = saved[0], saved[1]
        os.chdir(saved[2])
    text = err.getvalue()
    lines = [ln for ln in text.split("\n") if ln.strip()]
    shown = [ln for ln in lines if ln.startswith(("error:", "Error:", "skipped"))] or lines or [""]
    answer: dict[str, object] = {"exit": code, "message": shown[0][:300]}
    new = sorted(_listing(job["cwd"]) - listed)
    images = [p for p in new if p.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(p)]
    done = [int(m.group(1)) for ln in lines for m in [re.fullmatch(r"(\d+) done, .*", ln)] if m]
    left = [p for p in new if os.path.basename(p).startswith(".") or p.endswith(".part")
            or (os.path.isfile(p) and p not in images)]
    if len(images) != (done[-1] if done else 0):
        left += images
    if tb is not None or "Traceback" in text:
        answer.update(outcome="traceback", error="traceback", traceback=tb or text[-4000:])
    elif code not in (0, 1, 2):
        answer.update(outcome="exit", error=f"exit status {code}")
    elif any(c in text for c in "\x1b\r\x07\x7f") or not all(c.isprintable() or c == "\n" for c in text):
        answer.update(outcome="unescaped", error="raw control characters in the output")
    elif any(not any(re.fullmatch(form, ln) for form in LINE_FORMS) for ln in lines):
        stray = next(ln for ln in lines if not any(re.fullmatch(form, ln) for form in LINE_FORMS))
        answer.update(outcome="stray line", error=stray[:200])
    elif digest(job["inputs"]) != before:
        answer.update(outcome="input changed", error="an input file was changed or removed")
    else:
        answer.update(outcome="cli", error=f"exit {code}")
    if left:
        answer["leftover"] = left[:10]
    return answer


# --- the worker (a child process) ---------------------------------------------------------------
def worker_main(args: argparse.Namespace) -> None:
    import resource

    limit = args.memory_mb * 2 ** 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import inspect
    import traceback
    import warnings

    from microisp_cli.develop import develop_to_file, make_runner
    from microisp_cli.errors import MicroISPError
    from microisp_cli.weights import load_weights

    weights = load_weights()
    runner = make_runner(weights, threads=args.threads)
    extra = {}
    if "max_megapixels" in inspect.signature(develop_to_file).parameters and args.max_megapixels:
        extra["max_megapixels"] = args.max_megapixels
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        started = time.perf_counter()
        answer: dict[str, object] = {"case": job["case"]}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if job.get("argv"):
                    raise _CommandLine
                if job.get("selftest"):
                    _selftest(job["selftest"], Path(job["output"]))
                develop_to_file(job["path"], job["output"], weights, runner=runner, bits=8,
                                tile_size=args.tile_size, **extra)
            except _CommandLine:
                answer.update(run_cli_case(job))
            except MicroISPError as exc:
                text = str(exc)
                answer.update(outcome="typed" if "\n" not in text.strip() else "multiline",
                              error=type(exc).__name__, message=text[:500])
            except BaseException as exc:  # noqa: BLE001 - every other exception is the finding
                answer.update(outcome="traceback", error=type(exc).__name__, message=str(exc)[:500],
                              traceback=traceback.format_exc()[-4000:])
            else:
                answer.update(outcome="developed")
        answer["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught
                              if "microisp" in w.category.__module__ or "MicroISP" in w.category.__name__]
        answer["seconds"] = round(time.perf_counter() - started, 3)
        with open("/proc/self/status") as f:
            status = dict(ln.split(":", 1) for ln in f if ":" in ln)
        answer["vm_peak_mb"] = int(status["VmPeak"].split()[0]) // 1024
        answer["rss_peak_mb"] = int(status["VmHWM"].split()[0]) // 1024
        out.write(json.dumps(answer) + "\n")
        out.flush()


class _CommandLine(Exception):
    """The job is a command line (a CLI class), not a file for ``develop_to_file``."""


#: Harness checks (``--self-test``): what the worker does instead of a normal case, and the outcome
#: the campaign must report for it.
SELFTESTS = {"segfault": "signal", "hang": "hang", "bug": "traceback", "leftover": "typed"}


def _selftest(what: str, output: Path) -> None:
    from microisp_cli.errors import InputError

    if what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "hang":
        time.sleep(10 ** 6)
    elif what == "bug":
        raise ZeroDivisionError("a deliberate bug")
    elif what == "leftover":
        output.with_name("partial.png").write_bytes(b"x")
        raise InputError("a deliberate typed error that leaves a file behind")
