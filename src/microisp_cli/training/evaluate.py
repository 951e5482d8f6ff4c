"""Evaluation: PSNR and SSIM of a weights file beside classical developers on the same RAW files.

Two kinds of sets:

- **synthetic** (``make_synthetic_set``): DNGs written with :func:`dng.write_dng` from photos the
  training never sees (the held-out split of :func:`data.split_photos`), all four CFA orders,
  10/12/14 bits, half of them noisy (each CFA order and camera clean and noisy), with
  ColorMatrix1 (XYZ -> camera of a camera kept out of training) and AsShotNeutral. Besides one
  DNG per photo (kind ``photo``), a share of the photos also gives a **smooth** frame (a crop upscaled 3x with Lanczos: the smooth, dark and saturated
  tones where a demosaic's bias shows) and a **saturated** one (shuffled channels, 1.5-2x
  saturation). The reference is the photo itself, rendered exactly as the DNG's metadata says
  (linear x exposure, sRGB curve). ``set.json`` lists the items with their kind and camera.
- **paired** (``--raw-dir`` + ``--target-dir``): RAW files with same-named sRGB targets.

The network side runs the library's :func:`develop.develop_mosaic` (tiled, the file's black/white
level, as-shot white balance and colour matrix), as ``microisp develop`` does. The yardsticks are
the neutral renderings of :mod:`microisp_cli.peers` (LibRaw, darktable, RawTherapee).

Scores skip a border of ``border`` pixels and compare float images in [0, 1] (16-bit outputs).
Means are reported over all files and over groups: clean / noisy, each camera, each kind.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import defaults, peers
from ..export import psnr
from ..tensorflow_import import import_tensorflow
from . import data
from .dng import write_dng

#: Of the held-out photos, every ``SMOOTH_EVERY``-th also gives a smooth frame and every
#: ``SATURATED_EVERY``-th a saturated one.
SMOOTH_EVERY = 3
SATURATED_EVERY = 4
SMOOTH_FACTOR = 3.0


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
    frames = []                                   # (kind, photo path, photo as uint8/16)
    for i, path in enumerate(paths):
        image = data.read_photo(path)
        frames.append(("photo", path, image))
        if i % SMOOTH_EVERY == 0:
            side = min(image.shape[:2]) // 3
            frames.append(("smooth", path, data.upscale(image[:side, :side], SMOOTH_FACTOR)))
        if i % SATURATED_EVERY == 1:
            frames.append(("saturated", path, image))
    items = []
    for i, (kind, path, image) in enumerate(frames):
        photo = data.to_float(image)
        if kind == "saturated":
            photo = data.colour_jitter(photo, rng, min_saturation=1.5)
        if max_side:
            photo = photo[:max_side, :max_side]
        photo = photo[:photo.shape[0] // 2 * 2, :photo.shape[1] // 2 * 2]
        # CFA order, noise and camera vary independently: every CFA order and camera is seen
        # clean and noisy (i % 4, i // 4 % 2, i // 8 % cameras), the bit depth with i % 3
        noisy = bool(i // 4 % 2)
        capture = data.draw_capture(rng, [cameras[i // 8 % len(cameras)]], noisy=noisy,
                                    cfa=data.CFA_PATTERNS[i % 4], bits=(10, 12, 14)[i % 3])
        raw, target = data.unprocess(photo, capture, rng)
        name = (f"{i:03d}_{path.stem}{'' if kind == 'photo' else '_' + kind}_{capture.cfa}_"
                f"{capture.bits}bit{'_noisy' if noisy else ''}")
        write_dng(out_dir / f"{name}.dng", raw, capture.cfa, capture.black, capture.white,
                  data.camera_matrix(capture.camera), capture.neutral, camera=capture.camera)
        np.save(out_dir / f"{name}.target.npy", (target * 65535.0 + 0.5).astype(np.uint16))
        items.append({"raw": f"{name}.dng", "target": f"{name}.target.npy", "photo": str(path),
                      "kind": kind, "noisy": noisy, **dataclasses.asdict(capture)})
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
def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian 11x11, sigma 1.5, images in [0, 1]) via ``tf.image.ssim``."""
    tf = import_tensorflow()

    return float(tf.image.ssim(tf.constant(a[None], tf.float32), tf.constant(b[None], tf.float32), 1.0)[0])


@dataclasses.dataclass
class EvalResult:
    methods: list[str]
    rows: list[dict]          # per file: file, group labels, "<method> psnr"/"<method> ssim"

    def mean(self, method: str, metric: str = "psnr", group: str | None = None) -> float:
        rows = [r for r in self.rows if group is None or group in r.get("groups", ())]
        return float(np.mean([r[f"{method} {metric}"] for r in rows])) if rows else float("nan")

    def groups(self) -> list[str]:
        """The group labels present ("clean", "noisy", "camera: ...", "kind: ..."), in order."""
        seen: dict[str, None] = {}
        for r in self.rows:
            seen.update(dict.fromkeys(r.get("groups", ())))
        return sorted(seen, key=lambda g: (g not in ("clean", "noisy"), g))

    def to_dict(self) -> dict:
        metrics = [k for k in ("psnr", "ssim") if self.rows and f"{self.methods[0]} {k}" in self.rows[0]]
        return {"methods": self.methods, "rows": self.rows,
                "mean": {m: {k: self.mean(m, k) for k in metrics} for m in self.methods},
                "groups": {g: {m: {k: self.mean(m, k, g) for k in metrics} for m in self.methods}
                           for g in self.groups()}}


#: The report group of every frame but the saturated ones (and its clean and noisy halves).
UNSATURATED = "without saturated"


def item_groups(info: dict) -> list[str]:
    """The report groups of a set item: clean/noisy, its camera, its kind, and whether it is one
    of the ordinary (not saturated) frames, by half (synthetic sets only)."""
    if "camera" not in info:
        return []
    noisy = info.get("noisy", bool(info.get("shot") or info.get("read")))
    half, kind = "noisy" if noisy else "clean", info.get("kind", "photo")
    groups = [half, f"camera: {info['camera']}", f"kind: {kind}"]
    if kind != "saturated":  # ordinary photos: the saturated frames' gamut clipping dominates peers' scores
        groups += [UNSATURATED, f"{half}, {UNSATURATED}"]
    return groups


def evaluate(weights, items: Sequence[tuple[Path, Path, dict]], yardsticks: Sequence[str] = ("LibRaw AHD",),
             border: int = defaults.EVAL_BORDER, with_ssim: bool = True, threads: int | None = None,
             progress: Callable[[int, int, str], None] | None = None) -> EvalResult:
    """Score ``weights`` (a :class:`Weights`, name or path) and the ``yardsticks`` (names of
    :data:`peers.PEERS`) on ``items`` ((raw, target, info) triples), side by side."""
    from ..develop import develop_mosaic, make_runner
    from ..raw import decode
    from ..weights import Weights, load_weights

    if not isinstance(weights, Weights):
        weights = load_weights(weights)
    runner = make_runner(weights, threads=threads)
    label = "microisp"
    methods = [label, *yardsticks]
    rows = []
    for n, (raw_path, target_path, info) in enumerate(items):
        target = read_target(target_path)
        outputs = {label: develop_mosaic(decode(raw_path), weights, runner, bits=16).astype(np.float32) / 65535.0}
        for m in yardsticks:
            outputs[m] = peers.render(m, raw_path)
        row = {"file": raw_path.name, "groups": item_groups(info)}
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

    tf = import_tensorflow()

    from ..model import init_parameters
    from ..network import MicroISP

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
