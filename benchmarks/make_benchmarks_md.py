#!/usr/bin/env python3
"""Generate the "Speed and memory" section of docs/benchmarks.md from ``microisp bench --json``.

What it runs, in this order, each measurement in its own process:

1. ``microisp bench --json`` for each frame size (FullHD, 12 MP, 32 MP) with TensorFlow (tiled and,
   where it fits in memory, whole frame), TFLite FP32 and TFLite INT8 (the default weights exported
   by the bench itself);
2. the classical yardstick: LibRaw's AHD through rawpy (``postprocess``: decode, AHD, camera white
   balance, colour matrix, 16-bit output) on the same synthetic frame written as a 12-bit DNG;
3. ``microisp bench --input`` on the 32 MP DNG: where develop's time goes (decode / pack / network /
   render / encode);
4. end to end: ``/usr/bin/time -v microisp develop`` of the 32 MP DNG, process start to PNG written
   (falls back to ``resource.getrusage(RUSAGE_CHILDREN)`` where /usr/bin/time is missing).

The JSON of every step is kept in ``--results`` (default ``benchmarks/results``). The section is
written between ``<!-- bench:start -->`` and ``<!-- bench:end -->``; the rest of the file (other
scripts' sections) is left as it is. Usage::

    python benchmarks/make_benchmarks_md.py                 # everything (about 10-30 min on 2 cores)
    python benchmarks/make_benchmarks_md.py --quick         # small frames, to check the script
    python benchmarks/make_benchmarks_md.py --render-only   # rewrite the section from saved JSON
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from microisp_cli import bench, defaults, synthetic
from microisp_cli.resolution import parse_resolution

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- bench:start -->", "<!-- bench:end -->"
MIB_PER_GB = 1e9 / 2**20  # the memory target is 1 GB = 10^9 bytes = 953.7 MiB

#: runtime key -> bench options
RUNTIMES = {
    "tf": ["--backend", "tf"],
    "tflite-fp32": ["--backend", "tflite", "--precision", "fp32"],
    "tflite-int8": ["--backend", "tflite", "--precision", "int8"],
}
#: Tile side of the tiled runs: what `microisp develop` uses by default.
TILE = defaults.TILE_SIZE
RUNTIME_TITLES = {"tf": "TensorFlow", "tflite-fp32": "TFLite FP32", "tflite-int8": "TFLite INT8"}

#: frame -> (timed runs, warm-up runs): fewer runs for the big frames on a 2-core machine.
RUNS = {"fullhd": (3, 1), "12mp": (2, 1), "32mp": (1, 1)}
QUICK_RUNS = {"320x240": (2, 1), "640x480": (2, 1)}
#: TFLite runs several times slower than TensorFlow here: fewer runs at the big sizes.
TFLITE_RUNS = {"fullhd": (2, 1), "12mp": (1, 1), "32mp": (1, 1)}
#: A second tile size for TensorFlow, to show the tile size's effect on time and memory (None: none;
#: off for now, to keep the whole run within about 25 minutes on the shared 2-core machine).
EXTRA_TF_TILE = None

#: A camera-like ColorMatrix1 (XYZ -> camera) and as-shot neutral for the synthetic DNG, so LibRaw
#: runs its colour conversion and camera white balance as for a real file.
COLOR_MATRIX = np.array([[0.6461, -0.0907, -0.0882], [-0.4300, 1.2184, 0.2378],
                         [-0.0819, 0.1944, 0.5931]])
AS_SHOT_NEUTRAL = (0.50, 1.0, 0.70)


def microisp() -> list[str]:
    exe = shutil.which("microisp")
    return [exe] if exe else [sys.executable, "-c", "from microisp_cli.cli.main import main; main()"]


def shown(command: list[str]) -> str:
    """The command as a user types it (``microisp ...``, paths relative to the repository)."""
    parts = ["microisp" if Path(p).name == "microisp" else p for p in command]
    text = " ".join(shlex.quote(p) for p in parts)
    return text.replace(str(ROOT) + "/", "")


def run(command: list[str], log: list[str]) -> subprocess.CompletedProcess:
    print("$", shown(command), flush=True)
    log.append(shown(command))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(proc.stdout[-2000:], proc.stderr[-2000:], sep="\n", file=sys.stderr)
    return proc


# --- measurements -------------------------------------------------------------------------------
def export_model(key: str, directory: Path, log: list[str]) -> Path | None:
    """``microisp export`` of the default weights for a TFLite runtime key (segmented file)."""
    precision = key.split("-", 1)[1]
    path = directory / f"microisp-default-{precision}.tflite"
    path.unlink(missing_ok=True)
    proc = run([*microisp(), "export", "--tflite", f"--{precision}", "--no-check", "-o", str(path)], log)
    return path if proc.returncode == 0 and path.exists() else None


def run_benches(frames: dict[str, tuple[int, int]], runtimes: list[str], directory: Path,
                results: Path, log: list[str]) -> None:
    for key in runtimes:
        model: list[str] = []
        if key != "tf":
            path = export_model(key, directory, log)
            # without a file, microisp bench exports the default weights itself
            model = ["--model", str(path)] if path else []
        for frame, (runs, warmup) in frames.items():
            if key != "tf" and frame in TFLITE_RUNS:
                runs, warmup = TFLITE_RUNS[frame]
            out = results / f"bench-{key}-{frame}.json"
            sizes = [TILE, EXTRA_TF_TILE, 0] if key == "tf" and EXTRA_TF_TILE not in (None, TILE) else [TILE, 0]
            tiles = [a for size in sizes for a in ("--tile-size", str(size))]
            command = [*microisp(), "bench", "-r", frame, *RUNTIMES[key], *model, *tiles,
                       "--runs", str(runs), "--warmup", str(warmup), "--json", str(out)]
            run(command, log)


def write_synthetic_dng(frame: str, directory: Path) -> Path:
    from microisp_cli.training.dng import write_dng

    path = directory / f"synthetic-{frame}.dng"
    if not path.exists():
        res = parse_resolution(frame)
        write_dng(path, synthetic.synthetic_mosaic(res), cfa="RGGB", black_level=synthetic.SYNTHETIC_BLACK,
                  white_level=synthetic.SYNTHETIC_WHITE, color_matrix=COLOR_MATRIX,
                  as_shot_neutral=AS_SHOT_NEUTRAL, camera="microisp synthetic 12-bit")
    return path


def run_libraw(frames: dict[str, tuple[int, int]], directory: Path, results: Path,
               log: list[str]) -> None:
    for frame, (runs, warmup) in frames.items():
        dng = write_synthetic_dng(frame, directory)
        res = parse_resolution(frame)
        print("$ LibRaw AHD on", dng.name, flush=True)
        result = bench.run_isolated(bench.BenchConfig(res, backend="libraw", input=str(dng),
                                                      runs=runs, warmup=warmup))
        if not result.ok:
            print(result.error, file=sys.stderr)
            continue
        data = {key: getattr(result, key) for key in (
            "runs_s", "first_run_s", "idle_rss_mb", "cpu_median_s", "peak_rss_mb", "median_s",
            "p90_s", "min_s", "max_s")}
        data.update(result.network or {}, frame=frame, megapixels=res.megapixels, dng=dng.name,
                    mp_per_s=res.megapixels / data["median_s"])
        (results / f"libraw-{frame}.json").write_text(json.dumps(data, indent=2) + "\n")
    log.append("LibRaw: rawpy.imread(DNG).postprocess(demosaic_algorithm=AHD, output_bps=16, "
               "use_camera_wb=True), in a fresh process per frame (the bench's libraw backend)")


def run_develop_split(frame: str, directory: Path, results: Path, log: list[str]) -> None:
    dng = write_synthetic_dng(frame, directory)
    out = results / f"develop-split-{frame}.json"
    run([*microisp(), "bench", "--input", str(dng), "--runs", "1", "--warmup", "1",
         "--json", str(out)], log)


def _time_v(text: str) -> dict[str, float]:
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            clock = line.rsplit(" ", 1)[-1].split(":")
            fields["wall_s"] = sum(float(v) * 60 ** i for i, v in enumerate(reversed(clock)))
        elif line.startswith("Maximum resident set size (kbytes):"):
            fields["max_rss_mb"] = int(line.rsplit(" ", 1)[-1]) / 1024
        elif line.startswith("User time (seconds):"):
            fields["user_s"] = float(line.rsplit(" ", 1)[-1])
        elif line.startswith("System time (seconds):"):
            fields["system_s"] = float(line.rsplit(" ", 1)[-1])
    return fields


def run_develop_end_to_end(frame: str, directory: Path, results: Path, log: list[str]) -> None:
    dng = write_synthetic_dng(frame, directory)
    backends = ["tf"]
    help_text = subprocess.run([*microisp(), "develop", "--help"], capture_output=True, text=True).stdout
    if "tflite" in help_text:
        backends.append("tflite")
    rows = []
    for backend in backends:
        out = directory / f"developed-{frame}-{backend}.png"
        out.unlink(missing_ok=True)
        command = [*microisp(), "develop", str(dng), "-o", str(out), "--overwrite", "--quiet",
                   "--backend", backend]
        if backend == "tflite":
            model = directory / "microisp-default-fp32.tflite"
            if not model.exists() and export_model("tflite-fp32", directory, log) is None:
                continue
            command += ["--model", str(model)]
        timer = Path("/usr/bin/time")
        if timer.exists():
            proc = run([str(timer), "-v", *command], log)
            fields = _time_v(proc.stderr)
            fields["method"] = "/usr/bin/time -v"
        else:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            proc = run(command, log)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            fields = {"wall_s": time.perf_counter() - start, "max_rss_mb": after.ru_maxrss / 1024,
                      "user_s": after.ru_utime - before.ru_utime,
                      "method": "resource.getrusage(RUSAGE_CHILDREN) (no /usr/bin/time)"}
        fields.update(backend=backend, frame=frame, ok=proc.returncode == 0 and out.exists(),
                      output_bytes=out.stat().st_size if out.exists() else None)
        rows.append(fields)
    (results / f"develop-e2e-{frame}.json").write_text(json.dumps(rows, indent=2) + "\n")


# --- the section ----------------------------------------------------------------------------------
def _load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def _result(results: Path, key: str, frame: str, tile: int):
    report = _load(results / f"bench-{key}-{frame}.json")
    if not report:
        return None, None
    for r in report["results"]:
        if r["config"]["tile_size"] == tile:
            return r, report
    return None, report


def _cell(r) -> str:
    if r is None:
        return "not run"
    if r.get("skipped"):
        return "skipped (memory)"
    if r.get("error"):
        return "failed"
    return f"{r['median_s']:.2f} s / {r['peak_rss_mb']:.0f} MiB"


def render(frames: list[str], runtimes: list[str], results: Path, commands: list[str],
           earlier: tuple[Path, str] | None = None) -> str:
    lines = [START]
    machine, created = None, None
    for key in runtimes:
        for frame in frames:
            _, report = _result(results, key, frame, TILE)
            if report:
                machine, created = machine or report["machine"], created or report["created"]
    network = None
    for key in runtimes:
        for frame in frames:
            r, _ = _result(results, key, frame, TILE)
            network = network or (r or {}).get("network")
    loads = []
    for path in sorted(results.glob("bench-*.json")):
        for r in (_load(path) or {}).get("results", []):
            loads += r.get("loadavg") or []
    if machine:
        spread = (f" The 1-minute load average during the measurements ranged from {min(loads):.1f} "
                  f"to {max(loads):.1f} on {machine['usable_cpus']} CPUs." if loads else "")
        lines += [
            f"Measured {created} on {machine['cpu']} ({machine['usable_cpus']} usable CPUs, "
            f"{machine['memory_gib']} GiB), Python {machine['python']}, TensorFlow "
            f"{machine['tensorflow']}, ai-edge-litert {machine['ai_edge_litert']}, rawpy "
            f"{machine['rawpy']}, microisp {machine['microisp']}; {_network_text(network)}. The machine "
            "is shared (load average at the start of each measurement is in the JSON): absolute "
            "times are noisy, ratios measured in the same run are what count." + spread, ""]
    lines += [
        "Each cell: median network time over the timed runs (after warm-up) / peak resident memory "
        "of the runs (VmHWM reset before the first run; fresh process per cell, so the runtime's "
        f"own memory is included). Tiles are {TILE} output pixels (the default), exact global "
        "attention; the input is held as a packed float32 frame (2 bytes per output pixel). The "
        "frame is the same deterministic synthetic 12-bit RGGB frame everywhere "
        "(`synthetic.synthetic_mosaic`), given to LibRaw as a DNG.", ""]
    lines += _main_table(frames, runtimes, results)
    columns = _columns(runtimes)

    # throughput and start-up
    lines += ["Throughput (output megapixels per second, from the median) and start-up (process "
              "start to runner ready: interpreter, runtime import, weights or model load), with "
              "the resident memory once ready (runtime, weights, input frame):", ""]
    lines += ["| runtime | " + " | ".join(f"{f} MP/s" for f in frames)
              + f" | CPU s per MP ({frames[-1]}) | start-up | ready RSS |",
              "|---|" + "---|" * (len(frames) + 3)]
    for title, key, tile in columns:
        cells, start, idle = [], None, None
        for frame in frames:
            r = _result(results, key, frame, tile)[0]
            ok = r and not r.get("error") and not r.get("skipped")
            cells.append(f"{r['mp_per_s']:.2f}" if ok else "-")
            if ok and start is None:
                start, idle = r["start_to_ready_s"], r["idle_rss_mb"]
        r = _result(results, key, frames[-1], tile)[0]
        cpu = (f"{r['cpu_median_s'] / r['config']['resolution']['megapixels']:.2f}"
               if r and r.get("cpu_median_s") else "-")
        tail = f" | {start:.2f} s | {idle:.0f} MiB |" if start is not None else " | - | - |"
        lines.append(f"| {title} | " + " | ".join(cells) + f" | {cpu}" + tail)
    lib_cells = []
    for frame in frames:
        lib = _load(results / f"libraw-{frame}.json")
        lib_cells.append(f"{lib['mp_per_s']:.2f}" if lib else "-")
    lib = _load(results / f"libraw-{frames[-1]}.json")
    lib_cpu = f"{lib['cpu_median_s'] / lib['megapixels']:.2f}" if lib and "cpu_median_s" in lib else "-"
    lines += ["| LibRaw AHD | " + " | ".join(lib_cells) + f" | {lib_cpu} | - | - |", "",
              "CPU s per MP: user + system CPU time of the timed runs (all threads) per output "
              "megapixel; on a shared machine it moves less than the wall time.", ""]

    # tiling cost
    lines += ["Tiling cost (same runtime, same frame, same call): tiled median / whole-frame "
              "median; whole frames run only where they fit (estimated peak under 6 GiB).", ""]
    lines += ["| frame | runtime | tiled / whole (wall time) | tiled / whole (CPU time) "
              "| tiled / whole (peak memory) |", "|---|---|---|---|---|"]
    any_cost = False
    for key in runtimes:
        for frame in frames:
            report = _load(results / f"bench-{key}-{frame}.json")
            for row in (report or {}).get("tiling_costs", []):
                any_cost = True
                memory = f"{row['peak_rss_ratio']:.2f}" if row["peak_rss_ratio"] else "-"
                tiles = row["tiled"].rsplit(" tiles ", 1)[-1]
                cpu = _cpu_ratio(results, key, frame, int(tiles))
                lines.append(f"| {frame} | {RUNTIME_TITLES[key]}, tiles {tiles} | "
                             f"{row['time_ratio']:.2f} | {cpu} | {memory} |")
    if not any_cost:
        lines.append("| - | - | no whole-frame run fitted | - | - |")
    lines.append("")

    # targets
    lines += _targets(frames, runtimes, results)

    lines += _summary(frames, runtimes, results)

    # develop: split and end to end
    big, middle = frames[-1], frames[len(frames) // 2]
    split = _load(results / f"develop-split-{middle}.json")
    if split and split["results"] and split["results"][0].get("stages"):
        r = split["results"][0]
        total = sum(s["median_s"] for s in r["stages"].values())
        lines += [f"Where `microisp develop` spends its time on the {middle} DNG (`microisp bench "
                  f"--input`, TensorFlow, {TILE}-pixel tiles, one timed run after one warm-up; "
                  "pack = black level, gains and packing, render = colour matrix, sRGB curve and "
                  "quantisation, encode = 8-bit PNG with the sRGB profile):", "",
                  "| stage | seconds | share |", "|---|---|---|"]
        for stage, s in r["stages"].items():
            lines.append(f"| {stage} | {s['median_s']:.2f} | {100 * s['median_s'] / total:.0f}% |")
        lines += [f"| total | {total:.2f} | |", ""]
    e2e = _load(results / f"develop-e2e-{big}.json")
    if e2e:
        lines += [f"End to end, `microisp develop` of the {big} DNG to PNG, process start to file "
                  f"written ({e2e[0]['method']}):", "",
                  "| backend | wall time | user + system CPU | peak RSS |", "|---|---|---|---|"]
        for row in e2e:
            if not row.get("ok"):
                lines.append(f"| {row['backend']} | failed | - | - |")
                continue
            cpu = row.get("user_s", 0) + row.get("system_s", 0)
            lines.append(f"| {row['backend']} | {row['wall_s']:.1f} s | {cpu:.1f} s | "
                         f"{row['max_rss_mb']:.0f} MiB |")
        lines.append("")

    if earlier and earlier[0].is_dir():
        lines += render_extra(frames, runtimes, earlier[0], earlier[1])
    lines += ["Produced by `python benchmarks/make_benchmarks_md.py`, which ran:", "", "```"]
    lines += commands or ["(rendered from saved results in benchmarks/results)"]
    lines += ["```", "", "The JSON of every run is in `benchmarks/results/`.", END]
    return "\n".join(lines) + "\n"


def _main_table(frames: list[str], runtimes: list[str], results: Path,
                extra_tiles: tuple[int, ...] = ()) -> list[str]:
    """The paper-style table: frames x runtimes, median time / peak memory, LibRaw last."""
    lines: list[str] = []
    columns = _columns(runtimes)
    for tile in extra_tiles:
        columns.insert(1, (f"{RUNTIME_TITLES['tf']}, tiles {tile}", "tf", tile))
    libs = [_load(results / f"libraw-{frame}.json") for frame in frames]
    version = next((f" {lib['libraw']}" for lib in libs if lib), "")
    header = ["frame"] + [title for title, _, _ in columns] + [f"LibRaw{version} AHD (rawpy)"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for frame in frames:
        res = parse_resolution(frame)
        size = f"{res.width}x{res.height}"
        row = [f"{frame} ({size}, {res.megapixels:.1f} MP)" if frame != size
               else f"{size} ({res.megapixels:.1f} MP)"]
        row += [_cell(_result(results, key, frame, tile)[0]) for _, key, tile in columns]
        lib = _load(results / f"libraw-{frame}.json")
        row.append(f"{lib['median_s']:.2f} s / {lib['peak_rss_mb']:.0f} MiB" if lib else "not run")
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")

    return lines


def _first_network(frames: list[str], runtimes: list[str], results: Path):
    for key in runtimes:
        for frame in frames:
            r, _ = _result(results, key, frame, TILE)
            if (r or {}).get("network"):
                return r["network"]
    return None


def render_extra(frames: list[str], runtimes: list[str], results: Path, note: str) -> list[str]:
    """A second, shorter block from another results folder (an earlier network)."""
    created = [(_load(p) or {}).get("created") for p in sorted(results.glob("bench-*.json"))]
    created = sorted(c for c in created if c)
    if not created:
        return []
    lines = ["", f"### {note}", "",
             f"Measured {created[0]} to {created[-1]}, same machine and method, by the commands "
             f"in `{results.relative_to(ROOT) if results.is_relative_to(ROOT) else results}/commands.json`"
             " (then with 5 / 3 / 2 timed runs for TensorFlow and 3 / 2 / 1 for TFLite).", ""]
    lines += _main_table(frames, runtimes, results, extra_tiles=(1024,))
    lines += _targets(frames, runtimes, results)
    return lines


def _network_text(network) -> str:
    if not network or "model" not in network:
        return "default weights"
    m = network["model"]
    return (f"weights `{network['weights']}`: {network['parameters']:,} parameters, {m['features']} "
            f"features per branch, {m['stages']} stages x {m['blocks']} attention blocks, "
            f"fixed base `{m['base']}`")


def _ok(r) -> bool:
    return bool(r) and not r.get("error") and not r.get("skipped")


def _summary(frames: list[str], runtimes: list[str], results: Path) -> list[str]:
    """A few sentences computed from the figures above (nothing here is typed by hand)."""
    big = frames[-1]
    out = []
    tf, lib = _result(results, "tf", big, TILE)[0], _load(results / f"libraw-{big}.json")
    if _ok(tf) and lib and lib.get("cpu_median_s"):
        tf_cpu = tf["cpu_median_s"] / tf["config"]["resolution"]["megapixels"]
        lib_cpu = lib["cpu_median_s"] / lib["megapixels"]
        out.append(f"- At {big}, LibRaw's AHD (decode, demosaic, colour, 16-bit output) takes "
                   f"{lib_cpu:.2f} CPU s per MP; the network alone, TensorFlow with {TILE}-pixel "
                   f"tiles, {tf_cpu:.2f}: {tf_cpu / lib_cpu:.1f} x the CPU time "
                   f"({tf['median_s'] / lib['median_s']:.1f} x the wall time).")
    for key in runtimes:
        if key == "tf":
            continue
        r = _result(results, key, big, TILE)[0]
        if _ok(tf) and _ok(r):
            out.append(f"- {RUNTIME_TITLES[key]} (LiteRT built-in kernels) at {big}: "
                       f"{r['cpu_median_s'] / tf['cpu_median_s']:.1f} x TensorFlow's CPU time, "
                       f"{r['peak_rss_mb'] / tf['peak_rss_mb']:.2f} x its peak memory; start-up "
                       f"{r['start_to_ready_s']:.1f} s and {r['idle_rss_mb']:.0f} MiB against "
                       f"{tf['start_to_ready_s']:.1f} s and {tf['idle_rss_mb']:.0f} MiB.")
    whole = _result(results, "tf", big, 0)[0]
    if _ok(tf) and _ok(whole):
        out.append(f"- A whole {big} frame in one TensorFlow pass peaks at "
                   f"{whole['peak_rss_mb']:.0f} MiB; tiled, {tf['peak_rss_mb']:.0f} MiB.")
    return out + [""] if out else []


def _cpu_ratio(results: Path, key: str, frame: str, tile: int) -> str:
    """Tiled / whole-frame median CPU time of one frame and runtime, or '-'."""
    tiled, whole = _result(results, key, frame, tile)[0], _result(results, key, frame, 0)[0]
    if tiled and whole and tiled.get("cpu_median_s") and whole.get("cpu_median_s"):
        return f"{tiled['cpu_median_s'] / whole['cpu_median_s']:.2f}"
    return "-"


def _columns(runtimes: list[str]) -> list[tuple[str, str, int]]:
    """(title, runtime key, tile size) of the table's columns."""
    columns = []
    for key in runtimes:
        columns.append((f"{RUNTIME_TITLES[key]}, tiles {TILE}", key, TILE))
        if key == "tf":
            if EXTRA_TF_TILE not in (None, TILE):
                columns.append((f"{RUNTIME_TITLES[key]}, tiles {EXTRA_TF_TILE}", key, EXTRA_TF_TILE))
            columns.append((f"{RUNTIME_TITLES[key]}, whole frame", key, 0))
    return columns


