"""MicroISP, the network: one definition shared by develop, tiling, export, bench and training.

The network maps a packed Bayer mosaic, NHWC float32 of shape (N, H/2, W/2, 4), to an RGB image of
shape (N, H, W, 3). Three branches, one per output colour, each run ``stages`` stages of
``blocks`` attention blocks (3 conv 3x3 + PReLU, a global channel attention and a residual skip),
one more conv 3x3 + PReLU and an output conv 3x3 + tanh. Stage ``g + 1`` of branch ``i`` reads the
tanh output of stage ``g`` of branch ``i``; the last stage's ``tanh * 0.58 + 0.5`` (or, with a fixed
``base`` demosaic, ``base + tanh * 0.58``) is depth-to-space'd to one full-resolution channel.

The attention blocks average over the whole image, so the network is exposed as *segments*, the
local computations between attention points, and *heads*, the attention computations, which read
only the stride-3 samples ``features[:, ::3, ::3, :]`` of the features before each attention point.
:func:`forward_segments` composes them over a whole frame (``MicroISP.__call__``, the runtimes'
whole-frame path, export); ``tiling.py`` composes the very same functions tile by tile. Tensors
crossing a segment boundary are:

- ``state``: (N, h, w, 6F) float32, ``[pre_0, pre_1, pre_2, skip_0, skip_1, skip_2]`` where
  ``pre_i`` are branch ``i``'s features before the attention and ``skip_i`` its block's skip input;
- ``probe``: ``state[..., :3F]``, what the heads sample;
- ``attention``: (N, 1, 1, 3F) float32, the sigmoid scales of all three branches.

Parameters are a flat mapping name -> array (numpy arrays, tf constants or tf.Variables); names are
listed by :func:`parameter_shapes`. TensorFlow is imported only when the network is built or run.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

from . import defaults
from .base_demosaic import ENCODED_BASES, base_macs, base_reach

BRANCHES = 3
PACKED_CHANNELS = 4
OUTPUT_SCALE = 0.58
OUTPUT_SHIFT = 0.5
ATTENTION_STRIDE = 3
ATTENTION_STRIDED_CONVS = 3
#: Probe-map rows (and columns) of one block of a head's strided convolutions: they do not overlap.
HEAD_SPAN = ATTENTION_STRIDE ** ATTENTION_STRIDED_CONVS

Base = Literal["none", "bilinear", "mhc", "lmmse", "lmmse-ri"]
BASES: tuple[str, ...] = ("none", "bilinear", "mhc", *ENCODED_BASES)
# ENCODED_BASES (base_demosaic) work in the sRGB-curve domain: the network reads the encoded
# input, adds its output to the encoded base, and the sum is decoded (``curve_decode``).
#: TensorFlow name scope of the encoded bases' curve and base: an INT8 export keeps it in float.
FLOAT_SCOPE = "float_base"


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Shape of a MicroISP network. The defaults are the published model (13,560 parameters).

    ``base``: a fixed demosaic that the network refines (``base_demosaic``: bilinear and MHC are
    constant 3x3 convolutions in the packed domain; ``"lmmse"`` is directional and works in the
    sRGB-curve domain, ``"lmmse-ri"`` the same with red and blue by residual interpolation); with ``"none"`` (published) the network draws the whole image.
    ``base_input`` (an encoded base only): the last stage's last 3x3 convolution also reads the
    encoded base, its 12 packed channels (``s{last}.b{i}.base.kernel``), so the network sees what
    it corrects.
    ``attention``: whether each block ends with the global channel attention (published); without
    it a block is its three convolutions and the skip, the network has no attention point and
    runs in one segment (one pass, no state between windows).
    """

    stages: int = 2
    blocks: int = 2
    features: int = 4
    attention_hidden: int = 4
    base: Base = "none"
    base_input: bool = False
    attention: bool = True

    def __post_init__(self) -> None:
        for name, limit in defaults.MODEL_FIELD_LIMITS.items():
            value, low = getattr(self, name), 0 if name == "blocks" else 1
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= limit:
                raise ValueError(f"ModelConfig.{name} must be an integer {low}..{limit}, got {value!r}")
        if count_parameters(self) > defaults.MAX_PARAMETERS:
            raise ValueError(f"the model has {count_parameters(self)} parameters, more than "
                             f"{defaults.MAX_PARAMETERS}")
        if self.base not in BASES:
            raise ValueError(f"ModelConfig.base must be one of {', '.join(BASES)}; got {self.base!r}")
        if not isinstance(self.base_input, bool) or (self.base_input and self.base not in ENCODED_BASES):
            raise ValueError(f"ModelConfig.base_input must be false or true with base "
                             f"{' or '.join(ENCODED_BASES)}; got {self.base_input!r} with {self.base!r}")
        if not isinstance(self.attention, bool):
            raise ValueError(f"ModelConfig.attention must be true or false; got {self.attention!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(unknown)}")
        return cls(**data)

    # --- derived facts about the structure --------------------------------------------------
    @property
    def convs_per_branch(self) -> int:
        """3x3 conv + PReLU layers per branch and stage (the output conv not counted)."""
        return 3 * self.blocks + 1

    @property
    def attention_points(self) -> list[tuple[int, int]]:
        """(stage, block) of every attention point, in the order the network reaches them."""
        if not self.attention:
            return []
        return [(g, k) for g in range(self.stages) for k in range(self.blocks)]

    @property
    def num_segments(self) -> int:
        return len(self.attention_points) + 1

    def segment_reads_input(self, index: int) -> bool:
        """Whether segment ``index`` reads the packed input: the first, and the last with a base."""
        return index == 0 or (index == self.num_segments - 1 and self.base != "none")

    @property
    def state_channels(self) -> int:
        return 2 * BRANCHES * self.features

    @property
    def probe_channels(self) -> int:
        return BRANCHES * self.features

    def segment_radius(self, index: int) -> int:
        """How many packed pixels of context segment ``index`` needs for an exact core.

        Every 3x3 convolution (SAME) widens the receptive field by one pixel per side.
        """
        if not 0 <= index < self.num_segments:
            raise IndexError(f"segment {index} out of range 0..{self.num_segments - 1}")
        points = self.attention_points
        start = (0, 0) if index == 0 else (points[index - 1][0], points[index - 1][1] + 1)
        end = points[index] if index < len(points) else None
        radius, (g, k) = 0, start
        while True:
            if k < self.blocks:
                if (g, k) == end:
                    return radius + 3
                radius, k = radius + 3, k + 1
                continue
            radius += 2  # last conv + output conv of the stage
            if g + 1 >= self.stages:  # the base is added to the output (and read by the last conv)
                return max(radius, base_reach(self.base) + (2 if self.base_input else 0))
            g, k = g + 1, 0

    @property
    def min_packed_size(self) -> int:
        """Smallest packed frame side the attention heads accept (79 for the published model)."""
        size = 1
        for _ in range(ATTENTION_STRIDED_CONVS):
            size = 3 * size  # a VALID 3x3 stride-3 conv needs 3 * out inputs
        return ATTENTION_STRIDE * (size - 1) + 1 if self.attention_points else 1



