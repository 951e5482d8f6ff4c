"""Timing and peak-memory measurement of the network, in the spirit of TFLite's benchmark_model.

Each configuration (frame size, backend, precision, tile size, threads) runs in a **fresh Python
process** (``python -m microisp_cli.bench SPEC RESULT``), so that

- its start-up is measured as a user pays it: process start, importing the runtime, loading the
  weights or ``.tflite`` file (``import_s``, ``init_s``, ``start_to_ready_s``);
- its memory peak is its own, not that of an earlier, larger configuration.

Inside that process the sequence is: make the input (a deterministic synthetic packed frame, or
the decoded ``--input`` DNG), build the runner, reset the kernel's resident-memory high-water
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
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__, defaults
from .errors import BenchError, MicroISPError
from .resolution import Resolution, parse_resolution
from .model import macs_per_pixel
from .runtimes import BACKENDS

FORMAT = "microisp-bench/1"
PRECISIONS = ("fp32", "fp16", "int8")
_MIB = 1024 * 1024


# --- what to run ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One configuration to measure. ``tile_size`` 0 runs the whole frame in one piece.

    ``model``: for ``tflite`` the ``.tflite`` file (exported on the fly from the default weights
    when None); for ``tf`` a weights name or file (the default weights when None).
    ``input``: a RAW file; each run is then decode + network + render + encode, timed per stage,
    and ``resolution`` is that of the file.
    """

    resolution: Resolution
    backend: str = defaults.BACKEND
    precision: str = "fp32"
    model: str | None = None
    threads: int | None = defaults.THREADS
    tile_size: int = defaults.TILE_SIZE
    attention: str = defaults.ATTENTION
    runs: int = defaults.BENCH_RUNS
    warmup: int = defaults.BENCH_WARMUP
    input: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise BenchError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.precision not in PRECISIONS:
            raise BenchError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.backend != "tflite" and self.precision != "fp32":
            raise BenchError(f"the {self.backend} backend runs fp32 only; fp16 and int8 are "
                             "TFLite models (--backend tflite)")
        if self.runs < 1 or self.warmup < 0:
            raise BenchError(f"need runs >= 1 and warmup >= 0, got runs={self.runs}, warmup={self.warmup}")
        if self.tile_size < 0:
            raise BenchError(f"tile size must be >= 0 (0: whole frame), got {self.tile_size}")
        if self.threads is not None and self.threads < 1:
            raise BenchError(f"threads must be >= 1, got {self.threads}")

    @property
    def runtime(self) -> str:
        """The runtime's name for tables: ``OpenVINO``, ``TF`` or ``TFLite FP32`` (...)."""
        if self.backend == "tflite":
            return f"TFLite {self.precision.upper()}"
        return {"tf": "TF", "openvino": "OpenVINO"}[self.backend]

    @property
    def label(self) -> str:
        tiles = "whole frame" if self.tile_size == 0 else f"tiles {self.tile_size}"
        return f"{self.resolution.label} {self.runtime} {tiles}"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["resolution"] = self.resolution.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchConfig:
        data = dict(data)
        res = data.pop("resolution")
        resolution = Resolution(int(res["width"]), int(res["height"]),
                                res["name"] if res["name"] != f"{res['width']}x{res['height']}" else "")
        return cls(resolution=resolution, **data)


@dataclasses.dataclass
class BenchResult:
    """What one configuration measured. Times in seconds, memory in MiB."""

    config: BenchConfig
    start_to_ready_s: float | None = None
    import_s: float | None = None
    init_s: float | None = None
    first_run_s: float | None = None
    runs_s: list[float] = dataclasses.field(default_factory=list)
    median_s: float | None = None
    p90_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    mp_per_s: float | None = None
    s_per_mp: float | None = None
    cpu_median_s: float | None = None
    cpu_s_per_mp: float | None = None
    macs_per_pixel: float | None = None
    fp32_peak_percent: float | None = None
    idle_rss_mb: float | None = None
    peak_rss_mb: float | None = None
    peak_rss_sampled_mb: float | None = None
    process_peak_rss_mb: float | None = None
    memory_method: str = ""
    stages: dict[str, dict[str, float]] | None = None
    model_file: dict[str, Any] | None = None
    network: dict[str, Any] | None = None
    loadavg: list[float] = dataclasses.field(default_factory=list)
    skipped: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.skipped is None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["config"] = self.config.to_dict()
        data["label"] = self.config.label
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchResult:
        data = dict(data)
        data.pop("label", None)
        config = BenchConfig.from_dict(data.pop("config"))
        return cls(config=config, **data)


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
    return peak / _MIB if sys.platform == "darwin" else peak / 1024


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
            return int(statm.read().split()[1]) * self._page / _MIB

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


