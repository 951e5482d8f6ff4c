"""Evaluation: PSNR and SSIM of a weights file beside LibRaw on the very same RAW files.

Two kinds of sets:

- **synthetic** (``make_synthetic_set``): DNGs written with :func:`dng.write_dng` from photos the
  training never sees (the held-out split of :func:`data.split_photos`), all four CFA orders,
  10/12/14 bits, every other one noisy, with ColorMatrix1 (XYZ -> camera of a camera kept out of
  training) and AsShotNeutral. The reference is the photo itself, rendered exactly as the DNG's
  metadata says (linear x exposure, sRGB curve). ``set.json`` lists the items.
- **paired** (``--raw-dir`` + ``--target-dir``): RAW files with same-named sRGB targets.

The network side runs the library's :func:`develop.develop_mosaic` (tiled, the file's black/white
level, as-shot white balance and colour matrix), as ``microisp develop`` does. LibRaw runs through
rawpy ``postprocess(use_camera_wb=True, no_auto_bright=True, output_bps=16, gamma=(2.4, 12.92),
output_color=sRGB, user_flip=0, adjust_maximum_thr=0)`` with AHD and, optionally, DHT / AAHD.
``adjust_maximum_thr=0`` keeps LibRaw from replacing the file's white level by the data maximum
(another form of auto-brightening, which makes it about 0.05 brighter on some files).

Scores skip a border of ``border`` pixels and compare float images in [0, 1] (16-bit outputs).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import defaults
from . import data
from .dng import write_dng

LIBRAW_METHODS = ("AHD", "DHT", "AAHD")


# --- the synthetic set ------------------------------------------------------------------------
def make_synthetic_set(photos: str | Path | Sequence[Path], out_dir: str | Path, count: int = 0,
                       seed: int = defaults.EVAL_SEED, cameras: Sequence[str] = data.EVAL_CAMERAS,
                       max_side: int = 0) -> Path:
    """Write held-out synthetic DNGs and their reference renderings; returns ``set.json``.

    ``photos``: a photo folder (its held-out split is used) or a list of photo paths.
    ``count``: how many (0: one per photo). ``max_side``: crop photos larger than this (0: no crop).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = data.split_photos(photos)[1] if isinstance(photos, (str, Path)) else list(photos)
    if count:
        paths = paths[:count]
    rng = np.random.default_rng(seed)
    items = []
    for i, path in enumerate(paths):
        photo = data.to_float(data.read_photo(path))
        if max_side:
            photo = photo[:max_side, :max_side]
        photo = photo[:photo.shape[0] // 2 * 2, :photo.shape[1] // 2 * 2]
        capture = data.draw_capture(rng, [cameras[i % len(cameras)]], noisy=bool(i % 2),
                                    cfa=data.CFA_PATTERNS[i % 4], bits=(10, 12, 14)[i % 3])
        raw, target = data.unprocess(photo, capture, rng)
        name = f"{i:03d}_{path.stem}_{capture.cfa}_{capture.bits}bit{'_noisy' if i % 2 else ''}"
        write_dng(out_dir / f"{name}.dng", raw, capture.cfa, capture.black, capture.white,
                  data.camera_matrix(capture.camera), capture.neutral, camera=capture.camera)
        np.save(out_dir / f"{name}.target.npy", (target * 65535.0 + 0.5).astype(np.uint16))
        items.append({"raw": f"{name}.dng", "target": f"{name}.target.npy", "photo": str(path),
                      **dataclasses.asdict(capture)})
    manifest = out_dir / "set.json"
    manifest.write_text(json.dumps({"seed": seed, "items": items}, indent=1) + "\n")
    return manifest


def load_set(set_dir: str | Path) -> list[tuple[Path, Path, dict]]:
    """(raw, target, info) of a set made by :func:`make_synthetic_set`."""
    set_dir = Path(set_dir)
    manifest = json.loads((set_dir / "set.json").read_text())
    return [(set_dir / it["raw"], set_dir / it["target"], it) for it in manifest["items"]]


def read_target(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32) / 65535.0
    return data.to_float(data.read_photo(path))


# --- scores -----------------------------------------------------------------------------------
def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else -10.0 * np.log10(mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian 11x11, sigma 1.5, images in [0, 1]) via ``tf.image.ssim``."""
    import tensorflow as tf

    return float(tf.image.ssim(tf.constant(a[None], tf.float32), tf.constant(b[None], tf.float32), 1.0)[0])


def libraw_render(path: Path, method: str) -> np.ndarray:
    """LibRaw's sRGB rendering (camera WB, no auto-brightening, sRGB curve) as float32 [0, 1]."""
    import rawpy

    with rawpy.imread(str(path)) as raw:
        rgb = raw.postprocess(
            demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, method), use_camera_wb=True,
            no_auto_bright=True, output_bps=16, gamma=(2.4, 12.92),
            output_color=rawpy.ColorSpace.sRGB, user_flip=0, adjust_maximum_thr=0.0)
    return rgb.astype(np.float32) / 65535.0


