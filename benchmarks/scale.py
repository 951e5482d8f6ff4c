#!/usr/bin/env python3
"""Files per second of ``microisp develop`` serially and on a local Dask cluster (docs/scale.md).

Writes ``--count`` synthetic DNGs of ``--size`` (a smooth scene with texture and shot noise, 12
bits, as-shot white balance) and measures, for the serial path and for ``--workers`` N:

* **end to end**: ``microisp develop IN/ -o OUT/ [--workers N]`` in a fresh process, from start
  to exit: TensorFlow import, runner builds and cluster start-up included, as a user sees it;
* **warm**: the same files again with everything started and warmed up (a runner built and one
  file developed in each worker first), i.e. the rate a long batch settles at: the serial loop
  of ``batch_step.develop_file`` in this process, or ``parallel.develop_files`` on a running cluster.

All of them are started first (the serial runner in this process, one warm local cluster per
worker count), then measured in rounds, each round taking every configuration in turn, so that
they share the machine's background load alike; ``--repeats`` rounds, the table shows the median
and the range. CPU seconds per file (user + system: this process, which also hosts the local
scheduler, plus the worker processes) show the cost of each layout independently of the load.
The load average is recorded before and after every measurement, because this machine is shared. The
section of docs/scale.md between ``<!-- scale:start -->`` and ``<!-- scale:end -->`` is rewritten
with ``--write-doc``; the raw numbers go to ``--results`` (JSON). Usage::

    python benchmarks/scale.py --write-doc                   # 8 FullHD files, 1 and 2 workers
    python benchmarks/scale.py --count 4 --size 640x480      # a quick check of the script
    python benchmarks/scale.py --render runs/scale.json --write-doc   # the table again, no runs
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- scale:start -->", "<!-- scale:end -->"
NEUTRAL = np.array([0.5, 1.0, 0.7])
#: The environment at start: Dask's nanny adds OMP_NUM_THREADS=1 and others to this process's
#: environment when it starts workers, and the end-to-end runs must not inherit them.
CLEAN_ENVIRON = dict(os.environ)


def write_frame(folder: Path, width: int, height: int, env: dict) -> Path:
    """One :func:`write_inputs` DNG in ``folder``, written by a child process (a child's peak RSS,
    ``ru_maxrss``, starts from its parent's at fork, so a measuring process must stay small)."""
    import subprocess
    import sys

    write = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import scale; "
             f"scale.write_inputs(scale.Path({str(folder)!r}), 1, {width}, {height})")
    subprocess.run([sys.executable, "-c", write], check=True, env=env)
    return folder / "frame00.dng"


def write_inputs(folder: Path, count: int, width: int, height: int) -> list[Path]:
    """``count`` 12-bit RGGB DNGs of a smooth scene with texture and shot noise."""
    from microisp_cli.bayer import mosaic_rggb
    from microisp_cli.training.dng import write_dng

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for i in range(count):
        phase = i * 0.7
        scene = np.stack([0.15 + 0.6 * x / width, 0.1 + 0.5 * y / height,
                          0.3 + 0.2 * np.sin(x / 37.0 + phase) * np.cos(y / 23.0)], -1)
        scene = np.clip(scene * (0.8 + 0.2 * np.sin((x + y) / 91.0 + phase))[..., None], 0, 1)
        camera = mosaic_rggb(scene * NEUTRAL, "RGGB") * (4095 - 64)
        noisy = rng.poisson(np.maximum(camera, 0) / 4.0) * 4.0 + 64
        mosaic = np.clip(noisy, 0, 4095).astype(np.uint16)
        paths.append(write_dng(folder / f"frame{i:02d}.dng", mosaic, "RGGB", black_level=64,
                               white_level=4095, as_shot_neutral=NEUTRAL))
    return paths


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load() -> float:
    return round(os.getloadavg()[0], 2)


def end_to_end(inputs: Path, out: Path, workers: int | None) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-c", "from microisp_cli.cli.main import main; main()",
               "develop", str(inputs), "-o", str(out), "--quiet"]
    if workers:
        command += ["--workers", str(workers)]
    before = load()
    started = time.perf_counter()
    subprocess.run(command, check=True, env={**CLEAN_ENVIRON, "TF_CPP_MIN_LOG_LEVEL": "3"},
                   stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "load_before": before, "load_after": load()}


