"""INT8 export accuracy on real RAW files: PSNR of the INT8 file against the FP32 TensorFlow network.

For each weights file, exports a segmented INT8 file twice: calibrated on the drawn synthetic
scenes only (what `microisp export --tflite --int8` does without --calibration), and with the
RAW files of --raw added (`--calibration DIR`). Then runs both, and an FP32 export, on the
centre crop of every readable RAW file in --raw (decoded with the weights' conditioning) and
compares each with TensorFlow (output in [0, 1], clipped: `export.check_accuracy`).

    python benchmarks/int8_accuracy.py default mhc --write-doc
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "export.md"
BEGIN, END = "<!-- int8_accuracy:begin -->", "<!-- int8_accuracy:end -->"


def centre(packed, size):
    h, w = packed.shape[:2]
    y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return packed[y:y + size, x:x + size]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", help="weights names or paths")
    parser.add_argument("--raw", default=str(ROOT.parent / "shared" / "data" / "raw"))
    parser.add_argument("--crop", type=int, default=256, help="packed pixels per side")
    parser.add_argument("--write-doc", action="store_true", help=f"write the table into {DOC.name}")
    args = parser.parse_args()

    from microisp_cli.errors import MicroISPError
    from microisp_cli.export import _raw_packed, check_accuracy, export_tflite
    from microisp_cli.weights import load_weights

    raws = sorted(p for p in Path(args.raw).iterdir() if p.is_file())
    header = ["weights", "file", "FP32", "INT8, scenes", "INT8, scenes + RAW"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="microisp-int8-") as tmp:
        for spec in args.weights:
            weights = load_weights(spec)
            files = {
                "FP32": export_tflite(weights, Path(tmp, "fp32.tflite"), check=False),
                "INT8, scenes": export_tflite(weights, Path(tmp, "s.tflite"), "int8", check=False),
                "INT8, scenes + RAW": export_tflite(weights, Path(tmp, "r.tflite"), "int8",
                                                    calibration_sources=[args.raw], check=False),
            }
            rows.append([spec, "(file size)"] + [f"{r.size_kb:.0f} KB" for r in files.values()])
            for raw in raws:
                try:
                    packed = centre(_raw_packed(raw, weights.conditioning), args.crop)
                except MicroISPError:
                    continue
                cells = []
                for result in files.values():
                    acc = check_accuracy(result.path, weights, packed)
                    cells.append(f"{acc.psnr_db:.1f} dB" if acc.psnr_db < 100 else f"{acc.max_abs:.1e} max")
                rows.append([spec, raw.name] + cells)
                print(" | ".join(rows[-1]), flush=True)
    table = "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    print(table)
    if args.write_doc:
        text = DOC.read_text()
        start, stop = text.index(BEGIN) + len(BEGIN), text.index(END)
        DOC.write_text(text[:start] + "\n" + table + "\n" + text[stop:])


if __name__ == "__main__":
    main()
