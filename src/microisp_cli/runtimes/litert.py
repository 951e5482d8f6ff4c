"""LiteRT runtime: the segments and heads of a ``microisp export`` file, run by ai-edge-litert.

A *segmented* export (``microisp export --tflite`` without ``--resolution``/``--tile-size``) holds
one signature per segment (``segment_0`` ...) and per attention head (``head_0`` ...), all with
dynamic spatial dimensions, and the model config in the file's metadata (entry ``microisp``).
:class:`LiteRTRunner` implements ``SegmentRunner`` over it, so ``tiling.run_tiled`` runs a TFLite
file exactly as it runs TensorFlow. The signatures take the state split per branch (``pre_i``,
``skip_i``, ``scale_i``, ``samples_i``): splitting here, in numpy, keeps slicing ops out of the
file. Only ``ai_edge_litert`` is imported (start-up 0.1 s), never TensorFlow.

The helpers :func:`read_metadata` and :func:`model_ops` read a ``.tflite`` flatbuffer directly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .. import defaults
from ..errors import ModelFileError
from ..files import Unreadable, read_regular
from ..extras import require
from ..model import BRANCHES, ModelConfig

#: Name of the metadata entry holding the export's JSON description.
METADATA_NAME = "microisp"
#: Format tag of that JSON.
METADATA_FORMAT = "microisp-tflite/1"


def _load_flatbuffer(source: str | Path | bytes):
    schema = require("ai_edge_litert.schema_py_generated", "tf", "the tflite backend")

    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    else:
        try:
            data = read_regular(source, defaults.MAX_MODEL_BYTES)
        except Unreadable as exc:
            raise ModelFileError(f"{source}: {exc}") from None
    try:
        if not schema.Model.ModelBufferHasIdentifier(data, 0):
            raise ValueError("no TFL3 identifier")
        return schema.Model.GetRootAs(data, 0), data
    except Exception as exc:  # flatbuffers raises assorted errors on garbage
        raise ModelFileError(f"{source if not isinstance(source, bytes) else 'model'}: "
                             f"not a TFLite file ({exc})") from None


def read_metadata(source: str | Path | bytes) -> dict[str, Any] | None:
    """The export's JSON description (a dict) from the file's ``microisp`` metadata, or None.

    :class:`ModelFileError` for a file that is not a TFLite flatbuffer, is truncated (the
    flatbuffer reader then fails on offsets past the end), or whose metadata is not a JSON object."""
    model, _ = _load_flatbuffer(source)
    name = source if not isinstance(source, (bytes, bytearray)) else "model"
    try:
        for m in range(model.MetadataLength()):
            entry = model.Metadata(m)
            if (entry.Name() or b"").decode("utf-8", "replace") != METADATA_NAME:
                continue
            meta = json.loads(bytes(model.Buffers(entry.Buffer()).DataAsNumpy()).decode())
            if not isinstance(meta, dict):
                raise ValueError("not a JSON object")
            return meta
    except Exception as exc:  # struct.error, IndexError, ... from offsets past the end of the file
        raise ModelFileError(f"{name}: truncated or corrupt TFLite file, or unreadable "
                             f"{METADATA_NAME} metadata ({type(exc).__name__})") from None
    return None


def model_ops(source: str | Path | bytes) -> list[str]:
    """Sorted names of every builtin (or custom) op the file's operator table lists, over all
    its subgraphs (signatures)."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model, _ = _load_flatbuffer(source)
    ops = set()
    for c in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(c)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            ops.add(names.get(builtin, f"BUILTIN_{builtin}"))
    return sorted(ops)


