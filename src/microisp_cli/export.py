"""TFLite export: conversion at three precisions, op audit, accuracy check against TensorFlow.

Two kinds of file:

- ``segments`` (default): one signature per segment (``segment_0`` ...) and per attention head
  (``head_0`` ...), spatial dimensions dynamic. :class:`runtimes.litert.LiteRTRunner` runs it
  through ``tiling.run_tiled``, so the exact tiled pipeline (global attention, bounded memory)
  works on TFLite as on TensorFlow (``microisp develop --backend tflite --model FILE``).
- ``fixed``: the whole network as one graph for one input shape, like the published
  ``MicroISP.tflite`` (``--resolution 12mp`` -> input 1x1500x2000x4), or for one tile
  (``--tile-size``, attention computed per tile on the device). The heads read their features
  with a stride-3 1x1 convolution, as the published file does.

Every file carries its description (model config, conditioning, precision, kind) as JSON in the
flatbuffer metadata entry ``microisp``. Every file is audited: each op must be in
:data:`ALLOWED_OPS` (the published model's set and the LMMSE base's elementwise ops: NNAPI 1.2 and GPU delegates),
plus ``QUANTIZE``/``DEQUANTIZE`` for FP16 and INT8; an op outside it fails the export naming it.

Precisions: ``fp32``; ``fp16`` (float16 weights, dequantized on load or run in half precision by
GPU delegates); ``int8`` (int8 weights and activations, float32 input and output through one
QUANTIZE/DEQUANTIZE each, calibrated on representative packed mosaics: real RAW files and
synthetic scenes, see :func:`calibration_set`). A fixed base is full integer; an LMMSE base and
its curve (``model.FLOAT_SCOPE``) stay in float32, the network around them in int8.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .bayer import mosaic_rggb
from .colour import srgb_decode
from .errors import ExportError, MicroISPError, OutputError
from .model import BRANCHES, ENCODED_BASES, FLOAT_SCOPE, PACKED_CHANNELS, ModelConfig, forward_segments
from .resolution import Resolution, parse_resolution
from .synthetic import synthetic_scene
from .tensorflow_import import import_tensorflow
from .tflite_format import (ATTENTION, METADATA_FORMAT, PRE, RGB, SCALE, SKIP, STATE, X, branch_input,
                            float_ops, head_feeds, head_inputs, head_key, model_ops, read_metadata,
                            scope_tensors, segment_feeds, segment_inputs, segment_key, signature_shapes,
                            write_metadata)
from .weights import Conditioning, Weights

#: Ops of the published MicroISP.tflite, plus the elementwise ones of the LMMSE base (ABS ... SUB):
#: all NNAPI 1.2 operations that the mobile GPU delegates also run.
ALLOWED_OPS = frozenset({"ADD", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "LOGISTIC", "MEAN",
                         "MUL", "PRELU", "RESHAPE", "TANH",
                         "ABS", "DIV", "MAXIMUM", "MINIMUM", "POW", "SUB"})
#: Added for FP16 (weights dequantized) and INT8 (float input and output).
QUANT_OPS = frozenset({"QUANTIZE", "DEQUANTIZE"})
PRECISIONS = ("fp32", "fp16", "int8")
KINDS = ("segments", "fixed")

#: Fixed-shape exports whose input is larger than this (packed pixels) are not accuracy-checked
#: unless asked: running TensorFlow and LiteRT on a 12 MP frame takes about 11 GB.
CHECK_MAX_PACKED_PIXELS = 1024 * 1024
#: Packed side of the check input for segmented exports.
CHECK_SIZE = 96
#: Calibration sources read as sRGB photos (anything else is tried as a RAW file).
PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclasses.dataclass
class Accuracy:
    """TFLite output against TensorFlow's on one input (RGB in [0, 1])."""

    max_abs: float
    psnr_db: float
    reference: str  # "tensorflow" (FP32 network) for every precision
    input_shape: tuple[int, ...]


