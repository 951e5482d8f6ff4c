"""The runtimes that run the network (see ``base.SegmentRunner``); each imports its engine lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import MicroISPError

if TYPE_CHECKING:
    from ..model import ModelConfig
    from .base import SegmentRunner

#: Backend names, the default first: ``openvino`` (built from the weights, no TensorFlow),
#: ``tf`` (TensorFlow, the training framework) and ``tflite`` (LiteRT, runs an exported file).
BACKENDS = ("openvino", "tf", "tflite")


def make_runner(backend: str, config: ModelConfig, params: dict[str, Any], model: str | Path | None = None,
                threads: int | None = None, conditioning: dict[str, Any] | None = None,
                name: str = "") -> SegmentRunner:
    """The one runner factory: ``"openvino"`` (the default) and ``"tf"`` (TensorFlow) build the
    network of ``config`` and ``params``; ``"tflite"`` (LiteRT) runs ``model``, a segmented
    ``microisp export --tflite`` file, checked to hold the same ``config`` and ``conditioning``
    (a ``Conditioning.to_dict()``; None: not checked) as the weights called ``name``."""
    if backend == "openvino":
        from .openvino import OpenVINORunner

        return OpenVINORunner(config, params, threads=threads)
    if backend == "tf":
        from .tensorflow import TensorFlowRunner

        return TensorFlowRunner(config, params, threads=threads)
    if backend == "tflite":
        if model is None:
            raise MicroISPError("the tflite backend runs an exported file: give --model FILE "
                                "(make one with: microisp export --tflite -o FILE)")
        from .litert import LiteRTRunner

        runner = LiteRTRunner(model, threads=threads)
        if conditioning is not None:
            runner.check_matches(config, conditioning, name)
        return runner
    raise MicroISPError(f"unknown backend {backend!r}; available: {', '.join(BACKENDS)}")