def macs_per_pixel(config: ModelConfig) -> float:
    """Multiply-accumulates of the network's convolutions per full-resolution output pixel:
    every branch's 3x3 convs, the base demosaic and the attention heads (which read 1/9 of the
    packed pixels, then 1/81, ...). Bias, PReLU and the attention scaling are not counted."""
    f = config.features
    per_stage = 9 * PACKED_CHANNELS * f + 9 * f * f * (config.convs_per_branch - 1) \
        + 9 * f * PACKED_CHANNELS
    head = f * f / ATTENTION_STRIDE ** 2 + sum(9 * f * f / 9 ** (m + 1) / ATTENTION_STRIDE ** 2
                                               for m in range(ATTENTION_STRIDED_CONVS))
    base_input = 9 * BRANCHES * PACKED_CHANNELS * f if config.base_input else 0
    packed = BRANCHES * (config.stages * per_stage + base_input + len(config.attention_points) * head)
    return packed / 4 + base_macs(config.base)  # four output pixels per packed pixel


# --- parameters -----------------------------------------------------------------------------
def parameter_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every trainable parameter. Kernels are HWIO."""
    f, h = config.features, config.attention_hidden
    shapes: dict[str, tuple[int, ...]] = {}
    for g in range(config.stages):
        for i in range(BRANCHES):
            p = f"s{g}.b{i}"
            for j in range(config.convs_per_branch):
                cin = PACKED_CHANNELS if j == 0 else f
                shapes[f"{p}.conv{j}.kernel"] = (3, 3, cin, f)
                shapes[f"{p}.conv{j}.bias"] = (f,)
                shapes[f"{p}.conv{j}.alpha"] = (f,)
            shapes[f"{p}.out.kernel"] = (3, 3, f, PACKED_CHANNELS)
            shapes[f"{p}.out.bias"] = (PACKED_CHANNELS,)
            if config.base_input and g == config.stages - 1:
                shapes[f"{p}.base.kernel"] = (3, 3, BRANCHES * PACKED_CHANNELS, f)
            for k in range(config.blocks if config.attention else 0):
                a = f"{p}.att{k}"
                dims = [(1, f, f)] + [(3, f, f)] * ATTENTION_STRIDED_CONVS + [(1, f, h), (1, h, f)]
                for m, (size, cin, cout) in enumerate(dims):
                    shapes[f"{a}.conv{m}.kernel"] = (size, size, cin, cout)
                    shapes[f"{a}.conv{m}.bias"] = (cout,)
                    if m < len(dims) - 1:
                        shapes[f"{a}.conv{m}.alpha"] = (cout,)
    return shapes


def count_parameters(config: ModelConfig) -> int:
    return int(sum(np.prod(s) for s in parameter_shapes(config).values()))


PUBLISHED = ModelConfig()


def init_parameters(config: ModelConfig, seed: int = 0, zero_output: bool = False) -> dict[str, np.ndarray]:
    """Random parameters: He-normal kernels, zero biases, PReLU slopes 0.25 (float32).

    ``zero_output`` zeroes the last stage's output convs, so that a network with a ``base``
    starts as exactly that base demosaic.
    """
    rng = np.random.default_rng(seed)
    params: dict[str, np.ndarray] = {}
    for name, shape in parameter_shapes(config).items():
        if name.endswith(".kernel"):
            fan_in = shape[0] * shape[1] * shape[2]
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name.endswith(".alpha"):
            value = np.full(shape, 0.25)
        else:
            value = np.zeros(shape)
        params[name] = value.astype(np.float32)
    if zero_output:
        for i in range(BRANCHES):
            params[f"s{config.stages - 1}.b{i}.out.kernel"][:] = 0.0
    return params


def grow_parameters(params: Mapping[str, np.ndarray], source: ModelConfig, target: ModelConfig,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Parameters for ``target`` that compute what ``params`` compute under ``source``.

    ``target`` may have more attention blocks per stage (``source`` at least one), may add
    ``base_input``, and may swap one encoded base for another (the parameters are the same; the
    network then refines the other base, so its output changes and training adapts it). The new blocks go at the end of each stage and start as identities: their
    first conv is the identity with PReLU slope 1 (so the skip is the block's input) and their
    third conv is zero (so the attended part is 0); their middle conv and attention head start
    random, so training can move them. The base's new input kernels start at zero.
    """
    swap = source.base in ENCODED_BASES and target.base in ENCODED_BASES
    if (dataclasses.replace(target, blocks=source.blocks, base_input=source.base_input,
                            base=source.base if swap else target.base) != source
            or target.blocks < source.blocks or (target.blocks > source.blocks and source.blocks < 1)
            or source.base_input > target.base_input):
        raise ValueError("the model may only add attention blocks (to a network that has some), "
                         f"the base input or swap encoded bases: {source.to_dict()} -> {target.to_dict()}")
    check_parameters(source, params)
    grown = init_parameters(target, seed=seed)
    old_last, new_last = 3 * source.blocks, 3 * target.blocks
    for name, value in params.items():
        grown[name.replace(f".conv{old_last}.", f".conv{new_last}.") if ".att" not in name else name] = value
    if target.base_input and not source.base_input:
        for i in range(BRANCHES):
            grown[f"s{target.stages - 1}.b{i}.base.kernel"][:] = 0.0
    eye = np.eye(target.features, dtype=np.float32)
    for g in range(target.stages):
        for i in range(BRANCHES):
            for k in range(source.blocks, target.blocks):
                p = f"s{g}.b{i}.conv"
                grown[f"{p}{3 * k}.kernel"][:] = 0.0
                grown[f"{p}{3 * k}.kernel"][1, 1] = eye
                grown[f"{p}{3 * k}.alpha"][:] = 1.0
                grown[f"{p}{3 * k + 2}.kernel"][:] = 0.0
    return grown