def _targets(frames: list[str], runtimes: list[str], results: Path) -> list[str]:
    ref, _ = _result(results, "tf", "12mp", 0)
    lines = []
    if "32mp" not in frames:
        return lines
    lines += ["Targets (issue 7): 32 MP network time, tiled and exact, at most 1.15 x the "
              "per-pixel time of whole-frame TensorFlow at 12 MP; peak memory at 32 MP at most "
              f"1 GB (10^9 bytes = {MIB_PER_GB:.0f} MiB). The time ratio is given for the wall "
              "time and for the CPU time (user + system, steadier on a shared machine).", "",
              "| runtime at 32 MP | s per MP (wall) | ratio, wall (target <= 1.15) "
              "| ratio, CPU time | peak RSS (target <= 954 MiB) |", "|---|---|---|---|---|"]
    ok_ref = ref and not ref.get("error") and not ref.get("skipped")
    for title, key, tile in _columns(runtimes):
        if tile == 0:
            continue
        r, _ = _result(results, key, "32mp", tile)
        if not r or r.get("error") or r.get("skipped"):
            lines.append(f"| {title} | - | - | - | - |")
            continue
        ratio = r["s_per_mp"] / ref["s_per_mp"] if ok_ref else None
        verdict = "-" if ratio is None else f"{ratio:.2f} ({'met' if ratio <= 1.15 else 'missed'})"
        cpu_ratio = "-"
        if ok_ref and r.get("cpu_median_s") and ref.get("cpu_median_s"):
            value = (r["cpu_median_s"] / r["config"]["resolution"]["megapixels"]) / (
                ref["cpu_median_s"] / ref["config"]["resolution"]["megapixels"])
            cpu_ratio = f"{value:.2f} ({'met' if value <= 1.15 else 'missed'})"
        mem = r["peak_rss_mb"]
        lines.append(f"| {title} | {r['s_per_mp']:.3f} | {verdict} | {cpu_ratio} | "
                     f"{mem:.0f} MiB ({'met' if mem <= MIB_PER_GB else 'missed'}) |")
    if ok_ref:
        lines += ["", f"Reference: whole-frame TensorFlow at 12 MP, {ref['s_per_mp']:.3f} s per MP "
                      f"({ref['median_s']:.2f} s, peak {ref['peak_rss_mb']:.0f} MiB)."]
    lines.append("")
    return lines