def _warm_worker(weights, source: str, output: str, threads: int) -> int:
    """On a worker: build its runner and develop one file (the first develop traces the network)."""
    from microisp_cli.batch_step import develop_file
    from microisp_cli.develop import cached_runner

    develop_file(source, output, weights, runner=cached_runner(weights, "tf", None, threads),
                 overwrite=True)
    return os.getpid()


def _cpu_seconds() -> float:
    """CPU time (user + system, all threads) of the calling process."""
    times = os.times()
    return times.user + times.system


class Serial:
    """The serial path in this process: one runner (the runtime's default threads), warmed up."""

    def __init__(self, weights, pairs):
        from microisp_cli.batch_step import develop_file
        from microisp_cli.develop import cached_runner

        self.weights, self.develop_file = weights, develop_file
        self.runner = cached_runner(weights, "tf", None, None)
        develop_file(pairs[0][0], pairs[0][1], weights, runner=self.runner, overwrite=True)

    def measure(self, pairs) -> dict:
        before, cpu = load(), _cpu_seconds()
        started = time.perf_counter()
        for source, output in pairs:
            result = self.develop_file(source, output, self.weights, runner=self.runner, overwrite=True)
            assert result.status == "done", result
        return {"seconds": time.perf_counter() - started, "cpu_seconds": _cpu_seconds() - cpu,
                "load_before": before, "load_after": load()}


class Cluster:
    """A local cluster of ``workers`` processes (``parallel.connect``), each warmed up."""

    def __init__(self, stack, workers: int, weights, pairs, scratch: Path):
        from microisp_cli.parallel import connect, local_threads

        self.weights, self.threads = weights, local_threads(workers)
        self.client = stack.enter_context(connect(workers=workers))
        warm = [self.client.submit(_warm_worker, weights, str(pairs[0][0]), str(scratch / f"w{workers}-{i}.png"),
                                   self.threads, workers=[address], pure=False)
                for i, address in enumerate(self.client.nthreads())]
        self.client.gather(warm)

    def _cpu(self) -> float:
        """CPU seconds of the worker processes plus this one (client and scheduler run here)."""
        return sum(self.client.run(_cpu_seconds).values()) + _cpu_seconds()

    def measure(self, pairs) -> dict:
        from microisp_cli.parallel import develop_files

        before, cpu = load(), self._cpu()
        started = time.perf_counter()
        results = list(develop_files(pairs, self.weights, client=self.client, threads=self.threads,
                                     overwrite=True))
        seconds = time.perf_counter() - started
        assert all(r.status == "done" for r in results), results
        return {"seconds": seconds, "cpu_seconds": self._cpu() - cpu, "load_before": before,
                "load_after": load()}


def summary(count: int, runs: list[dict]) -> dict:
    rates = [count / r["seconds"] for r in runs]
    loads = [r[k] for r in runs for k in ("load_before", "load_after")]
    cpu = [r["cpu_seconds"] / count for r in runs if "cpu_seconds" in r]
    return {"files_per_s": statistics.median(rates), "min": min(rates), "max": max(rates),
            "cpu_per_file": statistics.median(cpu) if cpu else None,
            "load_min": min(loads), "load_max": max(loads), "runs": runs}


