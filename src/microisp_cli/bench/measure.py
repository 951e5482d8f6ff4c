"""Measuring one configuration: in this process (:func:`measure`), or in a fresh one
(:func:`run_isolated` runs ``python -m microisp_cli.bench``, whose :func:`worker` measures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import MicroISPError
from ..model import macs_per_pixel
from .backends import FrameRun, LibRawRun, StagedRun, import_runtime, libraw_versions, make_runner
from .config import BenchConfig, BenchResult
from .resources import (RssSampler, cpu_seconds, fp32_peak_gmacs, int8_peak_gmacs, process_peak_rss_mb,
                        read_status_mb, reset_peak_rss, summarise)


# --- one configuration, in this process ---------------------------------------------------------
def measure(config: BenchConfig, spawned_at: float | None = None,
            workdir: str | Path | None = None) -> BenchResult:
    """Measure ``config`` in the current process (what the worker process calls).

    ``spawned_at``: ``time.time()`` when the parent started this process, for ``start_to_ready_s``.
    """
    result = BenchResult(config=config, loadavg=[round(os.getloadavg()[0], 2)])
    with tempfile.TemporaryDirectory(prefix="microisp-bench-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        job = (LibRawRun(config) if config.backend == "libraw" else
               StagedRun(config, work) if config.input else FrameRun(config))

        t0 = time.perf_counter()
        import_runtime(config.backend)
        t1 = time.perf_counter()
        runner = None if config.backend == "libraw" else make_runner(config)
        t2 = time.perf_counter()
        result.import_s, result.init_s = t1 - t0, t2 - t1
        if spawned_at is not None:
            result.start_to_ready_s = time.time() - spawned_at
        job.runner = runner

        result.idle_rss_mb = read_status_mb("VmRSS")
        exact_peak = reset_peak_rss()
        times: list[float] = []
        cpu: list[float] = []
        with RssSampler() as sampler:
            for _ in range(config.warmup + config.runs):
                cpu_start, start = cpu_seconds(), time.perf_counter()
                job.run()
                times.append(time.perf_counter() - start)
                cpu.append(cpu_seconds() - cpu_start)
        hwm = read_status_mb("VmHWM")
        result.peak_rss_sampled_mb = sampler.peak_mb
        if exact_peak and hwm is not None:
            result.peak_rss_mb = max(hwm, sampler.peak_mb)
            result.memory_method = ("VmHWM after resetting it via /proc/self/clear_refs just before "
                                    "the first run; fresh process per configuration")
        else:
            result.peak_rss_mb = sampler.peak_mb
            result.memory_method = (f"VmRSS sampled every {sampler.interval * 1000:.0f} ms during "
                                    "the runs (VmHWM reset not permitted); fresh process per configuration")
        result.process_peak_rss_mb = process_peak_rss_mb()

    timed = times[config.warmup:]
    result.first_run_s = times[0]
    result.runs_s = timed
    result.cpu_median_s = float(np.median(cpu[config.warmup:]))
    for key, value in summarise(timed).items():
        setattr(result, key, value)
    result.mp_per_s = config.resolution.megapixels / result.median_s
    result.s_per_mp = result.median_s / config.resolution.megapixels
    result.cpu_s_per_mp = result.cpu_median_s / config.resolution.megapixels
    if runner is None:  # LibRaw: no network
        result.network = libraw_versions()
    else:
        result.macs_per_pixel = macs_per_pixel(runner.config)
        gmacs = result.macs_per_pixel * result.mp_per_s / 1000
        fp32, int8 = fp32_peak_gmacs(), int8_peak_gmacs()
        result.fp32_peak_percent = 100 * gmacs / fp32 if fp32 else None
        result.int8_peak_percent = 100 * gmacs / int8 if int8 else None
    if isinstance(job, StagedRun):
        result.stages = job.summary(config.warmup)
    result.loadavg.append(round(os.getloadavg()[0], 2))
    return result


# --- one configuration, in a fresh process ------------------------------------------------------
def run_isolated(config: BenchConfig, timeout: float | None = None) -> BenchResult:
    """Measure ``config`` in a fresh ``python -m microisp_cli.bench`` process.

    A failing or killed worker (out of memory, crash) gives a result with ``error`` set.
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="microisp-bench-") as tmp:
        spec_path, result_path = Path(tmp) / "spec.json", Path(tmp) / "result.json"
        spec_path.write_text(json.dumps(config.to_dict()))
        command = [sys.executable, "-m", "microisp_cli.bench", str(spec_path), str(result_path),
                   repr(time.time())]
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return BenchResult(config=config, error=f"timed out after {timeout:.0f} s")
        if proc.returncode != 0 or not result_path.exists():
            tail = (proc.stderr or "").strip().splitlines()[-3:]
            why = "killed (out of memory?)" if proc.returncode in (-9, 137) else f"exit {proc.returncode}"
            return BenchResult(config=config, error=f"worker {why}: {' | '.join(tail)}".strip())
        return BenchResult.from_dict(json.loads(result_path.read_text()))


def worker(argv: Sequence[str]) -> int:
    """``python -m microisp_cli.bench SPEC RESULT [SPAWNED_AT]``: :func:`measure` the
    configuration in ``SPEC`` (JSON), its result written to ``RESULT``."""
    spec_path, result_path = argv[0], argv[1]
    spawned_at = float(argv[2]) if len(argv) > 2 else None
    config = BenchConfig.from_dict(json.loads(Path(spec_path).read_text()))
    try:
        result = measure(config, spawned_at)
    except MicroISPError as exc:
        result = BenchResult(config=config, error=str(exc))
    Path(result_path).write_text(json.dumps(result.to_dict()))
    return 0