def check_parameters(config: ModelConfig, params: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first missing, extra or mis-shaped parameter."""
    expected = parameter_shapes(config)
    missing = sorted(set(expected) - set(params))
    extra = sorted(set(params) - set(expected))
    if missing or extra:
        raise ValueError(
            f"parameters do not match the model config: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for name, shape in expected.items():
        got = tuple(int(d) for d in np.shape(params[name]))
        if got != shape:
            raise ValueError(f"parameter {name} has shape {got}, expected {shape}")


def forward_segments(config: ModelConfig, x, segment: Callable, head: Callable,
                     samples: Callable | None = None):
    """The whole-frame forward pass, composed from the network's pieces in the one order they
    run: ``segment(index, x, state, attention)`` then ``head(index, samples(state))`` at every
    attention point, then the last segment, whose result is returned.

    Used by :meth:`MicroISP.__call__` (TensorFlow), ``tiling`` over any runtime and export.
    ``samples``: what a head reads of a state (default :func:`probe_samples`).
    """
    sample = samples if samples is not None else (lambda state: probe_samples(state, config))
    state = attention = None
    for index in range(config.num_segments - 1):
        state = segment(index, x, state, attention)
        attention = head(index, sample(state))
    return segment(config.num_segments - 1, x, state, attention)


def probe_samples(state, config: ModelConfig, origin: tuple[int, int] = (0, 0)):
    """The stride-3 samples an attention head reads: ``state[:, oy::3, ox::3, :3F]``.

    ``origin`` is the offset of the first sample inside ``state`` (non-zero for tiles whose top
    left corner is not on the global sampling grid).
    """
    oy, ox = origin
    return state[:, oy::ATTENTION_STRIDE, ox::ATTENTION_STRIDE, :config.probe_channels]


def split_features(t, config: ModelConfig) -> list:
    """``t``'s channels in pieces of ``config.features``: a state (6F) -> ``pre_0..2, skip_0..2``,
    attention scales or probe samples (3F) -> one per branch. Slices: numpy views or TF ops."""
    f = config.features
    return [t[..., j * f:(j + 1) * f] for j in range(t.shape[-1] // f)]