@dataclasses.dataclass
class ExportResult:
    path: Path
    kind: str
    precision: str
    size_bytes: int
    ops: list[str]
    inputs: dict[str, dict[str, tuple[int, ...]]]  # signature -> input name -> shape (-1: dynamic)
    outputs: dict[str, dict[str, tuple[int, ...]]]
    metadata: dict[str, Any]
    float_ops: list[str] = dataclasses.field(default_factory=list)  # int8: ops left in float32
    accuracy: Accuracy | None = None

    @property
    def size_kb(self) -> float:
        return self.size_bytes / 1024


# --- what to export ----------------------------------------------------------------------------
def fixed_input_shape(resolution: str | Resolution | None = None,
                      tile_size: int | None = None) -> tuple[int, int] | None:
    """Packed (rows, columns) of a fixed-shape export, or None for a segmented one.

    ``resolution``: ``fullhd``/``12mp``/``32mp``/``WxH`` (full-resolution pixels);
    ``tile_size``: a square tile's side in full-resolution pixels (even).
    """
    if resolution is not None and tile_size is not None:
        raise ExportError("give --resolution or --tile-size, not both")
    if resolution is not None:
        res = resolution if isinstance(resolution, Resolution) else parse_resolution(resolution)
        return res.packed_shape
    if tile_size is not None:
        if tile_size < 2 or tile_size % 2:
            raise ExportError(f"tile size must be an even number of pixels, got {tile_size}")
        return tile_size // 2, tile_size // 2
    return None


def _segment_fn(net, index: int):
    tf = import_tensorflow()

    names = [name for name, _ in segment_inputs(net.config, index)]

    def run(*args):
        t = dict(zip(names, args))
        parts = [[t[branch_input(kind, i)] for i in range(BRANCHES)] if index else None
                 for kind in (PRE, SKIP, SCALE)]
        out = net.segment_branches(index, t.get(X), *parts)
        if index == net.config.num_segments - 1:
            return {RGB: out}
        return {STATE: tf.concat(out[0] + out[1], axis=-1)}

    return run


def _head_fn(net, index: int):
    tf = import_tensorflow()

    def run(*samples):
        return {ATTENTION: tf.concat([net.head_branch(index, i, s) for i, s in enumerate(samples)],
                                     axis=-1)}

    return run


def _tf_functions(net, fixed: tuple[int, int] | None) -> dict[str, Any]:
    """Signature key -> tf.function with its input signature."""
    tf = import_tensorflow()

    def specs(inputs):
        return [tf.TensorSpec(shape, tf.float32, name=name) for name, shape in inputs]

    if fixed is not None:
        spec = tf.TensorSpec([1, *fixed, PACKED_CHANNELS], tf.float32, name=X)
        return {"serving_default": tf.function(lambda x: {RGB: net.call_branches(x)},
                                               input_signature=[spec])}
    cfg = net.config
    functions = {segment_key(i): tf.function(_segment_fn(net, i),
                                                  input_signature=specs(segment_inputs(cfg, i)))
                 for i in range(cfg.num_segments)}
    functions.update({head_key(i): tf.function(_head_fn(net, i),
                                               input_signature=specs(head_inputs(cfg)))
                      for i in range(cfg.num_segments - 1)})
    return functions


# --- representative data -------------------------------------------------------------------------
def _pack_rggb(mosaic: np.ndarray, channels: Sequence[str]) -> np.ndarray:
    """RGGB mosaic (H, W) -> packed (H/2, W/2, 4) in the conditioning's channel order."""
    sites = {"R": mosaic[0::2, 0::2], "Gr": mosaic[0::2, 1::2], "Gb": mosaic[1::2, 0::2],
             "B": mosaic[1::2, 1::2]}
    return np.stack([sites[c] for c in channels], axis=-1).astype(np.float32)


