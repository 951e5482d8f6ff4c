"""The smooth-frame bias of a weights file: PSNR, share of negative outputs, dark-tone error.

Each of the first held-out photos is cropped (160 px) and upscaled 3x with Lanczos (a frame with
no detail at the Bayer frequency), unprocessed into a clean 12-bit RGGB mosaic with a held-out
camera's matrix, and run through the network whole-frame (TensorFlow). Reported per photo: PSNR
against the truth, the share of linear sRGB outputs below 0 (develop clips them), and the mean
error in 8-bit levels of each channel where the truth is below 32/255.

    python benchmarks/smooth_bias.py default mhc runs/mine/w.json
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="weights names or paths")
    parser.add_argument("--photos", default="../shared/data/photos")
    parser.add_argument("--count", type=int, default=6)
    args = parser.parse_args()

    from microisp_cli.tensorflow_import import import_tensorflow
    from microisp_cli.training import data
    from microisp_cli.weights import load_weights

    tf = import_tensorflow()
    paths = data.split_photos(args.photos)[1][:args.count]
    for spec in args.weights:
        net = load_weights(spec).build()
        rows = []
        for k, path in enumerate(paths):
            photo = data.to_float(data.upscale(data.read_photo(path)[:160, :160], 3.0))
            capture = data.draw_capture(np.random.default_rng(k), data.EVAL_CAMERAS, noisy=False,
                                        cfa="RGGB", bits=12)
            packed, target, matrix = data.synthetic_pair(photo, capture, np.random.default_rng(k))
            linear = net(tf.constant(packed[None])).numpy()[0] @ matrix.T
            error = (data.linear_to_srgb(linear) - target)[8:-8, 8:-8]
            dark = target[8:-8, 8:-8] < 32 / 255
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a channel with no dark pixel
                bias = [float(error[..., c][dark[..., c]].mean() * 255) for c in range(3)]
            rows.append((path.name, -10 * np.log10(np.mean(error ** 2)), float((linear < 0).mean()), bias))
        print(f"{spec}: mean PSNR {np.mean([r[1] for r in rows]):.2f} dB")
        for name, psnr, negative, bias in rows:
            print(f"  {name:12s} {psnr:6.2f} dB  below 0: {negative:6.2%}  dark error R G B: "
                  + " ".join(f"{b:+.1f}" for b in bias))


if __name__ == "__main__":
    main()