def table(results: dict) -> str:
    meta = results["meta"]
    lines = [
        f"{meta['count']} synthetic {meta['size']} DNGs ({meta['megapixels']:.1f} MP, 12-bit RGGB) to "
        f"8-bit PNG, default weights, TensorFlow backend, tile size {meta['tile_size']}; "
        f"{meta['cores']} cores, {meta['machine']}; Python {meta['python']}, "
        f"dask.distributed {meta['distributed']}; measured {meta['date']}.",
        "",
        "| how | workers x backend threads | end to end: files/s (wall s) | warm: files/s, median (range) "
        "| speed-up (warm) | CPU s per file (warm) | load average during the runs |",
        "|---|---|---|---|---|---|---|",
    ]
    base = results["serial"]["warm"]["files_per_s"]
    for name, row in results.items():
        if name == "meta":
            continue
        e2e, warm = row["end_to_end"], row["warm"]
        loads = [x for part in (e2e, warm) for x in (part["load_min"], part["load_max"])]
        lines.append(
            f"| {row['how']} | {row['layout']} "
            f"| {e2e['files_per_s']:.3f} ({meta['count'] / e2e['files_per_s']:.0f} s) "
            f"| {warm['files_per_s']:.3f} ({warm['min']:.3f}-{warm['max']:.3f}) "
            f"| {warm['files_per_s'] / base:.2f}x | {warm['cpu_per_file']:.2f} "
            f"| {min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines)


def write_doc(text: str, doc: Path, start: str = START, end: str = END) -> None:
    """Replace what ``doc`` holds between the markers ``start`` and ``end`` with ``text``."""
    from microisp_cli.cli.docs import write_between

    write_between(doc, start, end, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=8)
    parser.add_argument("--size", default="1920x1080", help="WxH of each frame")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--results", type=Path, default=ROOT / "runs" / "scale.json",
                        help="JSON of every measurement (runs/ is not tracked)")
    parser.add_argument("--write-doc", action="store_true", help="rewrite the table in docs/scale.md")
    parser.add_argument("--render", type=Path, metavar="JSON", help="measure nothing: the table from "
                        "the JSON of an earlier run")
    args = parser.parse_args()
    if args.render:
        text = table(json.loads(args.render.read_text()))
        print(text)
        if args.write_doc:
            write_doc(text, ROOT / "docs" / "scale.md")
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    width, height = map(int, args.size.lower().split("x"))

    import distributed

    from microisp_cli import defaults
    from microisp_cli.parallel import cpu_count, local_threads
    from microisp_cli.weights import load_weights

    with tempfile.TemporaryDirectory(prefix="microisp-scale-") as tmp:
        tmp = Path(tmp)
        sources = write_inputs(tmp / "in", args.count, width, height)
        pairs = [(s, tmp / "warm-out" / (s.stem + ".png")) for s in sources]
        weights = load_weights()
        cores = cpu_count()
        results: dict = {"meta": {
            "count": args.count, "size": f"{width}x{height}", "megapixels": width * height / 1e6,
            "tile_size": defaults.TILE_SIZE, "cores": cores,
            "machine": cpu_model(),
            "python": platform.python_version(), "distributed": distributed.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}}
        configs = [("serial", None)] + [(f"workers{n}", n) for n in args.workers]
        runs: dict[str, dict[str, list]] = {name: {"end_to_end": [], "warm": []} for name, _ in configs}
        with contextlib.ExitStack() as stack:
            print("starting: the serial runner and a warm local cluster per worker count ...", flush=True)
            runners = {name: Serial(weights, pairs) if workers is None
                       else Cluster(stack, workers, weights, pairs, tmp) for name, workers in configs}
            for round_ in range(args.repeats):  # rounds interleave the configurations: same load
                for name, workers in configs:
                    runs[name]["end_to_end"].append(end_to_end(tmp / "in", tmp / "e2e-out", workers))
                    runs[name]["warm"].append(runners[name].measure(pairs))
                    print(f"round {round_ + 1}: {name}: end to end "
                          f"{runs[name]['end_to_end'][-1]['seconds']:.1f} s, warm "
                          f"{runs[name]['warm'][-1]['seconds']:.1f} s", flush=True)
        for name, workers in configs:
            results[name] = {
                "how": "serial (no flag)" if workers is None else f"`--workers {workers}`",
                "layout": f"1 x runtime default ({cores})" if workers is None
                else f"{workers} x {local_threads(workers, cores)}",
                "end_to_end": summary(args.count, runs[name]["end_to_end"]),
                "warm": summary(args.count, runs[name]["warm"])}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    text = table(results)
    print(text)
    if args.write_doc:
        write_doc(text, ROOT / "docs" / "scale.md")


if __name__ == "__main__":
    main()