def _photo(path: Path, size: int) -> np.ndarray:
    """An sRGB photo (PNG, JPEG, 8/16-bit TIFF) -> linear RGB, top-left (size, size) crop."""
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        img = tifffile.imread(path)
    else:
        tf = import_tensorflow()

        img = tf.io.decode_image(path.read_bytes(), channels=3, expand_animations=False).numpy()
    if img.ndim != 3 or img.shape[2] < 3:
        return np.zeros((0, 0, 3), np.float32)
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    img = img[:size, :size, :3].astype(np.float32) / scale
    return srgb_decode(img).astype(np.float32)


def _raw_packed(path: Path, conditioning: Conditioning) -> np.ndarray:
    from .bayer import pack_bayer
    from .raw import decode

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing colour metadata does not matter here
        mosaic = decode(path)
    return pack_bayer(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white, mosaic.wb, conditioning)


def calibration_set(conditioning: Conditioning, sources: Iterable[str | Path] = (),
                    size: int = 96, synthetic: int = 8, per_file: int = 2,
                    seed: int = 0) -> list[np.ndarray]:
    """Representative packed inputs (size, size, 4) float32 for INT8 calibration.

    ``sources``: RAW files (decoded with the weights' conditioning), photos (PNG, JPEG, TIFF:
    linearised and mosaicked, as the synthetic training pairs are) or folders of either; up to
    ``per_file`` crops of each. Plus ``synthetic`` drawn scenes (``synthetic.synthetic_scene``).
    """
    rng = np.random.default_rng(seed)
    out: list[np.ndarray] = []
    files: list[Path] = []
    for src in sources:
        p = Path(src)
        files += sorted(q for q in p.iterdir() if q.is_file()) if p.is_dir() else [p]
    for path in files:
        suffix = path.suffix.lower()
        if suffix in PHOTO_SUFFIXES:
            img = _photo(path, 2 * size)
            if min(img.shape[:2]) < 2 * size:
                continue
            out.append(_pack_rggb(mosaic_rggb(img), conditioning.channels))
            continue
        try:
            packed = _raw_packed(path, conditioning)
        except MicroISPError:
            continue  # not a readable RAW file: calibration simply does without it
        h, w = packed.shape[:2]
        if h < size or w < size:
            continue
        for _ in range(per_file):
            y, x = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
            out.append(np.ascontiguousarray(packed[y:y + size, x:x + size]))
    for k in range(synthetic):
        scene = synthetic_scene(2 * size, seed + k)
        scene = scene * rng.uniform(0.3, 1.0)  # exposure
        out.append(_pack_rggb(mosaic_rggb(scene), conditioning.channels))
    # [0, 1]: the range a conditioned input is meant to have (a 14-bit file under a 10-bit
    # conditioning would otherwise stretch every quantization range)
    return [np.clip(p, 0.0, 1.0).astype(np.float32) for p in out]


def _representative(net, fixed, samples: list[np.ndarray]) -> Callable:
    """The converter's representative dataset: per signature, the tensors TF computes on
    ``samples`` (segments' states and heads' samples come from the FP32 network itself)."""
    tf = import_tensorflow()

    cfg = net.config
    # The calibrator sizes each signature once, from its first sample (it resizes fixed-shape
    # graphs too, so a 12 MP model calibrates on small crops): crop all samples to one size.
    h = min(s.shape[0] for s in samples)
    w = min(s.shape[1] for s in samples)

    def gen():
        for sample in samples:
            x = tf.constant(np.ascontiguousarray(sample[:h, :w])[None])
            if fixed is not None:
                yield {X: x}
                continue
            feeds: list[tuple[str, dict]] = []

            def segment(index, x, state, att):
                feeds.append((segment_key(index), segment_feeds(cfg, index, x, state, att)))
                # the last segment's output is not needed
                return net.segment(index, x, state, att) if index < cfg.num_segments - 1 else None

            def head(index, probe):
                feeds.append((head_key(index), head_feeds(cfg, probe)))
                return net.head(index, probe)

            forward_segments(cfg, x, segment, head)
            yield from feeds

    return gen


