"""Peak memory and time of the tiled pipeline against one whole-frame pass; writes docs/benchmarks.md.

Two measurements, each configuration in a **fresh process**:

1. ``microisp develop`` on synthetic 12-bit RGGB DNGs (``training.dng.write_dng``) of about 12, 32
   and 100 MP, output a 16-bit TIFF, with the default tile size and with ``--tile-size 0`` (whole
   frame). Peak RSS is the child's ``ru_maxrss`` (``os.wait4``: kernel-tracked high-water mark of
   the whole process, TensorFlow import, decode and encode included); the parent also samples
   VmRSS every 50 ms and kills a run that passes ``--cap-gb`` (so a whole frame that would not fit
   is recorded as skipped instead of taking the machine down). Whole-frame runs whose extrapolated
   need exceeds the cap are skipped up front.
2. The network alone at 12 MP (``run_tiled`` on a conditioned packed frame, default weights, a
   uint16 sink): whole frame and several tile sizes **in one process**, interleaved, ``--repeats``
   rounds after a warm-up; ratios are of the per-configuration minimum and median times.

Usage (from the repository root)::

    python benchmarks/tiling_memory.py            # all sizes, rewrites the section in docs/benchmarks.md
    python benchmarks/tiling_memory.py --sizes 12 --no-write
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SECTION = "## Tiling: memory and time"
GIB = 1024 ** 3
MIB = 1024 ** 2

#: Full-resolution sizes (width, height) by nominal megapixels.
SIZES = {12: (4000, 3000), 32: (6928, 4620), 100: (11552, 8672)}


def synthetic_dng(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A 12-bit RGGB DNG of smooth colour gradients and noise, built in row blocks."""
    from microisp_cli.training.dng import write_dng

    rng = np.random.default_rng(seed)
    mosaic = np.empty((height, width), np.uint16)
    xx = np.arange(width, dtype=np.float32) / width
    step = 512
    for y0 in range(0, height, step):
        yy = (np.arange(y0, min(height, y0 + step), dtype=np.float32) / height)[:, None]
        base = 0.35 + 0.25 * np.sin(7 * xx + 3 * yy) * np.cos(5 * yy - 2 * xx)
        base = base + 0.03 * rng.standard_normal(base.shape, dtype=np.float32)
        mosaic[y0:y0 + len(yy)] = np.clip(base * 4095, 0, 4095).astype(np.uint16)
    write_dng(path, mosaic, "RGGB", black_level=0, white_level=4095)


def run_measured(cmd: list[str], cap_bytes: int) -> dict:
    """Run ``cmd``; its wall time, ``ru_maxrss``, sampled peak VmRSS; killed above ``cap_bytes``."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampled, killed = [0], [False]

    def sample() -> None:
        status = f"/proc/{proc.pid}/status"
        while proc.poll() is None:
            try:
                with open(status) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                            sampled[0] = max(sampled[0], rss)
                            if rss > cap_bytes:
                                killed[0] = True
                                proc.kill()
            except (FileNotFoundError, ProcessLookupError):
                return
            time.sleep(0.05)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        out, err = proc.communicate()
    finally:  # interrupted: take the child down with us
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    thread.join()
    # The child prints its own ru_maxrss (see CHILD); the sample is the fallback and a cross-check.
    return {"seconds": time.perf_counter() - start, "returncode": proc.returncode,
            "killed": killed[0], "sampled_rss": sampled[0], "stdout": out.decode(),
            "stderr": err.decode()}


#: Runs ``microisp develop`` through its CLI entry point, then prints its own ru_maxrss (kB on
#: Linux): the kernel high-water mark of this process.
CHILD = """
import resource, sys, time
from microisp_cli.cli.main import cli
t = time.perf_counter()
try:
    cli(sys.argv[1:], prog_name="microisp")
finally:
    print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
          "SECONDS", time.perf_counter() - t, file=sys.stderr)
