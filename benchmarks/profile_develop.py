#!/usr/bin/env python3
"""Where a 24 MP ``microisp develop`` spends its time: wall per stage and CPU-s per component.

Two whole-process measurements of the same synthetic DNG (``benchmarks/scale.py``'s scene, 12-bit
RGGB) to an 8-bit PNG, on a quiet machine:

1. ``microisp bench --input FILE`` (the staged develop of ``bench.backends.StagedRun``): wall
   seconds of decode, pack, network (with its base and heads), render and encode, medians of
   ``--runs``; stages run one after another except pack and render, which run beside the network
   inside the tiled pipeline (their times are the main thread's).
2. ``perf record`` of ``microisp develop FILE -o out.png`` (every thread): its CPU-s (user +
   system, ``wait4``) split by the shared object each sample fell in: the OpenVINO network (its
   JIT kernels, plugin and TBB), the native base (``_native_base``, ``libm``'s ``powf``), the
   attention heads (OpenBLAS), LibRaw, the PNG encoder (zlib), numpy (pack, render, the state's
   copies), libc (``memmove`` of the state store and windows), the kernel (page faults of the
   state's memory map, scheduling) and Python itself.

    python benchmarks/profile_develop.py --write-doc
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import write_doc, write_frame  # noqa: E402

START, END = "<!-- profile:start -->", "<!-- profile:end -->"
MICROISP = [sys.executable, "-c", "from microisp_cli.cli.main import main; main()"]
#: component -> patterns of the shared objects perf names (first match wins)
COMPONENTS = [
    ("network (OpenVINO kernels, plugin, TBB)", r"\[JIT\]|openvino|tbb"),
    ("base (native LMMSE kernel, powf)", r"_native_base|libm\.so"),
    ("attention heads (OpenBLAS)", r"openblas"),
    ("decode (LibRaw)", r"libraw"),
    ("encode (zlib, Pillow)", r"libz\.|_imaging|libpng"),
    ("numpy (pack, render, copies)", r"_multiarray|numpy"),
    ("libc (memmove of state and windows, malloc)", r"libc\.so"),
    ("kernel (page faults of the state's map, scheduling)", r"kernel"),
    ("Python", r"libpython|python3"),
]


def staged(dng: Path, runs: int, env: dict) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.json"
        subprocess.run([*MICROISP, "bench", "--input", str(dng), "-n", str(runs), "--json", str(out)],
                       check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        result = json.loads(out.read_text())["results"][0]
    return {stage: v["median_s"] for stage, v in result["stages"].items()}


def profiled(dng: Path, scratch: Path, env: dict) -> tuple[float, float, dict[str, float]]:
    data = scratch / "perf.data"
    command = ["perf", "record", "-F", "499", "-q", "-o", str(data), "--", *MICROISP, "develop", str(dng),
               "-o", str(scratch / "out.png"), "--overwrite", "-q"]
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status:
        raise SystemExit(f"perf record of microisp develop failed (status {status})")
    # perf's own CPU time is small (499 Hz); the child's user + system time is the develop's
    cpu = usage.ru_utime + usage.ru_stime
    report = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio",
                             "-g", "none"], capture_output=True, text=True, check=True).stdout
    shares: dict[str, float] = collections.Counter()
    for line in report.splitlines():
        m = re.match(r"\s*([\d.]+)%\s+(.*\S)", line)
        if not m:
            continue
        dso = m.group(2)
        name = next((c for c, pattern in COMPONENTS if re.search(pattern, dso)), "other")
        shares[name] += float(m.group(1)) / 100
    return wall, cpu, shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="6000x4000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write-doc", action="store_true")
    args = parser.parse_args()
    if shutil.which("perf") is None or subprocess.run(["perf", "stat", "-e", "task-clock", "true"],
                                                      capture_output=True).returncode:
        raise SystemExit("needs perf (Debian: linux-perf) allowed to sample this machine")
    width, height = (int(v) for v in args.size.lower().split("x"))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.TemporaryDirectory(prefix="microisp-profile-") as folder:
        scratch = Path(folder)
        dng = write_frame(scratch / "in", width, height, env)
        stages = staged(dng, args.runs, env)
        wall, cpu, shares = profiled(dng, scratch, env)
    load = os.getloadavg()[0]
    lines = [f"Generated by `python benchmarks/profile_develop.py --write-doc` on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: a synthetic {width}x{height} 12-bit DNG "
             f"to an 8-bit PNG, default weights, load average {load:.1f} at the end.", "",
             "Wall time per stage (`microisp bench --input`, medians of "
             f"{args.runs}; pack and render run inside the network stage's pipeline, beside the network):", "",
             "| stage | wall |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.2f} s |" for stage, seconds in stages.items()]
    lines += ["", f"CPU time by component (`perf record` of one `microisp develop`: {wall:.1f} s wall, "
                  f"{cpu:.1f} CPU-s, {cpu / wall:.2f} cores busy on average):", "",
              "| component | share | CPU-s |", "|---|---|---|"]
    for name, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {100 * share:.1f} % | {share * cpu:.1f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write_doc:
        write_doc(text, ROOT / "docs" / "benchmarks.md", START, END)


if __name__ == "__main__":
    main()