# --- conversion ----------------------------------------------------------------------------------
def _quantize_except_float_scope(converter) -> bytes:
    """INT8 with :data:`model.FLOAT_SCOPE` (the encoded bases' curve and base) left in float:
    calibrate the whole graph, then quantize every op whose output is outside that scope
    (the converter's selective quantization, as its quantization debugger does it)."""
    tf = import_tensorflow()

    converter.experimental_mlir_quantizer = True
    converter._experimental_calibrate_only = True  # noqa: SLF001 - the debugger's own route
    calibrated = converter.convert()
    floats = sorted(scope_tensors(calibrated, FLOAT_SCOPE))
    options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=floats)
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter, debug_dataset=converter.representative_dataset, debug_options=options)
    return debugger.get_nondebug_quantized_model()


def _convert(net, functions: dict[str, Any], precision: str, representative=None) -> bytes:
    tf = import_tensorflow()

    module = tf.Module()
    module.params = net.params
    with tempfile.TemporaryDirectory(prefix="microisp-export-") as tmp:
        tf.saved_model.save(module, tmp, signatures=functions)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp, signature_keys=list(functions))
        if precision == "fp16":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.target_spec.supported_types = [tf.float16]
        elif precision == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            with warnings.catch_warnings():
                # the converter's calibrator uses tf.lite.Interpreter, which warns it is deprecated
                warnings.simplefilter("ignore", UserWarning)
                if precision == "int8" and net.config.base in ENCODED_BASES:
                    return bytes(_quantize_except_float_scope(converter))
                return bytes(converter.convert())
        except Exception as exc:  # the converter raises ConverterError and friends
            raise ExportError(f"TFLite conversion failed: {str(exc).splitlines()[0]}") from None


def audit_ops(ops: Iterable[str], precision: str = "fp32") -> None:
    """Raise :class:`ExportError` naming every op outside the allowed set for ``precision``."""
    allowed = ALLOWED_OPS | (QUANT_OPS if precision != "fp32" else frozenset())
    bad = sorted(set(ops) - allowed)
    if bad:
        raise ExportError(
            f"the model uses {', '.join(bad)}, outside the NNAPI/GPU-delegate op set "
            f"({', '.join(sorted(allowed))}); refusing to write a file that would fall back to the CPU")


def export_tflite(weights: Weights, path: str | Path, precision: str = "fp32",
                  resolution: str | Resolution | None = None, tile_size: int | None = None,
                  calibration: Sequence[np.ndarray] | None = None,
                  calibration_sources: Iterable[str | Path] = (),
                  check: bool | None = None, threads: int | None = None) -> ExportResult:
    """Convert ``weights``' network to a ``.tflite`` file at ``path`` and audit it.

    ``resolution``/``tile_size``: a fixed-shape whole-network file (see :func:`fixed_input_shape`);
    neither: a segmented file for the tiled pipeline. ``calibration``: packed inputs for INT8
    (default: :func:`calibration_set` over ``calibration_sources`` and synthetic scenes).
    ``check``: compare with TensorFlow on one input (None: unless the fixed input is larger than
    :data:`CHECK_MAX_PACKED_PIXELS`). The file is written only after the audit passes.
    """
    if precision not in PRECISIONS:
        raise ExportError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    fixed = fixed_input_shape(resolution, tile_size)
    config = weights.config
    if fixed is not None and config.blocks and min(fixed) < config.min_packed_size:
        raise ExportError(
            f"input {fixed[1] * 2}x{fixed[0] * 2} is too small for the attention blocks: each side "
            f"needs at least {2 * config.min_packed_size} pixels")
    out = Path(path)
    if out.is_dir():
        raise OutputError(f"{out}: is a directory; give a file name ending in .tflite")
    if not out.parent.exists():
        raise OutputError(f"{out.parent}: no such directory")

    net = weights.build()
    functions = _tf_functions(net, fixed)
    representative = None
    if precision == "int8":
        samples = list(calibration) if calibration is not None else calibration_set(
            weights.conditioning, calibration_sources)
        if not samples:
            raise ExportError("INT8 export needs calibration inputs; none were found")
        if min(min(x.shape[:2]) for x in samples) < config.min_packed_size:
            raise ExportError(f"calibration inputs must be at least {config.min_packed_size} "
                              "packed pixels on a side (the attention chain's minimum)")
        representative = _representative(net, fixed, samples)
    model = _convert(net, functions, precision, representative)
    kind = "fixed" if fixed is not None else "segments"
    meta = {
        "format": METADATA_FORMAT, "kind": kind, "precision": precision,
        "model": config.to_dict(), "conditioning": weights.conditioning.to_dict(),
        "weights": weights.name, "input": [1, *fixed, PACKED_CHANNELS] if fixed else None,
    }
    model = write_metadata(model, meta)
    ops = model_ops(model)
    audit_ops(ops, precision)

    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        tmp.write_bytes(model)
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write ({exc.strerror})") from None
    inputs, outputs = signature_shapes(out)
    result = ExportResult(out, kind, precision, len(model), ops, inputs, outputs, meta,
                          float_ops(model) if precision == "int8" else [])
    if check is None:
        check = fixed is None or fixed[0] * fixed[1] <= CHECK_MAX_PACKED_PIXELS
    if check:
        result.accuracy = check_accuracy(out, weights, threads=threads)
    return result