# --- inputs and runners -----------------------------------------------------------------------
#: Levels of the synthetic frame: a 12-bit sensor with a black level, like a phone's.
SYNTHETIC_BLACK = 256
SYNTHETIC_WHITE = 4095


def synthetic_mosaic(resolution: Resolution, seed: int = 0) -> np.ndarray:
    """A deterministic RGGB Bayer frame (H, W) uint16, 12-bit (black 256, white 4095).

    A smooth colour scene (low-frequency waves per colour, a diagonal gradient) with mild noise:
    image-like enough for LibRaw and for PNG compression, and the same on every machine. The
    network's cost does not depend on the content.
    """
    h, w = resolution.height, resolution.width
    y = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, w, dtype=np.float32)[None, :]
    rng = np.random.default_rng(seed)
    out = np.empty((h, w), np.uint16)
    span = SYNTHETIC_WHITE - SYNTHETIC_BLACK
    for (dy, dx), (fy, fx, level) in {(0, 0): (3.0, 5.0, 0.30), (0, 1): (4.0, 3.0, 0.45),
                                      (1, 0): (4.0, 3.0, 0.45), (1, 1): (5.0, 2.0, 0.25)}.items():
        ys, xs = y[dy::2], x[:, dx::2]
        scene = level * (1.0 + 0.6 * np.sin(2 * np.pi * fy * ys) * np.cos(2 * np.pi * fx * xs))
        scene = scene * (0.6 + 0.4 * (xs + ys) / 2)
        scene += rng.standard_normal(scene.shape, dtype=np.float32) * 0.005
        np.clip(scene, 0.0, 1.0, out=scene)
        out[dy::2, dx::2] = (SYNTHETIC_BLACK + scene * span + 0.5).astype(np.uint16)
    return out


def synthetic_packed(resolution: Resolution, seed: int = 0) -> np.ndarray:
    """:func:`synthetic_mosaic` packed as the network's input: (H/2, W/2, 4) float32 in [0, 1],
    black-subtracted and scaled to the white level, channels R, Gr, Gb, B."""
    mosaic = synthetic_mosaic(resolution, seed)
    h, w = resolution.packed_shape
    packed = np.empty((h, w, 4), np.float32)
    scale = np.float32(1.0 / (SYNTHETIC_WHITE - SYNTHETIC_BLACK))
    for c, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        plane = packed[..., c]
        plane[...] = mosaic[dy::2, dx::2]
        plane -= SYNTHETIC_BLACK
        plane *= scale
    return packed


def _import_runtime(backend: str) -> None:
    if backend == "openvino":
        import openvino  # noqa: F401
    elif backend == "tf":
        from .tensorflow_import import import_tensorflow

        import_tensorflow()
    else:
        import ai_edge_litert.interpreter  # noqa: F401


def tflite_path(config: BenchConfig) -> Path:
    """The ``.tflite`` file a ``tflite`` configuration runs (``run_benchmarks`` exports one when
    none is given, before the measured process starts)."""
    if not config.model:
        raise BenchError("a tflite configuration needs a model file (--model FILE.tflite)")
    path = Path(config.model).expanduser()
    if not path.is_file():
        raise BenchError(f"{config.model}: no such .tflite file")
    return path


def export_for_bench(precision: str, directory: str | Path) -> tuple[Path, float]:
    """Export the default weights to a segmented ``.tflite`` at ``precision`` in ``directory``.

    Returns the file and the seconds the export took. Runs in the calling process (TensorFlow is
    imported there, not in the measured process).
    """
    try:
        from .export import export_tflite
    except ImportError:
        raise BenchError("no exporter in this installation: pass --model FILE.tflite") from None
    from .weights import load_weights

    out = Path(directory) / f"microisp-default-{precision}.tflite"
    start = time.perf_counter()
    export_tflite(load_weights(None), out, precision=precision, check=False)
    return out, time.perf_counter() - start


def make_runner(config: BenchConfig):
    """The ``SegmentRunner`` for ``config`` (imports its runtime)."""
    if config.backend != "tflite":
        from .develop import make_runner as runner_for
        from .weights import load_weights

        return runner_for(load_weights(config.model), config.backend, threads=config.threads)
    from .runtimes.litert import LiteRTRunner

    return LiteRTRunner(str(tflite_path(config)), threads=config.threads)


