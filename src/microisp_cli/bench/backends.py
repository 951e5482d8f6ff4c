"""What a configuration runs: the network on a runtime (a ``SegmentRunner`` over a synthetic
frame, or :class:`StagedRun`, a RAW file developed stage by stage), or LibRaw (:class:`LibRawRun`).
Runtimes are imported only inside these functions (the measured process times the import)."""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

from .. import defaults
from ..errors import BenchError
from ..peers import libraw_postprocess, libraw_versions
from ..synthetic import synthetic_packed
from .config import BenchConfig
from .resources import summarise


#: The module each backend imports first (what ``import_s`` times); TensorFlow goes through
#: ``tensorflow_import`` (quiet start-up).
RUNTIME_MODULES = {"openvino": "openvino", "tflite": "ai_edge_litert.interpreter", "libraw": "rawpy"}


def import_runtime(backend: str) -> None:
    if backend == "tf":
        from ..tensorflow_import import import_tensorflow

        import_tensorflow()
    else:
        importlib.import_module(RUNTIME_MODULES[backend])


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
    from ..export import export_tflite
    from ..weights import load_weights

    out = Path(directory) / f"microisp-default-{precision}.tflite"
    start = time.perf_counter()
    export_tflite(load_weights(None), out, precision=precision, check=False)
    return out, time.perf_counter() - start


def make_runner(config: BenchConfig):
    """The ``SegmentRunner`` for ``config`` (imports its runtime)."""
    from ..runtimes import make_runner as runner_for

    if config.backend != "tflite":
        from ..weights import load_weights

        weights = load_weights(config.model)
        return runner_for(config.backend, weights.config, weights.params, threads=config.threads)
    return runner_for("tflite", None, {}, str(tflite_path(config)), threads=config.threads)  # type: ignore[arg-type]


def model_description(config: BenchConfig) -> dict[str, Any]:
    """Name, model config and parameter count of what ``config`` runs (no runtime imported);
    LibRaw's and rawpy's versions for the ``libraw`` backend."""
    from ..model import ModelConfig, count_parameters

    if config.backend == "libraw":
        return libraw_versions()

    if config.backend == "tflite" and config.model:
        from ..tflite_format import read_metadata

        meta = read_metadata(config.model) or {}
        model = ModelConfig.from_dict(meta["model"]) if "model" in meta else None
        name = meta.get("weights")
    else:
        from ..weights import load_weights

        weights = load_weights(config.model if config.backend != "tflite" else None)
        model, name = weights.config, weights.name
    if model is None:
        return {"weights": name}
    return {"weights": name, "model": model.to_dict(), "parameters": count_parameters(model)}


class StagedRun:
    """One RAW file developed as ``microisp develop`` does, with each stage timed.

    decode (LibRaw), pack (black level, gains, packing: the source's ``read``), model (the tiled
    network: everything in ``run_tiled`` that is not pack or render), render (colour matrix, sRGB
    curve, quantisation: the sink) and encode (PNG, 8-bit, sRGB profile, atomic write), through
    ``develop.run_pipeline``, the stages after decoding that ``microisp develop`` runs (the
    white-balance and exposure stages, a few milliseconds, count as model).
    """

    STAGES = ("decode", "pack", "model", "render", "encode")

    def __init__(self, config: BenchConfig, workdir: Path):
        self.config = config
        self.output = workdir / "bench-output.png"
        self.runner = None
        self.conditioning = conditioning_for(config)  # loaded here, not inside a timed run
        from .. import develop, encode, raw  # noqa: F401 - imported here too, not inside a timed run
        self.times: dict[str, list[float]] = {s: [] for s in self.STAGES}

    def run(self) -> None:
        from .. import encode
        from ..develop import run_pipeline
        from ..options import DevelopOptions
        from ..raw import decode

        timings: dict[str, float] = {}
        options = DevelopOptions(bits=defaults.BITS_PNG, tile_size=self.config.tile_size,
                                 attention=self.config.attention)
        t0 = time.perf_counter()
        mosaic = decode(self.config.input)
        t1 = time.perf_counter()
        image = run_pipeline(mosaic, self.conditioning, self.runner, options, timings=timings)
        t2 = time.perf_counter()
        encode.write_image(self.output, image, overwrite=True)
        t3 = time.perf_counter()
        for stage, seconds in (("decode", t1 - t0), ("pack", timings["pack"]),
                               ("model", t2 - t1 - timings["pack"] - timings["render"]),
                               ("render", timings["render"]), ("encode", t3 - t2)):
            self.times[stage].append(seconds)

    def summary(self, warmup: int) -> dict[str, dict[str, float]]:
        return {stage: summarise(values[warmup:]) for stage, values in self.times.items() if values}


def conditioning_for(config: BenchConfig):
    """How the runner's weights want their input: from the weights (tf) or the export's
    metadata (tflite), else the default weights'."""
    from ..weights import Conditioning, load_weights

    if config.backend != "tflite":
        return load_weights(config.model).conditioning
    if config.model:
        from ..tflite_format import read_metadata

        meta = read_metadata(config.model) or {}
        if "conditioning" in meta:
            return Conditioning.from_dict(meta["conditioning"])
    return load_weights(None).conditioning


class FrameRun:
    """One run of the network over the synthetic frame (``synthetic.synthetic_packed``, made
    here, before the runtime is imported), its output tiles computed and dropped."""

    def __init__(self, config: BenchConfig):
        from ..tiling import ArraySource, run_tiled

        self.config, self.run_tiled = config, run_tiled
        self.source = ArraySource(synthetic_packed(config.resolution))
        self.runner = None

    def run(self) -> None:
        self.run_tiled(self.runner, self.source, _drop, self.config.tile_size, self.config.attention)


def _drop(y: int, x: int, rgb) -> None:
    """The benchmark's sink: output tiles are computed and dropped (not kept or encoded)."""


class LibRawRun:
    """One run of the ``libraw`` backend: ``input`` read and developed by LibRaw through rawpy
    (decode, AHD, camera white balance, colour matrix, 16-bit output), the classical yardstick."""

    def __init__(self, config: BenchConfig):
        self.path = str(config.input)
        self.runner = None  # no network

    def run(self) -> None:
        libraw_postprocess(self.path, "AHD", 16)


def libraw_develop(path: str | Path, output: str | Path) -> None:
    """LibRaw's AHD develop of ``path`` as an 8-bit file ``output`` (PNG, ...), neutral as in
    :mod:`peers`; what ``benchmarks/versus_darktable.py`` times as a process
    (``python -m microisp_cli.bench --libraw-develop RAW OUTPUT``)."""
    from ..encode import write_image

    write_image(output, libraw_postprocess(path, "AHD", 8), overwrite=True)
