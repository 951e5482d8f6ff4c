"""Timing and peak-memory measurement of the network, in the spirit of TFLite's benchmark_model.

Each configuration (frame size, backend, precision, tile size, threads) runs in a **fresh Python
process** (``python -m microisp_cli.bench SPEC RESULT``, :func:`measure.worker`), so that

- its start-up is measured as a user pays it: process start, importing the runtime, loading the
  weights or ``.tflite`` file (``import_s``, ``init_s``, ``start_to_ready_s``);
- its memory peak is its own, not that of an earlier, larger configuration.

Inside that process the sequence is: make the input (a deterministic synthetic packed frame, or
the decoded ``--input`` DNG), build the runner (LibRaw, the ``libraw`` backend, has none), reset the kernel's resident-memory high-water
mark (``echo 5 > /proc/self/clear_refs``), then ``warmup + runs`` runs of the whole frame. The
first run is reported on its own (it includes tracing and allocation); the runs after the
``warmup`` ones are the timed runs, summarised as median, p90, min and max.

``cpu_median_s`` is the median user + system CPU time of the timed runs (all threads): on a
shared machine it moves less than the wall time.

Memory figures (MiB of resident memory, VmRSS/VmHWM from ``/proc/self/status``):

- ``idle_rss_mb``: resident after start-up and input, before the first run (runtime + weights +
  input frame);
- ``peak_rss_mb``: the peak **of the runs**: VmHWM read after the runs, having been reset to the
  current resident size just before the first one. This is exact (kernel-tracked), not sampled
  and not estimated, and contains nothing from start-up. Where the reset is not allowed it falls
  back to ``peak_rss_sampled_mb`` and ``memory_method`` says so;
- ``peak_rss_sampled_mb``: the largest VmRSS a background thread saw, read every 5 ms during the
  runs (a cross-check; it can miss short spikes);
- ``process_peak_rss_mb``: ``ru_maxrss`` of the whole benchmark process, start-up included.

Results are plain dataclasses with ``to_dict()``; :func:`bench_report` is the JSON document that
``microisp bench --json`` writes. No click here: the CLI renders.

The package: ``config`` (:class:`BenchConfig`, :class:`BenchResult`), ``resources`` (statistics,
memory, CPU, the machine), ``backends`` (what a run runs: the network on a runtime, a staged
develop, or LibRaw), ``measure`` (one configuration, here or in a fresh process) and ``jobs``
(several configurations, the report). The names below are the public interface.
"""

from ..errors import BenchError
from ..resolution import Resolution, parse_resolution
from .backends import export_for_bench, libraw_develop, model_description
from .config import BENCH_BACKENDS, FORMAT, PRECISIONS, BenchConfig, BenchResult
from .jobs import (bench_report, estimate_whole_frame_mb, memory_budget_mb, plan, run_benchmarks,
                   tiling_costs)
from .measure import measure, run_isolated
from .resources import (RssSampler, fp32_peak_gmacs, int8_peak_gmacs, machine_info, process_peak_rss_mb,
                        read_status_mb, reset_peak_rss, summarise)

__all__ = [
    "BENCH_BACKENDS", "FORMAT", "PRECISIONS", "BenchConfig", "BenchError", "BenchResult",
    "Resolution", "RssSampler", "bench_report", "estimate_whole_frame_mb", "export_for_bench",
    "fp32_peak_gmacs", "int8_peak_gmacs", "libraw_develop", "machine_info", "measure", "memory_budget_mb",
    "model_description", "parse_resolution", "plan", "process_peak_rss_mb", "read_status_mb",
    "reset_peak_rss", "run_benchmarks", "run_isolated", "summarise", "tiling_costs",
]