def fp32_peak_gmacs() -> float | None:
    """This CPU's FP32 peak in GMAC/s, estimated: usable cores x SIMD lanes (16 with AVX-512, 8
    with AVX2) x the clock /proc/cpuinfo reports, one FMA per lane and cycle (one 512-bit FMA
    unit per core: 83 GMAC/s for this project's 2-core 2.6 GHz machine, the figure of issue 16;
    a CPU with two units peaks twice as high). None where /proc/cpuinfo does not say."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        mhz = float(next(ln for ln in info.splitlines() if ln.startswith("cpu MHz")).split(":")[1])
    except (OSError, StopIteration, ValueError):
        return None
    lanes = 16 if " avx512f" in info else 8 if " avx2" in info else 4
    return len(os.sched_getaffinity(0)) * lanes * mhz / 1000


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads), in seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drop(y: int, x: int, rgb: np.ndarray) -> None:
    """The benchmark's sink: output tiles are computed and dropped (not kept or encoded)."""


# --- one configuration, in this process ---------------------------------------------------------
def measure(config: BenchConfig, spawned_at: float | None = None,
            workdir: str | Path | None = None) -> BenchResult:
    """Measure ``config`` in the current process (what the worker process calls).

    ``spawned_at``: ``time.time()`` when the parent started this process, for ``start_to_ready_s``.
    """
    from .tiling import ArraySource, run_tiled

    result = BenchResult(config=config, loadavg=[round(os.getloadavg()[0], 2)])
    with tempfile.TemporaryDirectory(prefix="microisp-bench-") as tmp:
        work = Path(workdir) if workdir else Path(tmp)
        if config.input:
            stages = _StagedRun(config, work)
            one_run = stages.run
        else:
            source = ArraySource(synthetic_packed(config.resolution))
            stages = None

        t0 = time.perf_counter()
        _import_runtime(config.backend)
        t1 = time.perf_counter()
        runner = make_runner(config)
        t2 = time.perf_counter()
        result.import_s, result.init_s = t1 - t0, t2 - t1
        if spawned_at is not None:
            result.start_to_ready_s = time.time() - spawned_at
        if stages is not None:
            stages.runner = runner
        else:
            def one_run() -> None:
                run_tiled(runner, source, _drop, config.tile_size, config.attention)

        result.idle_rss_mb = read_status_mb("VmRSS")
        exact_peak = reset_peak_rss()
        times: list[float] = []
        cpu: list[float] = []
        with RssSampler() as sampler:
            for _ in range(config.warmup + config.runs):
                cpu_start, start = _cpu_seconds(), time.perf_counter()
                one_run()
                times.append(time.perf_counter() - start)
                cpu.append(_cpu_seconds() - cpu_start)
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
    result.macs_per_pixel = macs_per_pixel(runner.config)
    peak = fp32_peak_gmacs()
    if peak:
        result.fp32_peak_percent = 100 * result.macs_per_pixel * result.mp_per_s / 1000 / peak
    if stages is not None:
        result.stages = stages.summary(config.warmup)
    result.loadavg.append(round(os.getloadavg()[0], 2))
    return result


class _StagedRun:
    """One RAW file developed as ``microisp develop`` does, with each stage timed.

    decode (LibRaw), pack (black level, gains, packing: the source's ``read``), model (the tiled
    network: everything in ``run_tiled`` that is not pack or render), render (colour matrix, sRGB
    curve, quantisation: the sink) and encode (PNG, 8-bit, sRGB profile, atomic write), through
    ``develop.run_pipeline``, the pipeline ``microisp develop`` runs.
    """

    STAGES = ("decode", "pack", "model", "render", "encode")

    def __init__(self, config: BenchConfig, workdir: Path):
        self.config = config
        self.output = workdir / "bench-output.png"
        self.runner = None
        self.conditioning = _conditioning_for(config)  # loaded here, not inside a timed run
        self.times: dict[str, list[float]] = {s: [] for s in self.STAGES}

    def run(self) -> None:
        from . import encode
        from .develop import run_pipeline
        from .raw import decode

        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        mosaic = decode(self.config.input)
        t1 = time.perf_counter()
        image = run_pipeline(mosaic, self.conditioning, self.runner, defaults.BITS_PNG, self.config.tile_size,
                             self.config.attention, timings=timings)
        t2 = time.perf_counter()
        encode.write_image(self.output, image, overwrite=True)
        t3 = time.perf_counter()
        for stage, seconds in (("decode", t1 - t0), ("pack", timings["pack"]),
                               ("model", t2 - t1 - timings["pack"] - timings["render"]),
                               ("render", timings["render"]), ("encode", t3 - t2)):
            self.times[stage].append(seconds)

    def summary(self, warmup: int) -> dict[str, dict[str, float]]:
        return {stage: summarise(values[warmup:]) for stage, values in self.times.items() if values}