HEADING = "## Speed and memory (`microisp bench`)"
#: What benchmarks/results-published-topology holds (measured before the trained default landed).
EARLIER_NOTE = ("The published topology: 13,560 parameters (4 features per branch, fixed MHC base), "
                "the placeholder default weights of commit 563051d")


def write_section(doc: Path, section: str) -> None:
    """Replace the text between the markers, or put the section after its heading (appended with
    it when absent); the heading stays outside the markers, so that scripts which own a ``## ``
    section and end it at the next ``## `` heading (benchmarks/tiling_memory.py) never cut into
    this one. Nothing else in the file changes."""
    from microisp_cli.cli.docs import write_between

    body = section.strip("\n")  # START, the section's lines, END
    body = body[len(START):-len(END)].strip("\n")
    if not doc.exists():
        doc.parent.mkdir(parents=True, exist_ok=True)
        doc.write_text("# Benchmarks\n")
    write_between(doc, START, END, body, HEADING)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--work", type=Path, default=Path("/tmp/microisp-benchmarks"),
                        help="where the synthetic DNGs and developed files go")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES),
                        help="comma-separated subset of " + ", ".join(RUNTIMES))
    parser.add_argument("--quick", action="store_true", help="small frames only (checks the script)")
    parser.add_argument("--render-only", action="store_true", help="rewrite the section from saved JSON")
    parser.add_argument("--earlier", type=Path, default=ROOT / "benchmarks" / "results-published-topology",
                        help="a results folder of an earlier network, shown as a second table")
    parser.add_argument("--earlier-note", default=EARLIER_NOTE)
    parser.add_argument("--skip", default="", help="comma-separated steps to skip: bench, libraw, split, e2e")
    args = parser.parse_args()

    frames = QUICK_RUNS if args.quick else RUNS
    runtimes = [r for r in args.runtimes.split(",") if r]
    unknown = set(runtimes) - set(RUNTIMES)
    if unknown:
        parser.error(f"unknown runtime(s): {', '.join(sorted(unknown))}")
    skip = set(args.skip.split(",")) - {""}
    args.results.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    log_path = args.results / "commands.json"
    steps: dict[str, list[str]] = json.loads(log_path.read_text()) if log_path.exists() else {}
    if not args.render_only:
        big = list(frames)[-1]
        middle = list(frames)[len(frames) // 2]
        actions = [(f"bench:{key}", lambda log, key=key: run_benches(frames, [key], args.work,
                                                                     args.results, log))
                   for key in runtimes]
        actions += [
            ("libraw", lambda log: run_libraw(frames, args.work, args.results, log)),
            ("split", lambda log: run_develop_split(middle, args.work, args.results, log)),
            ("e2e", lambda log: run_develop_end_to_end(big, args.work, args.results, log))]
        for step, action in actions:
            if step.split(":")[0] in skip:
                continue
            steps[step] = []
            action(steps[step])
            log_path.write_text(json.dumps(steps, indent=2) + "\n")
    order = [f"bench:{key}" for key in RUNTIMES] + ["libraw", "split", "e2e"]
    commands = [c for step in order for c in steps.get(step, [])]
    write_section(args.doc, render(list(frames), runtimes, args.results, commands,
                                   (args.earlier, args.earlier_note)))
    print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