# --- accuracy ------------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio of ``b`` against ``a`` in dB (inf when equal), the one PSNR of
    export checks, evaluation and tests."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else -10.0 * np.log10(mse / (peak * peak))


def run_tflite(path: str | Path, packed: np.ndarray, threads: int | None = None) -> np.ndarray:
    """Run an export on a packed (h, w, 4) input -> RGB (2h, 2w, 3) float32, with LiteRT and
    XNNPACK. A segmented file runs whole-frame through ``tiling.run_array``; a fixed one needs
    exactly its input shape."""
    meta = read_metadata(path) or {}
    if meta.get("kind") == "segments":
        from .runtimes.litert import LiteRTRunner
        from .tiling import run_array

        return run_array(LiteRTRunner(path, threads, xnnpack=True), packed, tile_size=0)
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path), num_threads=threads)
    runner = interp.get_signature_runner()
    return runner(x=np.ascontiguousarray(packed[None], np.float32))["rgb"][0]


def check_input(config: ModelConfig, conditioning: Conditioning, shape: tuple[int, int] | None,
                seed: int = 12345) -> np.ndarray:
    """A synthetic scene packed for ``conditioning`` (not part of the calibration set)."""
    h, w = shape if shape is not None else (max(CHECK_SIZE, config.min_packed_size),) * 2
    side = 2 * max(h, w)
    scene = synthetic_scene(side, seed)[:2 * h, :2 * w]
    return _pack_rggb(mosaic_rggb(scene), conditioning.channels)


def check_accuracy(path: str | Path, weights: Weights, packed: np.ndarray | None = None,
                   threads: int | None = None) -> Accuracy:
    """Compare an export with the FP32 TensorFlow network on ``packed`` (default
    :func:`check_input` at the file's shape). Output in [0, 1] scale, clipped before comparing."""
    meta = read_metadata(path) or {}
    fixed = tuple(meta["input"][1:3]) if meta.get("input") else None
    if packed is None:
        packed = check_input(weights.config, weights.conditioning, fixed)
    ref = weights.build()(packed[None]).numpy()[0]
    got = run_tflite(path, packed, threads)
    ref, got = np.clip(ref, 0, 1), np.clip(got, 0, 1)
    return Accuracy(float(np.abs(ref - got).max()), psnr(ref, got), "tensorflow",
                    tuple(packed.shape))


__all__ = ["ALLOWED_OPS", "PRECISIONS", "Accuracy", "ExportError", "ExportResult", "audit_ops",
           "calibration_set", "check_accuracy", "export_tflite", "fixed_input_shape", "psnr",
           "run_tflite"]
