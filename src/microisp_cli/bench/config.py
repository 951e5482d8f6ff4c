"""What to measure and what was measured: :class:`BenchConfig`, :class:`BenchResult`."""

from __future__ import annotations

import dataclasses
from typing import Any

from .. import defaults
from ..errors import BenchError
from ..resolution import Resolution
from ..runtimes import BACKENDS

FORMAT = "microisp-bench/1"
PRECISIONS = ("fp32", "fp16", "int8")
#: What a configuration can run: the network on a runtime (``runtimes.BACKENDS``), or LibRaw's
#: AHD through rawpy on its ``input`` file (the classical yardstick, ``backends.LibRawRun``).
BENCH_BACKENDS = (*BACKENDS, "libraw")
MIB = 1024 * 1024


# --- what to run ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class BenchConfig:
    """One configuration to measure. ``tile_size`` 0 runs the whole frame in one piece.

    ``model``: for ``tflite`` the ``.tflite`` file (exported on the fly from the default weights
    when None); for ``tf`` a weights name or file (the default weights when None).
    ``input``: a RAW file; each run is then decode + network + render + encode, timed per stage,
    and ``resolution`` is that of the file. ``backend`` ``"libraw"``: each run is LibRaw's
    decode + AHD + colour + 16-bit output of ``input`` (required).
    """

    resolution: Resolution
    backend: str = defaults.BACKEND
    precision: str = "fp32"
    model: str | None = None
    threads: int | None = defaults.THREADS
    tile_size: int | None = None  # None: the network's default (tile_plans.tile_size_for)
    attention: str = defaults.ATTENTION
    runs: int = defaults.BENCH_RUNS
    warmup: int = defaults.BENCH_WARMUP
    input: str | None = None

    def __post_init__(self) -> None:
        if self.backend not in BENCH_BACKENDS:
            raise BenchError(f"backend must be one of {', '.join(BENCH_BACKENDS)}, got {self.backend!r}")
        if self.backend == "libraw" and not self.input:
            raise BenchError("the libraw backend develops a RAW file: give input")
        if self.precision not in PRECISIONS:
            raise BenchError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.backend != "tflite" and self.precision != "fp32":
            raise BenchError(f"the {self.backend} backend runs fp32 only; fp16 and int8 are "
                             "TFLite models (--backend tflite)")
        if self.runs < 1 or self.warmup < 0:
            raise BenchError(f"need runs >= 1 and warmup >= 0, got runs={self.runs}, warmup={self.warmup}")
        if self.tile_size is not None and self.tile_size < 0:
            raise BenchError(f"tile size must be >= 0 (0: whole frame), got {self.tile_size}")
        if self.threads is not None and self.threads < 1:
            raise BenchError(f"threads must be >= 1, got {self.threads}")

    @property
    def runtime(self) -> str:
        """The runtime's name for tables: ``OpenVINO``, ``TF``, ``TFLite FP32`` (...), ``LibRaw AHD``."""
        if self.backend == "tflite":
            return f"TFLite {self.precision.upper()}"
        return {"tf": "TF", "openvino": "OpenVINO", "libraw": "LibRaw AHD"}[self.backend]

    @property
    def label(self) -> str:
        if self.backend == "libraw":  # no tiles: LibRaw develops the whole file
            return f"{self.resolution.label} {self.runtime}"
        tiles = ("whole frame" if self.tile_size == 0 else "default tiles" if self.tile_size is None
                 else f"tiles {self.tile_size}")
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
    int8_peak_percent: float | None = None
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
