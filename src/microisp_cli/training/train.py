"""Training MicroISP on synthetic pairs: losses, Adam with a cosine schedule, checkpoints, resume.

The parameters are ``tf.Variable``s in a dict passed to :class:`model.MicroISP`; Adam is written
out here (two moment variables per parameter) so that one ``tf.train.Checkpoint`` holds the
parameters, the optimizer state and the step. Batches are a pure function of ``(seed, step)``
(:class:`data.PatchSampler`), so a resumed run continues exactly where it stopped.

The network outputs white-balanced linear camera RGB; the loss is computed after each sample's
camera -> sRGB matrix and the sRGB transfer curve, i.e. on the rendering a user sees.

TensorFlow 2.21 with oneDNN on crashes in the gradient of a stride-3 1x1 convolution on some
CPUs; ``network.py`` avoids that op. ``microisp train`` turns oneDNN on for one-pass networks
(no attention, no strided convolution), where TensorFlow would leave it off on CPUs without
AVX-512 VNNI.
"""

from __future__ import annotations

import dataclasses
import json
import math
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import defaults
from ..colour import SRGB_BREAK, SRGB_GAMMA, SRGB_OFFSET, SRGB_SLOPE
from ..model import ModelConfig, grow_parameters, init_parameters
from ..tensorflow_import import import_tensorflow
from ..vocabulary import choose
from ..weights import Conditioning, Weights, load_weights, save_weights
from . import data


#: The training losses, and what the loss does with rendered values outside [0, 1]
#: (:func:`render_for_loss`).
LOSSES = ("l1", "mse")
OUT_OF_RANGE = ("clip", "extend")


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; saved beside its checkpoints as ``config.json``."""

    photos: str = defaults.TRAIN_PHOTOS
    stages: int = 2
    blocks: int = 2
    features: int = 4
    attention_hidden: int = 4
    base: str = defaults.TRAIN_BASE
    base_input: bool = False
    attention: bool = True
    steps: int = defaults.TRAIN_STEPS
    batch: int = defaults.TRAIN_BATCH
    patch: int = defaults.TRAIN_PATCH
    lr: float = defaults.TRAIN_LR
    lr_min: float = defaults.TRAIN_LR_MIN
    warmup: int = defaults.TRAIN_WARMUP
    loss: str = defaults.TRAIN_LOSS
    ssim_weight: float = 0.0
    seed: int = defaults.TRAIN_SEED
    checkpoint_every: int = defaults.TRAIN_CHECKPOINT_EVERY
    noisy_fraction: float = 0.5
    colour_fraction: float = 0.0    # share of patches with shuffled, saturated colours (data.colour_jitter)
    highlight_fraction: float = 0.0  # share of patches over-exposed 1-4x (clipped highlights)
    smooth_fraction: float = 0.0    # share of patches cut from photos upscaled 2-4x (smooth frames)
    out_of_range: str = defaults.TRAIN_OUT_OF_RANGE  # "clip" or "extend": see render_for_loss
    init: str = ""              # weights (name or path) to start from; see model.grow_parameters

    @property
    def model(self) -> ModelConfig:
        return ModelConfig(stages=self.stages, blocks=self.blocks, features=self.features,
                           attention_hidden=self.attention_hidden, base=self.base,
                           base_input=self.base_input, attention=self.attention)

    def __post_init__(self) -> None:
        choose("loss", self.loss, LOSSES)
        choose("out_of_range", self.out_of_range, OUT_OF_RANGE)
        side = self.patch // 2
        if self.blocks and side < self.model.min_packed_size:
            raise ValueError(f"patch {self.patch} is too small for the attention blocks: "
                             f"need at least {2 * self.model.min_packed_size} pixels")


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay from ``lr`` to ``lr_min`` at ``steps``."""
    if step < config.warmup:
        return config.lr * (step + 1) / config.warmup
    t = min(1.0, (step - config.warmup) / max(1, config.steps - config.warmup))
    return config.lr_min + 0.5 * (config.lr - config.lr_min) * (1.0 + math.cos(math.pi * t))


def srgb_curve_tf(x):
    """:func:`colour.srgb_encode` (same constants) on a TensorFlow tensor, clipped to [0, 1] first."""
    tf = import_tensorflow()

    x = tf.clip_by_value(x, 0.0, 1.0)
    return tf.where(x <= SRGB_BREAK, SRGB_SLOPE * x,
                    (1 + SRGB_OFFSET) * tf.pow(tf.maximum(x, SRGB_BREAK), 1.0 / SRGB_GAMMA) - SRGB_OFFSET)


