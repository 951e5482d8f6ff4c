"""Several configurations: :func:`plan` them, :func:`run_benchmarks` each in its own process
(whole frames that would not fit in memory skipped), compare tiled with whole-frame runs
(:func:`tiling_costs`), and :func:`bench_report`, the JSON document of ``microisp bench --json``."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .. import defaults
from ..resolution import Resolution
from ..state_store import available_memory
from .backends import export_for_bench, model_description
from .config import FORMAT, MIB, BenchConfig, BenchResult
from .measure import run_isolated
from .resources import machine_info


# --- planning several configurations ------------------------------------------------------------
def estimate_whole_frame_mb(resolution: Resolution, backend: str, features: int = 4) -> float:
    """Rough peak resident memory of a whole-frame run, from measurements on this project's
    machine (see ``defaults.BENCH_WHOLE_FRAME_BYTES_PER_PIXEL``, measured with 4 features per
    branch; the activations grow in proportion to ``features``)."""
    base, per_pixel = defaults.BENCH_WHOLE_FRAME_BYTES_PER_PIXEL[backend]
    return base + per_pixel * max(features, 4) / 4 * resolution.pixels / MIB


def memory_budget_mb() -> float:
    """How much a whole-frame run may take: ``defaults.BENCH_MEMORY_LIMIT_MB``, and at most
    half of the memory the kernel reports available now."""
    limit = float(defaults.BENCH_MEMORY_LIMIT_MB)
    available = available_memory()
    return limit if available is None else min(limit, available / MIB / 2)


def plan(resolutions: Sequence[Resolution], tile_sizes: Sequence[int] | None = None,
         **options: Any) -> list[BenchConfig]:
    """The configurations for ``microisp bench``: each resolution x each tile size.

    Without ``tile_sizes``: the network's default tile size and, beside it, the whole frame (tile size 0).
    Whole-frame configurations that would not fit in memory (:func:`estimate_whole_frame_mb` over
    :func:`memory_budget_mb`) are returned too and marked skipped by :func:`run_benchmarks`.
    """
    sizes = list(tile_sizes) if tile_sizes else [None, 0]
    return [BenchConfig(resolution=res, tile_size=size, **options)
            for res in resolutions for size in dict.fromkeys(sizes)]


def run_benchmarks(configs: Sequence[BenchConfig],
                   progress: Callable[[int, int, BenchConfig | None], None] | None = None,
                   check_memory: bool = True) -> list[BenchResult]:
    """Run each configuration in its own process; whole frames that would not fit are skipped.

    ``tflite`` configurations without a model get the default weights exported (segmented, at
    their precision) once, here, before any measurement; ``model_file`` records it.
    """
    results = []
    budget = memory_budget_mb()
    exports: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="microisp-bench-models-") as models:
        for index, config in enumerate(configs):
            if progress:
                progress(index, len(configs), config)
            if check_memory and config.tile_size == 0 and config.backend != "libraw":
                features = int((model_description(config).get("model") or {}).get("features", 4))
                need = estimate_whole_frame_mb(config.resolution, config.backend, features)
                if need > budget:
                    results.append(BenchResult(config=config, skipped=(
                        f"whole frame needs about {need / 1024:.1f} GiB, over the "
                        f"{budget / 1024:.1f} GiB budget")))
                    continue
            run_config, model_file = config, None
            if config.backend == "tflite":
                if config.model:
                    path = Path(config.model)
                    model_file = {"path": str(path), "exported": False,
                                  "size_bytes": path.stat().st_size if path.is_file() else None}
                else:
                    if config.precision not in exports:
                        path, seconds = export_for_bench(config.precision, models)
                        exports[config.precision] = {
                            "path": None, "exported": True, "weights": defaults.WEIGHTS,
                            "export_s": round(seconds, 2), "size_bytes": path.stat().st_size,
                            "file": str(path)}
                    model_file = {k: v for k, v in exports[config.precision].items() if k != "file"}
                    run_config = dataclasses.replace(config, model=exports[config.precision]["file"])
            result = run_isolated(run_config)
            result.config, result.model_file = config, model_file
            result.network = model_description(run_config)
            results.append(result)
    if progress:
        progress(len(configs), len(configs), None)
    return results


def tiling_costs(results: Sequence[BenchResult]) -> list[dict[str, Any]]:
    """Tiled / whole-frame medians (wall time, CPU time, peak memory) for each configuration
    measured both ways."""
    whole = {}
    for r in results:
        if r.ok and r.config.tile_size == 0:
            whole[_group_key(r.config)] = r
    rows = []
    for r in results:
        if r.ok and r.config.tile_size != 0 and _group_key(r.config) in whole:
            w = whole[_group_key(r.config)]
            rows.append({
                "tiled": r.config.label, "whole_frame": w.config.label,
                "time_ratio": r.median_s / w.median_s,
                "cpu_ratio": (r.cpu_median_s / w.cpu_median_s) if r.cpu_median_s and w.cpu_median_s else None,
                "peak_rss_ratio": (r.peak_rss_mb / w.peak_rss_mb) if r.peak_rss_mb and w.peak_rss_mb else None,
            })
    return rows


def _group_key(config: BenchConfig) -> tuple:
    c = dataclasses.replace(config, tile_size=0)
    return (c.resolution.width, c.resolution.height, c.backend, c.precision, c.model, c.threads,
            c.input)


def bench_report(results: Sequence[BenchResult], command: Sequence[str] | None = None,
                 machine: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON document of a benchmark: machine, every result, tiling costs."""
    return {
        "format": FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": list(command) if command else None,
        "machine": machine or machine_info(),
        "results": [r.to_dict() for r in results],
        "tiling_costs": tiling_costs(results),
    }