class LiteRTRunner:
    """Runs a segmented ``.tflite`` export with LiteRT. Implements ``SegmentRunner``.

    ``threads``: CPU threads (None: LiteRT's default). Inputs of any tile size are accepted: each
    signature is resized to the tile's shape when it changes. ``xnnpack``: run through the XNNPACK
    delegate. Off by default: tiles change shape at frame borders and every resize re-prepares
    the delegate, and XNNPACK keeps every intermediate tensor; over a tiled 12 MP frame the
    built-in kernels took about the same time with half the peak memory (0.9 GB against 2.0 GB,
    docs/export.md). XNNPACK is faster for one fixed shape.
    """

    def __init__(self, model_path: str | Path, threads: int | None = None, xnnpack: bool = False):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = Path(model_path)
        meta = read_metadata(self.path)
        if meta is None or meta.get("format") != METADATA_FORMAT:
            raise ModelFileError(f"{self.path}: not a microisp export (no {METADATA_NAME} metadata)")
        if meta.get("kind") != "segments":
            raise ModelFileError(
                f"{self.path}: a fixed-shape export ({meta.get('kind')}) runs whole frames on a "
                "device; the tiled pipeline needs a segmented export (microisp export --tflite "
                "without --resolution or --tile-size)")
        self.metadata = meta
        try:
            self.config = ModelConfig.from_dict(meta["model"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ModelFileError(f"{self.path}: its {METADATA_NAME} metadata has no usable model "
                                 f"config ({type(exc).__name__}: {exc})") from None
        self.precision = str(meta.get("precision", "fp32"))
        try:
            options = {} if xnnpack else {
                "experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads, **options)
        except (ValueError, RuntimeError) as exc:
            raise ModelFileError(f"{self.path}: LiteRT cannot load it ({exc})") from None
        n = self.config.num_segments
        try:
            self._segments = [self.interpreter.get_signature_runner(f"segment_{i}") for i in range(n)]
            self._heads = [self.interpreter.get_signature_runner(f"head_{i}") for i in range(n - 1)]
            self._segment_inputs = [set(r.get_input_details()) for r in self._segments]
        except ValueError as exc:  # "Invalid signature_key": the metadata claims another network
            raise ModelFileError(f"{self.path}: its signatures do not match the network its metadata "
                                 f"describes ({exc})") from None

    def check_matches(self, config: ModelConfig, conditioning: Mapping[str, Any], name: str) -> None:
        """Raise :class:`ModelFileError` unless the file was exported from a network of ``config``
        fed with ``conditioning`` (its ``to_dict()`` form, which prepares the input); ``name``
        names those weights in the message."""
        if self.config != config or self.metadata.get("conditioning") != dict(conditioning):
            raise ModelFileError(
                f"{self.path} was exported from weights {self.metadata.get('weights')!r}, whose "
                f"model or input conditioning differ from {name!r}'s: pass the weights "
                "it was exported from (--weights)")

    def _split(self, array: np.ndarray, parts: int) -> list[np.ndarray]:
        f = self.config.features
        return [np.ascontiguousarray(array[..., j * f:(j + 1) * f], np.float32) for j in range(parts)]

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        names = self._segment_inputs[index]
        feeds: dict[str, np.ndarray] = {}
        if "x" in names:
            feeds["x"] = np.ascontiguousarray(x, np.float32)
        if index > 0:
            pieces = self._split(state, 2 * BRANCHES)
            scales = self._split(attention, BRANCHES)
            for i in range(BRANCHES):
                feeds[f"pre_{i}"], feeds[f"skip_{i}"] = pieces[i], pieces[BRANCHES + i]
                feeds[f"scale_{i}"] = scales[i]
        out = self._run(self._segments[index], feeds)
        return out["rgb" if index == self.config.num_segments - 1 else "state"]

    def head(self, index, samples) -> np.ndarray:
        feeds = {f"samples_{i}": s for i, s in enumerate(self._split(samples, BRANCHES))}
        return self._run(self._heads[index], feeds)["attention"]

    def _run(self, signature, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return signature(**feeds)
        except RuntimeError as exc:  # a corrupt file that loads but cannot run (a kernel refuses it)
            raise ModelFileError(f"{self.path}: LiteRT cannot run it ({str(exc).splitlines()[0]})") from None
