"""The ``.tflite`` files of ``microisp export``: the names they use, their metadata, their structure.

One definition for the writer (``export.py``) and the reader (``runtimes/litert.py``):

- a *segmented* file holds one signature per segment (:func:`segment_key`) and per attention head
  (:func:`head_key`), spatial dimensions dynamic. The state and the attention cross them split
  per branch (``pre_i``, ``skip_i``, ``scale_i``, ``samples_i``; :func:`segment_inputs`,
  :func:`head_inputs`), which keeps slicing ops out of the file: :func:`segment_feeds` and
  :func:`head_feeds` split the tensors of ``model.py`` into them. Outputs: ``state`` (``rgb``
  from the last segment) and ``attention``.
- every file carries its JSON description (format :data:`METADATA_FORMAT`: kind, precision, model
  config, conditioning, weights name, input shape) in the flatbuffer metadata entry
  :data:`METADATA_NAME` (:func:`write_metadata`, :func:`read_metadata`).

:func:`read_metadata`, :func:`model_ops`, :func:`float_ops` and :func:`scope_tensors` read the
flatbuffer directly (``ai_edge_litert``'s schema, imported lazily; never TensorFlow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from . import defaults
from .errors import ModelFileError
from .extras import require
from .files import Unreadable, read_regular
from .model import BRANCHES, PACKED_CHANNELS, ModelConfig, split_features

#: Name of the metadata entry holding the export's JSON description.
METADATA_NAME = "microisp"
#: Format tag of that JSON.
METADATA_FORMAT = "microisp-tflite/1"

#: Tensor names of a segmented file: the packed input, the per-branch inputs, the outputs.
X, PRE, SKIP, SCALE, SAMPLES = "x", "pre", "skip", "scale", "samples"
STATE, RGB, ATTENTION = "state", "rgb", "attention"

Shape = tuple[int | None, ...]  # None: a dynamic dimension


# --- names -------------------------------------------------------------------------------------
def segment_key(index: int) -> str:
    return f"segment_{index}"


def head_key(index: int) -> str:
    return f"head_{index}"


def branch_input(kind: str, branch: int) -> str:
    """The input ``kind`` (:data:`PRE`, :data:`SKIP`, :data:`SCALE`, :data:`SAMPLES`) of ``branch``."""
    return f"{kind}_{branch}"


def segment_output(config: ModelConfig, index: int) -> str:
    return RGB if index == config.num_segments - 1 else STATE


def segment_inputs(config: ModelConfig, index: int) -> list[tuple[str, Shape]]:
    """[(name, shape)] of segment ``index``'s signature, in its order."""
    f = config.features
    inputs = [(X, (1, None, None, PACKED_CHANNELS))] if config.segment_reads_input(index) else []
    if index:
        inputs += [(branch_input(kind, i), (1, 1, 1, f) if kind == SCALE else (1, None, None, f))
                   for kind in (PRE, SKIP, SCALE) for i in range(BRANCHES)]
    return inputs


def head_inputs(config: ModelConfig) -> list[tuple[str, Shape]]:
    """[(name, shape)] of every head's signature: each branch's stride-3 probe samples."""
    return [(branch_input(SAMPLES, i), (1, None, None, config.features)) for i in range(BRANCHES)]


def segment_feeds(config: ModelConfig, index: int, x, state=None, attention=None) -> dict[str, Any]:
    """Segment ``index``'s inputs by name, from ``model.py``'s ``x``, ``state`` (6F channels) and
    ``attention`` (3F): numpy arrays or TensorFlow tensors, sliced, not copied."""
    feeds = {X: x} if config.segment_reads_input(index) else {}
    if index:
        parts, scales = split_features(state, config), split_features(attention, config)
        for i in range(BRANCHES):
            feeds[branch_input(PRE, i)] = parts[i]
            feeds[branch_input(SKIP, i)] = parts[BRANCHES + i]
            feeds[branch_input(SCALE, i)] = scales[i]
    return feeds


def head_feeds(config: ModelConfig, samples) -> dict[str, Any]:
    """A head's inputs by name from the probe samples (3F channels)."""
    return {branch_input(SAMPLES, i): s for i, s in enumerate(split_features(samples, config))}


# --- metadata and structure ----------------------------------------------------------------------
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
        return schema.Model.GetRootAs(data, 0), schema
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


def write_metadata(model: bytes, meta: dict[str, Any]) -> bytes:
    """``model`` with ``meta`` as JSON in its ``microisp`` metadata entry."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    obj = flatbuffer_utils.convert_bytearray_to_object(bytearray(model))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), np.uint8)
    obj.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = METADATA_NAME
    entry.buffer = len(obj.buffers) - 1
    obj.metadata = [m for m in (obj.metadata or []) if m.name != METADATA_NAME] + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(obj))


def _op_names(model, schema) -> list[str]:
    """The name of each entry of the file's operator table."""
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = []
    for c in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(c)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        out.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}" if builtin == schema.BuiltinOperator.CUSTOM
                   else names.get(builtin, f"BUILTIN_{builtin}"))
    return out


def model_ops(source: str | Path | bytes) -> list[str]:
    """Sorted names of every builtin (or custom) op the file's operator table lists, over all
    its subgraphs (signatures)."""
    model, schema = _load_flatbuffer(source)
    return sorted(set(_op_names(model, schema)))


def float_ops(source: str | Path | bytes) -> list[str]:
    """Sorted names of the ops that compute in float32 (their first input is float32), over all
    subgraphs, ``QUANTIZE``/``DEQUANTIZE`` aside: empty for a full-integer file."""
    model, schema = _load_flatbuffer(source)
    names = _op_names(model, schema)
    found = set()
    for g in map(model.Subgraphs, range(model.SubgraphsLength())):
        for op in map(g.Operators, range(g.OperatorsLength())):
            name = names[op.OpcodeIndex()]
            if (name not in ("QUANTIZE", "DEQUANTIZE") and op.InputsLength()
                    and g.Tensors(op.Inputs(0)).Type() == schema.TensorType.FLOAT32):
                found.add(name)
    return sorted(found)


def scope_tensors(source: str | Path | bytes, scope: str) -> set[str]:
    """Names of the tensors made in the TensorFlow name scope ``scope``, and of those computed
    only from them (a concatenation of their results), over every subgraph."""
    model, _ = _load_flatbuffer(source)
    found: set[str] = set()
    for g in map(model.Subgraphs, range(model.SubgraphsLength())):
        name = [g.Tensors(t).Name().decode() for t in range(g.TensorsLength())]
        found.update(n for n in name if scope in n)
        for op in map(g.Operators, range(g.OperatorsLength())):  # in execution order
            inputs = [name[i] for i in op.InputsAsNumpy() if i >= 0]
            if inputs and all(n in found for n in inputs):
                found.update(name[i] for i in op.OutputsAsNumpy())
    return found


def signature_shapes(path: str | Path):
    """Signature -> {input name: shape} and {output name: shape} (-1 marks a dynamic dim)."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(path))
    inputs, outputs = {}, {}
    for key in interp.get_signature_list():
        runner = interp.get_signature_runner(key)
        inputs[key] = {n: tuple(int(v) for v in d["shape_signature"])
                       for n, d in runner.get_input_details().items()}
        outputs[key] = {n: tuple(int(v) for v in d["shape_signature"])
                        for n, d in runner.get_output_details().items()}
    return inputs, outputs