def render_tf(linear, cam_to_srgb):
    """(B, H, W, 3) white-balanced camera RGB and (B, 3, 3) matrices -> sRGB in [0, 1]."""
    tf = import_tensorflow()

    return srgb_curve_tf(tf.einsum("bhwc,bdc->bhwd", linear, cam_to_srgb))


def render_for_loss(linear, cam_to_srgb, target):
    """:func:`render_tf` as the loss sees it with ``--out-of-range extend``: below 0 the curve goes
    on with its linear segment (12.92 x) instead of clipping, and above 1 likewise (its slope at 1)
    wherever the target is not clipped, so that an output pushed out of range is pulled back. A
    plain clip (``clip``, what the bundled default was trained with) has no gradient there: the
    network learnt to leave dark and saturated tones below 0, which develop then clips. Fine-tuning
    the default with ``extend`` made it worse (docs/weights.md); from scratch it is untested."""
    tf = import_tensorflow()

    x = tf.einsum("bhwc,bdc->bhwd", linear, cam_to_srgb)
    below = tf.minimum(x, 0.0) * SRGB_SLOPE
    above = tf.maximum(x - 1.0, 0.0) * ((1 + SRGB_OFFSET) / SRGB_GAMMA) * tf.cast(target < 1.0, x.dtype)
    return srgb_curve_tf(x) + below + above