@dataclasses.dataclass
class EvalResult:
    methods: list[str]
    rows: list[dict]          # per file: name, and "<method> psnr"/"<method> ssim"

    def mean(self, method: str, metric: str = "psnr") -> float:
        return float(np.mean([r[f"{method} {metric}"] for r in self.rows]))

    def to_dict(self) -> dict:
        metrics = [k for k in ("psnr", "ssim") if self.rows and f"{self.methods[0]} {k}" in self.rows[0]]
        return {"methods": self.methods, "rows": self.rows,
                "mean": {m: {k: self.mean(m, k) for k in metrics} for m in self.methods}}


def evaluate(weights, items: Sequence[tuple[Path, Path, dict]], libraw: Sequence[str] = ("AHD",),
             border: int = defaults.EVAL_BORDER, with_ssim: bool = True, threads: int | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> EvalResult:
    """Score ``weights`` (a :class:`Weights`, name or path) and LibRaw's ``libraw`` demosaicers on
    ``items`` ((raw, target, info) triples), side by side."""
    from ..develop import develop_mosaic, make_runner
    from ..raw import decode
    from ..weights import Weights, load_weights

    if not isinstance(weights, Weights):
        weights = load_weights(weights)
    runner = make_runner(weights, threads=threads)
    label = "microisp"
    methods = [label] + [f"LibRaw {m}" for m in libraw]
    rows = []
    for n, (raw_path, target_path, _info) in enumerate(items):
        target = read_target(target_path)
        outputs = {label: develop_mosaic(decode(raw_path), weights, runner, bits=16).astype(np.float32) / 65535.0}
        for m in libraw:
            outputs[f"LibRaw {m}"] = libraw_render(raw_path, m)
        row = {"file": raw_path.name}
        b = border
        for name, image in outputs.items():
            h = min(image.shape[0], target.shape[0])
            w = min(image.shape[1], target.shape[1])
            x, t = image[b:h - b, b:w - b], target[b:h - b, b:w - b]
            row[f"{name} psnr"] = psnr(x, t)
            if with_ssim:
                row[f"{name} ssim"] = ssim(x, t)
        rows.append(row)
        if progress:
            progress(n + 1, len(items), raw_path.name)
    return EvalResult(methods, rows)


def paired_items(raw_dir: str | Path, target_dir: str | Path) -> list[tuple[Path, Path, dict]]:
    """(raw, target, {}) for RAW files with same-named targets (see :func:`data.raw_folder_pairs`)."""
    return [(p.raw, p.target, {}) for p in data.raw_folder_pairs(raw_dir, target_dir)]


def frame_speed(config, height: int = 3000, width: int = 4000, repeats: int = 2, seed: int = 0) -> float:
    """Megapixels per second of a model config, whole frame in TensorFlow (``tf.function``, after
    one warm-up run), on an (height x width) output, i.e. a (1, height/2, width/2, 4) input."""
    import time

    import tensorflow as tf

    from ..model import MicroISP, init_parameters

    net = MicroISP(config, init_parameters(config, seed))
    run = tf.function(net.__call__)
    x = tf.constant(np.random.default_rng(seed).uniform(0, 1, (1, height // 2, width // 2, 4)).astype(np.float32))
    run(x).numpy()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(x).numpy()
        best = min(best, time.perf_counter() - t0)
    return height * width / 1e6 / best
