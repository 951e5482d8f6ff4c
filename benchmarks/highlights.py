"""The three ``--highlights`` modes on a real phone RAW: how much colour is left where the sensor clipped.

    PYTHONPATH=src python benchmarks/highlights.py [../shared/data/raw/vivo_x90_rggb_patch.npy]

For each mode, the photo is developed (default weights, linear sRGB, 16 bit) and, over the pixels
whose 2x2 cell of the mosaic holds a clipped sample (>= 98% of the white level), the script prints
the mean brightness and the mean chroma (max - min of R, G, B), also apart for the clipped pixels
that the clip render shows coloured (a channel below 75%) and near white (every channel above: a
cast there is a clipping artefact). The figures are in docs/cli.md.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

from microisp_cli.develop import develop, make_runner
from microisp_cli.vocabulary import HIGHLIGHT_MODES
from microisp_cli.raw import decode
from microisp_cli.weights import load_weights


def main(path: Path) -> None:
    warnings.simplefilter("ignore")
    mosaic = decode(path)
    cells = mosaic.data.reshape(mosaic.data.shape[0] // 2, 2, mosaic.data.shape[1] // 2, 2)
    clipped = np.repeat(np.repeat((cells >= 0.98 * mosaic.white).any(axis=(1, 3)), 2, 0), 2, 1)
    weights = load_weights(None)
    runner = make_runner(weights)
    print(f"{path.name}: {mosaic.size[0]}x{mosaic.size[1]}, {clipped.mean():.2%} of pixels in clipped cells")
    print("| mode | mean brightness (clipped) | mean chroma (clipped) | chroma (clipped, coloured) | "
          "chroma (clipped, near white) | mean brightness (rest) |")
    print("|---|---|---|---|---|---|")
    white = None
    for mode in HIGHLIGHT_MODES:
        image = develop(path, weights, runner=runner, colorspace="linear-srgb", highlights=mode).astype(float) / 65535
        inside, outside = image[clipped], image[~clipped]
        if white is None:  # from the clip render: every channel above 75% (a cast, not a colour)
            white = inside.min(axis=1) >= 0.75
        chroma = inside.max(axis=1) - inside.min(axis=1)
        print(f"| {mode} | {inside.mean():.3f} | {chroma.mean():.3f} | {chroma[~white].mean():.3f} | "
              f"{chroma[white].mean():.3f} | {outside.mean():.3f} |")
    print(f"near white: {white.mean():.1%} of the clipped pixels")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/raw/vivo_x90_rggb_patch.npy"))