class Trainer:
    """One training run in ``run_dir``: checkpoints in ``run_dir/ckpt``, config in ``config.json``."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, photos: list[np.ndarray] | None = None):
        tf = import_tensorflow()

        self.config = config
        self.run_dir = Path(run_dir)
        self.model_config = config.model
        init = init_parameters(self.model_config, seed=config.seed, zero_output=config.base != "none")
        if config.init and tf.train.latest_checkpoint(str(self.run_dir / "ckpt")) is None:  # else resumed
            start = load_weights(config.init)
            if start.conditioning != Conditioning():
                raise ValueError(f"{config.init}: --init needs weights with the default conditioning")
            try:
                init = grow_parameters(start.params, start.config, self.model_config, seed=config.seed)
            except ValueError as exc:
                raise ValueError(f"{config.init}: {exc}") from None
        self.params = {k: tf.Variable(v, name=k.replace(".", "_")) for k, v in init.items()}
        self.m = {k: tf.Variable(tf.zeros_like(v)) for k, v in self.params.items()}
        self.v = {k: tf.Variable(tf.zeros_like(v)) for k, v in self.params.items()}
        self.step = tf.Variable(0, dtype=tf.int64)
        self.seed = tf.Variable(config.seed, dtype=tf.int64)
        root = tf.Module()
        root.params, root.m, root.v = self.params, self.m, self.v
        root.step, root.seed = self.step, self.seed
        self._root = root
        self.checkpoint = tf.train.Checkpoint(root=root)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.run_dir / "ckpt"), max_to_keep=None)
        from ..network import MicroISP

        self.net = MicroISP(self.model_config, self.params)
        if photos is None:
            train_paths, _ = data.split_photos(config.photos)
            photos = data.load_photos(train_paths)
        self.sampler = data.PatchSampler(photos, config.patch, config.batch, config.seed,
                                         noisy_fraction=config.noisy_fraction,
                                         colour_fraction=config.colour_fraction,
                                         highlight_fraction=config.highlight_fraction,
                                         smooth_fraction=config.smooth_fraction)
        self._train_step = tf.function(self._step_fn, reduce_retracing=True)

    # --- state ---------------------------------------------------------------------------------
    def restore(self) -> int:
        """Restore the latest checkpoint of ``run_dir``; returns its step (0 if none)."""
        latest = self.manager.latest_checkpoint
        if latest:
            self.checkpoint.restore(latest).assert_existing_objects_matched()
            if int(self.seed.numpy()) != self.config.seed:
                raise ValueError(f"{self.run_dir}: checkpoint seed {int(self.seed.numpy())} != --seed {self.config.seed}")
        return int(self.step.numpy())

    def save(self) -> str:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(self.config), indent=2) + "\n")
        return self.manager.save(checkpoint_number=int(self.step.numpy()))

    def weights(self, name: str = "trained", description: str = "") -> Weights:
        params = {k: v.numpy() for k, v in self.params.items()}
        return Weights(name=name, config=self.model_config, params=params, conditioning=Conditioning(),
                       description=description)

    # --- one step ------------------------------------------------------------------------------
    def _loss(self, out, target):
        tf = import_tensorflow()

        diff = out - target
        loss = tf.reduce_mean(tf.abs(diff)) if self.config.loss == "l1" else tf.reduce_mean(diff * diff)
        if self.config.ssim_weight:
            ssim = tf.image.ssim(out, target, max_val=1.0)
            loss += self.config.ssim_weight * (1.0 - tf.reduce_mean(ssim))
        return loss

    def _step_fn(self, packed, target, matrices, lr):
        tf = import_tensorflow()

        with tf.GradientTape() as tape:
            linear = self.net(packed)
            out = render_for_loss(linear, matrices, target) if self.config.out_of_range == "extend" \
                else render_tf(linear, matrices)
            loss = self._loss(out, target)
        names = list(self.params)
        grads = tape.gradient(loss, [self.params[k] for k in names])
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        b1, b2, eps = 0.9, 0.999, 1e-8
        correction = tf.sqrt(1.0 - tf.pow(b2, t)) / (1.0 - tf.pow(b1, t))
        for k, g in zip(names, grads):
            m, v = self.m[k], self.v[k]
            m.assign(b1 * m + (1.0 - b1) * g)
            v.assign(b2 * v + (1.0 - b2) * g * g)
            self.params[k].assign_sub(lr * correction * m / (tf.sqrt(v) + eps))
        mse = tf.reduce_mean(tf.square(tf.clip_by_value(out, 0.0, 1.0) - target))
        return loss, mse

    def run(self, steps: int | None = None, progress: Callable[[dict[str, Any]], None] | None = None,
            stop: Callable[[], bool] | None = None) -> dict[str, Any]:
        """Train up to ``steps`` (default: the config's), checkpointing every ``checkpoint_every``
        steps and at the end. ``progress`` gets a dict per step (step, loss, psnr, lr, seconds)."""
        tf = import_tensorflow()

        total = self.config.steps if steps is None else steps
        start = int(self.step.numpy())
        batches: queue.Queue = queue.Queue(maxsize=3)

        def produce():
            for s in range(start, total):
                batches.put(self.sampler.batch_at(s))

        threading.Thread(target=produce, daemon=True).start()
        t0 = time.perf_counter()
        info: dict[str, Any] = {"step": start}
        for s in range(start, total):
            packed, target, matrices = batches.get()
            lr = learning_rate(s, self.config)
            loss, mse = self._train_step(tf.constant(packed), tf.constant(target), tf.constant(matrices),
                                         tf.constant(lr, tf.float32))
            step = s + 1
            info = {"step": step, "total": total, "loss": float(loss),
                    "psnr": float(-10.0 * np.log10(max(float(mse), 1e-12))), "lr": lr,
                    "seconds": time.perf_counter() - t0}
            if progress:
                progress(info)
            if step % self.config.checkpoint_every == 0 or step == total:
                info["checkpoint"] = self.save()
            if stop and stop():
                info["checkpoint"] = self.save()
                break
        return info


def export_checkpoint(run_dir: str | Path, output: str | Path, step: int | None = None,
                      name: str = "default", description: str = "") -> Path:
    """Write the weights of a run's checkpoint (latest, or ``step``) as ``output``.{npz,json}."""
    tf = import_tensorflow()

    run_dir = Path(run_dir)
    config = TrainConfig(**json.loads((run_dir / "config.json").read_text()))
    model_config = config.model
    init = init_parameters(model_config)
    params = {k: tf.Variable(v) for k, v in init.items()}
    root = tf.Module()
    root.params = params
    ckpt = tf.train.Checkpoint(root=root)
    path = str(run_dir / "ckpt" / f"ckpt-{step}") if step is not None else tf.train.latest_checkpoint(str(run_dir / "ckpt"))
    if not path:
        raise FileNotFoundError(f"{run_dir}: no checkpoint")
    ckpt.restore(path).expect_partial()
    weights = Weights(name=name, config=model_config, params={k: v.numpy() for k, v in params.items()},
                      conditioning=Conditioning(), description=description)
    extra = {"training": {"config": dataclasses.asdict(config), "checkpoint": Path(path).name}}
    return save_weights(weights, output, extra=extra)
