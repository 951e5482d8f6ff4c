"""A network without attention from one with it: each global channel attention replaced by its
mean scales over training photos, folded into the convolution before it.

A block's attention multiplies the output of its third conv + PReLU by per-channel sigmoid scales
``s`` (in (0, 1)); with ``s`` fixed, ``s * prelu(conv(y)) = prelu(s * conv(y))``, so the scales go
into that conv's kernel and bias and the block becomes plain convolutions: a one-pass network
(``ModelConfig.attention=False``) that starts close to its source, for training to finish.

    python -m microisp_cli.training.fold weights/default.json runs/fold/fold
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from .. import defaults
from ..model import BRANCHES, ModelConfig, forward_segments
from ..weights import Weights, load_weights, save_weights
from . import data


def attention_scales(weights: Weights, photos: str | Path = defaults.TRAIN_PHOTOS, count: int = 48,
                     seed: int = 0) -> np.ndarray:
    """The attention scales of ``weights`` on ``count`` whole training photos (the held-out split
    never read), each unprocessed with a random camera as in training: (count, points, 3F)."""
    from ..network import MicroISP

    config, net = weights.config, MicroISP(weights.config, weights.params)
    train, _ = data.split_photos(photos)
    rng = np.random.default_rng(seed)
    found = []
    for j in rng.choice(len(train), min(count, len(train)), replace=False):
        photo = data.to_float(data.read_photo(train[j]))
        photo = photo[:photo.shape[0] // 2 * 2, :photo.shape[1] // 2 * 2]
        if min(photo.shape[:2]) < 2 * config.min_packed_size + 8:
            continue
        packed, _, _ = data.synthetic_pair(photo, data.draw_capture(rng), rng)
        scales = []

        def head(index, samples):
            scale = net.head(index, samples)
            scales.append(scale.numpy().reshape(-1))
            return scale

        forward_segments(config, packed[None].astype(np.float32), net.segment, head)
        found.append(np.stack(scales))
    return np.stack(found)


def fold_attention(config: ModelConfig, params: dict[str, np.ndarray],
                   scales: np.ndarray) -> tuple[ModelConfig, dict[str, np.ndarray]]:
    """``config`` without attention and ``params`` with ``scales`` (points, 3F), one per attention
    point, folded into each block's third conv."""
    f = config.features
    folded = {k: v.copy() for k, v in params.items() if ".att" not in k}
    for index, (g, k) in enumerate(config.attention_points):
        for i in range(BRANCHES):
            s = np.asarray(scales[index, i * f:(i + 1) * f], np.float32)
            folded[f"s{g}.b{i}.conv{3 * k + 2}.kernel"] *= s
            folded[f"s{g}.b{i}.conv{3 * k + 2}.bias"] *= s
    return dataclasses.replace(config, attention=False), folded


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="weights with attention (name or path)")
    parser.add_argument("output", help="where to write the folded weights (PATH.npz + PATH.json)")
    parser.add_argument("--photos", default=defaults.TRAIN_PHOTOS)
    parser.add_argument("--count", type=int, default=48)
    args = parser.parse_args(argv)
    weights = load_weights(args.weights)
    scales = attention_scales(weights, args.photos, args.count)
    config, params = fold_attention(weights.config, dict(weights.params), scales.mean(0))
    spread = scales.std(0)
    print(f"{len(scales)} photos: scale spread (std) mean {spread.mean():.3f}, largest {spread.max():.3f}")
    save_weights(dataclasses.replace(weights, config=config, params=params, name=Path(args.output).name,
                                     description=f"{weights.name} with each attention folded to its mean "
                                                 f"scales over {len(scales)} training photos"), args.output)


if __name__ == "__main__":
    main()
