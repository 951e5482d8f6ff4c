"""LiteRT runtime: the segments and heads of a ``microisp export`` file, run by ai-edge-litert.

A *segmented* export (``microisp export --tflite`` without ``--resolution``/``--tile-size``) holds
one signature per segment and per attention head, all with dynamic spatial dimensions, and the
model config in the file's metadata (names and layout: ``tflite_format.py``).
:class:`LiteRTRunner` implements ``SegmentRunner`` over it, so ``tiling.run_tiled`` runs a TFLite
file exactly as it runs TensorFlow. The signatures take the state split per branch: splitting
here, in numpy, keeps slicing ops out of the file. Only ``ai_edge_litert`` is imported (start-up
0.1 s), never TensorFlow.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelFileError
from ..model import ModelConfig
from .base import SegmentRunner
from ..tflite_format import (ATTENTION, METADATA_FORMAT, METADATA_NAME, head_feeds, head_inputs,
                             head_key, read_metadata, segment_feeds, segment_inputs, segment_key,
                             segment_output)


class LiteRTRunner(SegmentRunner):
    """Runs a segmented ``.tflite`` export with LiteRT.

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
        expected = {segment_key(i): segment_inputs(self.config, i) for i in range(n)}
        expected.update({head_key(i): head_inputs(self.config) for i in range(n - 1)})
        try:
            runners = {key: self.interpreter.get_signature_runner(key) for key in expected}
            for key, runner in runners.items():
                if set(runner.get_input_details()) != {name for name, _ in expected[key]}:
                    raise ValueError(f"signature {key} has inputs {sorted(runner.get_input_details())}")
        except ValueError as exc:  # "Invalid signature_key": the metadata claims another network
            raise ModelFileError(f"{self.path}: its signatures do not match the network its metadata "
                                 f"describes ({exc})") from None
        self._segments = [runners[segment_key(i)] for i in range(n)]
        self._heads = [runners[head_key(i)] for i in range(n - 1)]

    def check_matches(self, config: ModelConfig, conditioning: Mapping[str, Any], name: str) -> None:
        """Raise :class:`ModelFileError` unless the file was exported from a network of ``config``
        fed with ``conditioning`` (its ``to_dict()`` form, which prepares the input); ``name``
        names those weights in the message."""
        if self.config != config or self.metadata.get("conditioning") != dict(conditioning):
            raise ModelFileError(
                f"{self.path} was exported from weights {self.metadata.get('weights')!r}, whose "
                f"model or input conditioning differ from {name!r}'s: pass the weights "
                "it was exported from (--weights)")

    def segment(self, index, x, state=None, attention=None) -> np.ndarray:
        feeds = segment_feeds(self.config, index, x, state, attention)
        return self._run(self._segments[index], feeds)[segment_output(self.config, index)]

    def head(self, index, samples) -> np.ndarray:
        return self._run(self._heads[index], head_feeds(self.config, samples))[ATTENTION]

    def _run(self, signature, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        try:
            return signature(**{k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()})
        except RuntimeError as exc:  # a corrupt file that loads but cannot run (a kernel refuses it)
            raise ModelFileError(f"{self.path}: LiteRT cannot run it ({str(exc).splitlines()[0]})") from None