"""


def develop_rss(dng: Path, out: Path, tile_size: int, cap_bytes: int) -> dict:
    cmd = [sys.executable, "-c", CHILD, "develop", str(dng), "-o", str(out), "--overwrite",
           "--tile-size", str(tile_size)]
    result = run_measured(cmd, cap_bytes)
    match = re.search(r"MAXRSS_KB (\d+) SECONDS ([\d.]+)", result["stderr"])
    result["peak_rss"] = int(match.group(1)) * 1024 if match else result["sampled_rss"]
    result["develop_seconds"] = float(match.group(2)) if match else None
    if out.exists():
        out.unlink()
    return result


#: The network alone: ``run_tiled`` from a synthetic source computed on the fly (nothing
#: frame-sized held by the source) into a uint16 output buffer, then this process's ru_maxrss.
ALONE = """
import resource, sys, time
import numpy as np
from microisp_cli.weights import load_weights
from microisp_cli.runtimes.tensorflow import TensorFlowRunner
from microisp_cli.tiling import run_tiled
width, height, tile = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
class Synthetic:
    shape = (height // 2, width // 2)
    def read(self, y0, y1, x0, x1):
        yy = np.arange(y0, y1, dtype=np.float32)[:, None, None] / self.shape[0]
        xx = np.arange(x0, x1, dtype=np.float32)[None, :, None] / self.shape[1]
        phase = np.arange(4, dtype=np.float32)
        return (0.4 + 0.3 * np.sin(7 * xx + 3 * yy + phase) * np.cos(5 * yy - 2 * xx)).astype(np.float32)
weights = load_weights("default")
runner = TensorFlowRunner(weights.config, weights.params)
out = np.empty((height, width, 3), np.uint16)
def sink(y, x, rgb):
    out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = np.clip(rgb * 65535 + 0.5, 0, 65535)
start = time.perf_counter()
run_tiled(runner, Synthetic(), sink, tile)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      "SECONDS", time.perf_counter() - start, file=sys.stderr)
"""


def alone_rss(width: int, height: int, tile_size: int, cap_bytes: int) -> dict:
    result = run_measured([sys.executable, "-c", ALONE, str(width), str(height), str(tile_size)],
                          cap_bytes)
    match = re.search(r"MAXRSS_KB (\d+) SECONDS ([\d.]+)", result["stderr"])
    result["peak_rss"] = int(match.group(1)) * 1024 if match else result["sampled_rss"]
    result["network_seconds"] = float(match.group(2)) if match else None
    return result


#: The network alone, one process: whole frame against tile sizes, interleaved.
SPEED = """
import json, sys, time
import numpy as np
from microisp_cli.weights import load_weights
from microisp_cli.runtimes.tensorflow import TensorFlowRunner
from microisp_cli.tiling import ArraySource, run_tiled
width, height, repeats = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tiles = [int(t) for t in sys.argv[4].split(",")]
weights = load_weights("default")
runner = TensorFlowRunner(weights.config, weights.params)
rng = np.random.default_rng(0)
packed = (0.3 + 0.4 * rng.random((height // 2, width // 2, 4))).astype(np.float32)
out = np.empty((height, width, 3), np.uint16)
def sink(y, x, rgb):
    out[y:y + rgb.shape[0], x:x + rgb.shape[1]] = np.clip(rgb * 65535 + 0.5, 0, 65535)
source = ArraySource(packed)
for t in tiles:  # warm-up: traces and first allocations
    run_tiled(runner, source, sink, t)
times = {t: [] for t in tiles}
cpu = {t: [] for t in tiles}
for _ in range(repeats):
    for t in tiles:
        start, start_cpu = time.perf_counter(), time.process_time()
        run_tiled(runner, source, sink, t)
        times[t].append(time.perf_counter() - start)
        cpu[t].append(time.process_time() - start_cpu)
print(json.dumps({"wall": times, "cpu": cpu}))
"""


def speed(width: int, height: int, tiles: list[int], repeats: int) -> dict[str, dict[int, list[float]]]:
    """Wall and CPU (process) seconds of each tile size (0: whole frame), one process."""
    cmd = [sys.executable, "-c", SPEED, str(width), str(height), str(repeats),
           ",".join(str(t) for t in tiles)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return {kind: {int(k): v for k, v in runs.items()} for kind, runs in data.items()}


def machine() -> str:
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    import tensorflow as tf  # noqa: F401  (version only)

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / GIB
    load = os.getloadavg()[0]
    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GB RAM, Python {platform.python_version()}, "
            f"TensorFlow {tf.__version__}; load average {load:.1f} at the start (shared machine)")


def main(argv: list[str] | None = None) -> None:
    from microisp_cli import defaults

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="12,32,100", help="nominal megapixels, comma separated")
    parser.add_argument("--tile-size", type=int, default=defaults.TILE_SIZE)
    parser.add_argument("--speed-tiles", default="256,512,1024",
                        help="tile sizes timed against the whole frame at 12 MP")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cap-gb", type=float, default=8.0,
                        help="kill (and record as skipped) any run whose RSS passes this")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    cap = int(args.cap_gb * GIB)
    command = "python benchmarks/tiling_memory.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = machine()

    rows, whole_rss = [], {}
    with tempfile.TemporaryDirectory(prefix="microisp-bench-") as tmp:
        for mp in sizes:
            width, height = SIZES[mp]
            dng = Path(tmp) / f"synthetic_{mp}mp.dng"
            synthetic_dng(dng, width, height)
            for tile in (args.tile_size, 0):
                label = f"{width}x{height} ({width * height / 1e6:.1f} MP)"
                mode = "whole frame" if tile == 0 else f"tiled exact, --tile-size {tile}"
                if tile == 0 and len(whole_rss) >= 2:
                    # extrapolate linearly in pixels from the two largest measured whole frames
                    (p0, r0), (p1, r1) = sorted(whole_rss.items())[-2:]
                    need = r1 + (r1 - r0) * (width * height - p1) / (p1 - p0)
                    if need > cap:
                        rows.append((label, mode, f"skipped (would need > {need / GIB:.0f} GB)", "-", "-"))
                        print(rows[-1], flush=True)
                        continue
                result = develop_rss(dng, Path(tmp) / "out.tif", tile, cap)
                if result["killed"]:
                    rows.append((label, mode, f"skipped (passed the {args.cap_gb:g} GB cap)", "-", "-"))
                elif result["returncode"] != 0:
                    tail = result["stderr"].strip().splitlines()[-1:] or ["?"]
                    rows.append((label, mode, f"failed: {tail[0][:80]}", "-", "-"))
                else:
                    if tile == 0:
                        whole_rss[width * height] = result["peak_rss"]
                    rows.append((label, mode, f"{result['peak_rss'] / MIB:.0f} MiB",
                                 f"{result['sampled_rss'] / MIB:.0f} MiB",
                                 f"{result['seconds']:.1f} s"))
                print(rows[-1], flush=True)

    alone_rows = []
    for mp in sizes:
        width, height = SIZES[mp]
        label = f"{width}x{height} ({width * height / 1e6:.1f} MP)"
        result = alone_rss(width, height, args.tile_size, cap)
        if result["returncode"] != 0 or result["killed"]:
            alone_rows.append((label, "failed" if not result["killed"] else "skipped (cap)", "-", "-", "-"))
        else:
            out_mib = width * height * 6 / MIB
            alone_rows.append((label, f"{result['peak_rss'] / MIB:.0f} MiB", f"{out_mib:.0f} MiB",
                               f"{(result['peak_rss'] / MIB - out_mib):.0f} MiB",
                               f"{result['network_seconds']:.1f} s"))
        print(alone_rows[-1], flush=True)

    speed_tiles = [int(t) for t in args.speed_tiles.split(",")]
    width, height = SIZES[12]
    measured = speed(width, height, [0] + speed_tiles, args.repeats)
    speed_rows = []
    for kind in ("wall", "cpu"):
        times = measured[kind]
        base_min, base_med = min(times[0]), float(np.median(times[0]))
        for tile in [0] + speed_tiles:
            t = times[tile]
            speed_rows.append((
                kind, "whole frame" if tile == 0 else f"tiled exact, {tile}",
                f"{min(t):.2f} s", f"{np.median(t):.2f} s",
                f"{min(t) / base_min:.2f}x", f"{np.median(t) / base_med:.2f}x",
                ", ".join(f"{v:.2f}" for v in t)))
            print(speed_rows[-1], flush=True)

    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        SECTION, "",
        f"Generated by `{command.strip()}` on {today}.",
        f"Machine: {header}.", "",
        "### Peak memory of `microisp develop` (synthetic 12-bit RGGB DNG -> 16-bit TIFF)", "",
        "Each row is a fresh process. Peak RSS: the process's `ru_maxrss` (kernel high-water mark: "
        "TensorFlow import, decode, network, render and encode included); sampled: largest VmRSS "
        "seen every 50 ms. Time: process start to exit.", "",
        "| frame | mode | peak RSS | sampled | time |", "|---|---|---|---|---|",
    ] + [f"| {' | '.join(r)} |" for r in rows] + [
        "", f"### Peak memory of the network alone (`run_tiled`, --tile-size {args.tile_size})", "",
        "Each row a fresh process: TensorFlow, the default weights, a synthetic packed source computed "
        "tile by tile (no frame-sized input), a preallocated uint16 RGB output buffer. Peak RSS is "
        "`ru_maxrss`; the last column subtracts the output buffer: what is left should not grow "
        "with the frame.", "",
        "| frame | peak RSS | output buffer | peak - output | network time |", "|---|---|---|---|---|",
    ] + [f"| {' | '.join(r)} |" for r in alone_rows] + [
        "", f"### Network time at 12 MP ({width}x{height} output), one process", "",
        f"`run_tiled` on a packed frame with the default weights and a uint16 sink; one warm-up "
        f"pass of each configuration, then {args.repeats} interleaved rounds. Ratios are against "
        "the whole-frame pass (minimum to minimum, median to median). `wall`: elapsed time; "
        "`cpu`: this process's user + system CPU time (the work done, less sensitive to other "
        "processes on a shared machine; state-file reads and writes count as system time).", "",
        "| clock | mode / tile size | min | median | ratio (min) | ratio (median) | all runs (s) |",
        "|---|---|---|---|---|---|---|",
    ] + [f"| {' | '.join(r)} |" for r in speed_rows] + [""]
    text = "\n".join(lines)
    print(text)
    if args.no_write:
        return
    old = DOC.read_text() if DOC.exists() else "# Benchmarks\n\nGenerated by the scripts in `benchmarks/`.\n"
    if SECTION in old:
        start = old.index(SECTION)
        nxt = old.find("\n## ", start + len(SECTION))
        new = old[:start] + text + (old[nxt + 1:] if nxt != -1 else "")
    else:
        new = old.rstrip("\n") + "\n\n" + text
    DOC.write_text(new)
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