def _conditioning_for(config: BenchConfig):
    """How the runner's weights want their input: from the weights (tf) or the export's
    metadata (tflite), else the default weights'."""
    from .weights import Conditioning, load_weights

    if config.backend != "tflite":
        return load_weights(config.model).conditioning
    if config.model:
        from .runtimes.litert import read_metadata

        meta = read_metadata(config.model) or {}
        if "conditioning" in meta:
            return Conditioning.from_dict(meta["conditioning"])
    return load_weights(None).conditioning


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


def _worker(argv: Sequence[str]) -> int:
    spec_path, result_path = argv[0], argv[1]
    spawned_at = float(argv[2]) if len(argv) > 2 else None
    config = BenchConfig.from_dict(json.loads(Path(spec_path).read_text()))
    try:
        result = measure(config, spawned_at)
    except MicroISPError as exc:
        result = BenchResult(config=config, error=str(exc))
    Path(result_path).write_text(json.dumps(result.to_dict()))
    return 0


# --- planning several configurations ------------------------------------------------------------
def estimate_whole_frame_mb(resolution: Resolution, backend: str, features: int = 4) -> float:
    """Rough peak resident memory of a whole-frame run, from measurements on this project's
    machine (see ``defaults.BENCH_WHOLE_FRAME_BYTES_PER_PIXEL``, measured with 4 features per
    branch; the activations grow in proportion to ``features``)."""
    base, per_pixel = defaults.BENCH_WHOLE_FRAME_BYTES_PER_PIXEL[backend]
    return base + per_pixel * max(features, 4) / 4 * resolution.pixels / _MIB


def model_description(config: BenchConfig) -> dict[str, Any]:
    """Name, model config and parameter count of what ``config`` runs (no runtime imported)."""
    from .model import ModelConfig, count_parameters

    if config.backend == "tflite" and config.model:
        from .runtimes.litert import read_metadata

        meta = read_metadata(config.model) or {}
        model = ModelConfig.from_dict(meta["model"]) if "model" in meta else None
        name = meta.get("weights")
    else:
        from .weights import load_weights

        weights = load_weights(config.model if config.backend != "tflite" else None)
        model, name = weights.config, weights.name
    if model is None:
        return {"weights": name}
    return {"weights": name, "model": model.to_dict(), "parameters": count_parameters(model)}


def memory_budget_mb() -> float:
    """How much a whole-frame run may take: ``defaults.BENCH_MEMORY_LIMIT_MB``, and at most
    half of the memory the kernel reports available now."""
    limit = float(defaults.BENCH_MEMORY_LIMIT_MB)
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    limit = min(limit, int(line.split()[1]) / 1024 / 2)
    except OSError:
        pass
    return limit


def plan(resolutions: Sequence[Resolution], tile_sizes: Sequence[int] | None = None,
         **options: Any) -> list[BenchConfig]:
    """The configurations for ``microisp bench``: each resolution x each tile size.

    Without ``tile_sizes``: the default tile size and, beside it, the whole frame (tile size 0).
    Whole-frame configurations that would not fit in memory (:func:`estimate_whole_frame_mb` over
    :func:`memory_budget_mb`) are returned too and marked skipped by :func:`run_benchmarks`.
    """
    sizes = list(tile_sizes) if tile_sizes else [defaults.TILE_SIZE, 0]
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
            if check_memory and config.tile_size == 0:
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
        if r.ok and r.config.tile_size and _group_key(r.config) in whole:
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
            mem_total = int(meminfo.readline().split()[1]) / _MIB
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


__all__ = [
    "BenchConfig", "BenchResult", "BenchError", "Resolution", "parse_resolution", "measure",
    "run_isolated", "run_benchmarks", "plan", "machine_info", "bench_report", "tiling_costs",
    "summarise", "synthetic_mosaic", "synthetic_packed", "RssSampler",
]


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1:]))
