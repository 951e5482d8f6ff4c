"""Error of ``attention="tile"`` (per-tile attention, feather-blended) against the exact pipeline.

Published weights (../shared/reference/upstream-microisp/MicroISP.ckpt) on a real frame
(../shared/data/raw/canon550d_colorchart.dng, rawpy ``raw_image_visible``, packed in the published
channel order B, Gr, R, Gb), with two input scalings: the published script's ``/ (4 * 255)`` (meant
for 10-bit data; this 14-bit file then reaches about 15) and black-subtracted, divided by
white - black (range [0, 1]). Errors are on the float output before quantisation, in 1/255 units.

    python benchmarks/tiling_error.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


def main() -> None:
    import rawpy

    from microisp_cli.runtimes.tensorflow import TensorFlowRunner
    from microisp_cli.tiling import run_array
    from microisp_cli.weights import load_weights

    weights = load_weights(SHARED / "reference" / "upstream-microisp" / "MicroISP.ckpt")
    runner = TensorFlowRunner(weights.config, weights.params)
    with rawpy.imread(str(SHARED / "data" / "raw" / "canon550d_colorchart.dng")) as raw:
        mosaic = raw.raw_image_visible.astype(np.float32)
        black = float(np.mean(raw.black_level_per_channel))
        white = float(raw.white_level)
    h, w = mosaic.shape[0] // 2 * 2, mosaic.shape[1] // 2 * 2
    mosaic = mosaic[:h, :w]
    sites = {"R": mosaic[0::2, 0::2], "Gr": mosaic[0::2, 1::2], "Gb": mosaic[1::2, 0::2],
             "B": mosaic[1::2, 1::2]}
    packed = np.stack([sites[c] for c in weights.conditioning.channels], -1)
    tiles = [int(t) for t in sys.argv[1:]] or [256, 512, 1024]
    print(f"frame {w}x{h} (packed {w // 2}x{h // 2})")
    print("| input scaling | tile size | max abs error | mean abs error | 99.9th percentile |")
    print("|---|---|---|---|---|")
    for name, x in [("/ (4 * 255) (published script)", packed / (4 * 255)),
                    ("(raw - black) / (white - black)", (packed - black) / (white - black))]:
        x = x.astype(np.float32)
        exact = run_array(runner, x, 0)
        tiled = run_array(runner, x, 1024)
        assert np.abs(tiled - exact).max() <= 1e-4
        for tile in tiles:
            err = np.abs(run_array(runner, x, tile, attention="tile") - exact) * 255
            print(f"| {name} | {tile} | {err.max():.1f}/255 | {err.mean():.2f}/255 | "
                  f"{np.percentile(err, 99.9):.1f}/255 |", flush=True)


if __name__ == "__main__":
    main()
