"""What a measurement reads from the machine: statistics of run times, resident memory (exact
high-water mark and a sampler), CPU time, the CPU's FP32 peak, and the machine's description."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import resource
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from .config import MIB

# --- statistics -------------------------------------------------------------------------------
def summarise(times: Sequence[float]) -> dict[str, float]:
    """median, p90 (linear interpolation between runs), min and max of ``times``."""
    values = np.asarray(times, np.float64)
    return {
        "median_s": float(np.median(values)),
        "p90_s": float(np.percentile(values, 90)),
        "min_s": float(values.min()),
        "max_s": float(values.max()),
    }


# --- memory -----------------------------------------------------------------------------------
def read_status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmRSS``, ``VmHWM``) in MiB; None if unavailable."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss() -> bool:
    """Reset VmHWM to the current VmRSS (Linux >= 4.0). False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def process_peak_rss_mb() -> float:
    """``ru_maxrss`` of this process (whole lifetime), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


class RssSampler:
    """Background thread reading resident memory every ``interval`` seconds; keeps the maximum.

    Reads ``/proc/self/statm`` (one short line); the GIL is released by TensorFlow and LiteRT
    while they compute, so the thread keeps sampling during the network.
    """

    def __init__(self, interval: float = 0.005):
        self.interval = interval
        self.peak_mb = 0.0
        self.samples = 0
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="rss-sampler", daemon=True)

    def _read(self) -> float:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * self._page / MIB

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak_mb = max(self.peak_mb, self._read())
            except OSError:
                return
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


# --- CPU ----------------------------------------------------------------------------------------
def fp32_peak_gmacs() -> float | None:
    """This CPU's FP32 peak in GMAC/s, estimated: usable cores x SIMD lanes (16 with AVX-512, 8
    with AVX2) x the clock /proc/cpuinfo reports, one FMA per lane and cycle (one 512-bit FMA
    unit per core: 83 GMAC/s for this project's 2-core 2.6 GHz machine, the figure of issue 16;
    a CPU with two units peaks twice as high). None where /proc/cpuinfo does not say."""
    flags = _cpu_flags()
    if flags is None:
        return None
    lanes = 16 if "avx512f" in flags else 8 if "avx2" in flags else 4
    return len(os.sched_getaffinity(0)) * lanes * flags["mhz"] / 1000


def int8_peak_gmacs() -> float | None:
    """This CPU's INT8 peak in GMAC/s, on :func:`fp32_peak_gmacs`'s terms: four 8-bit MACs per
    32-bit lane and cycle with VNNI (``vpdpbusd``: AVX512-VNNI or AVX-VNNI), two without it
    (``vpmaddubsw`` then ``vpmaddwd``, two instructions for the same four)."""
    peak, flags = fp32_peak_gmacs(), _cpu_flags()
    if peak is None or flags is None:
        return None
    return peak * (4 if {"avx512_vnni", "avx_vnni"} & flags.keys() else 2)


def _cpu_flags() -> dict[str, float] | None:
    """The first CPU's flags in /proc/cpuinfo (as keys) and its clock (``"mhz"``), or None."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        mhz = float(next(ln for ln in lines if ln.startswith("cpu MHz")).split(":")[1])
        flags = next(ln for ln in lines if ln.startswith("flags")).split(":")[1].split()
    except (OSError, StopIteration, ValueError, IndexError):
        return None
    return {**dict.fromkeys(flags, 1.0), "mhz": mhz}


def cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- the machine --------------------------------------------------------------------------------
def _package_version(*names: str) -> str | None:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def machine_info() -> dict[str, Any]:
    """CPU, cores, memory and the versions that matter, without importing any runtime."""
    cpu = platform.processor() or platform.machine()
    flags: list[str] = []
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = [f for f in line.split(":", 1)[1].split()
                             if f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "fma")]
    except OSError:
        pass
    mem_total = None
    try:
        with open("/proc/meminfo") as meminfo:
            mem_total = int(meminfo.readline().split()[1]) / MIB
    except (OSError, ValueError, IndexError):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu,
        "cpu_flags": flags,
        "logical_cpus": os.cpu_count(),
        "usable_cpus": usable,
        "memory_gib": round(mem_total, 1) if mem_total else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "openvino": _package_version("openvino"),
        "tensorflow": _package_version("tensorflow-cpu", "tensorflow"),
        "ai_edge_litert": _package_version("ai-edge-litert"),
        "rawpy": _package_version("rawpy"),
        "microisp": __version__,
        "loadavg": [round(v, 2) for v in os.getloadavg()],
    }
