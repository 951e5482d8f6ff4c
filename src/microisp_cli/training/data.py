"""Training and evaluation data: synthetic pairs made by inverting a camera pipeline, and paired sets.

Every pair is ``(packed, target, cam_to_srgb)``:

- ``packed``: the network input under the default :class:`weights.Conditioning`: black level
  subtracted, divided by (white - black), as-shot white balance applied, brought to the RGGB phase
  and packed as (h, w, 4) float32 channels R, Gr, Gb, B;
- ``target``: the rendering the network is trained towards, (2h, 2w, 3) float32 in [0, 1];
- ``cam_to_srgb``: 3x3 float32, white-balanced camera RGB -> linear sRGB (applied to the
  network's linear output before the sRGB curve, so the loss is computed in sRGB).

Synthetic pairs (from any folder of sRGB photos): inverse sRGB curve -> linear sRGB -> camera RGB
through a real camera's XYZ -> camera matrix (rows normalised, as LibRaw/DNG renderers do) ->
divided by a random white balance (the as-shot neutral) -> mosaic in one of the four CFA orders ->
shot and read noise -> black level -> quantisation to 10-14 bits. The target is the photo itself
(linear, times the exposure, clipped, sRGB curve): exactly what an ideal demosaic + the file's
colour metadata would render, and what LibRaw renders on the same DNG up to its demosaic.

Photos are augmented (flips, 90-degree rotations) *before* mosaicing, so the CFA order of every
sample is the one drawn for it. Every mosaic is conditioned by the very code ``microisp develop``
runs (:class:`bayer.PackedBayerSource` with the weights' :class:`weights.Conditioning`): a
non-RGGB mosaic is reflect-padded to the RGGB phase, and its target padded the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..bayer import CFA_PATTERNS, PackedBayerSource, mosaic_rggb, reflect_index
from ..colour import cam_to_srgb_from_xyz, camera_from_srgb, daylight_neutral, srgb_decode, srgb_encode
from ..tensorflow_import import import_tensorflow
from ..weights import Conditioning

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


#: XYZ (D65) -> camera matrices (x 10000), as in the ``adobe_coeff`` table of dcraw / LibRaw
#: (Adobe DNG Converter's ColorMatrix2). Written from that published table.
CAMERA_MATRICES: dict[str, tuple[int, ...]] = {
    "Canon EOS 5D Mark II": (4716, 603, -830, -7798, 15474, 2480, -1496, 1937, 6651),
    "Canon EOS 550D": (6941, -1164, -857, -3825, 11597, 2534, -416, 1540, 6039),
    "Nikon D700": (8139, -2171, -663, -8747, 16541, 2295, -1925, 2008, 8093),
    "Nikon D90": (7309, -1403, -519, -8474, 16008, 2622, -2434, 2826, 8064),
    "Sony ILCE-7": (5271, -712, -347, -6153, 13653, 2763, -1601, 2366, 7242),
    "Olympus E-M5": (8380, -2630, -639, -2887, 10725, 2496, -627, 1427, 5438),
    "Panasonic DMC-GH4": (7122, -2108, -512, -3155, 11201, 2231, -541, 1423, 5045),
    "Pentax K-5": (8713, -2833, -743, -4342, 11900, 2772, -722, 1543, 6247),
}
#: Cameras kept out of training, used only by the held-out evaluation set.
EVAL_CAMERAS = ("Panasonic DMC-GH4", "Pentax K-5")
TRAIN_CAMERAS = tuple(c for c in CAMERA_MATRICES if c not in EVAL_CAMERAS)


# --- colour ---------------------------------------------------------------------------------
def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    """sRGB transfer curve; linear float (clipped to [0, 1]) -> float in [0, 1]."""
    return srgb_encode(np.clip(np.asarray(x, np.float32), 0.0, 1.0))


def camera_matrix(name: str) -> np.ndarray:
    return np.asarray(CAMERA_MATRICES[name], float).reshape(3, 3) / 10000.0


# --- CFA and conditioning: the develop path's own --------------------------------------------
def condition(raw: np.ndarray, cfa: str, black: float | Sequence[float], white: float,
              gains: Sequence[float], conditioning: Conditioning = Conditioning()):
    """A Bayer mosaic (H, W) in ``cfa`` order conditioned exactly as ``microisp develop`` does
    (:class:`bayer.PackedBayerSource`): -> (packed (h, w, 4) float32, padding (top, bottom, left,
    right) of the canonical frame). ``black``: one value or four in the 2x2 CFA cell order;
    ``gains``: white-balance gains (R, G, B)."""
    black = np.asarray(black, np.float32)
    source = PackedBayerSource(raw, cfa, black.reshape(2, 2) if black.size == 4 else black, white,
                               gains, conditioning)
    return source.read_all(), source.padding


def pad_like(image: np.ndarray, padding: tuple[int, int, int, int]) -> np.ndarray:
    """``image`` (H, W[, C]) reflect-padded like its mosaic (see :func:`condition`), so that pixel
    (y, x) of the network's output has its target at (y, x)."""
    top, bottom, left, right = padding
    h, w = image.shape[:2]
    rows = reflect_index(np.arange(-top, h + bottom), h)
    cols = reflect_index(np.arange(-left, w + right), w)
    return image[np.ix_(rows, cols)]


def augment(image: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips / 90-degree rotations of an (H, W, C) image (code 0..7)."""
    if code & 4:
        image = image[:, ::-1]
    return np.rot90(image, code & 3)


# --- photos ------------------------------------------------------------------------------------
def read_photo(path: str | Path) -> np.ndarray:
    """An 8/16-bit sRGB photo (PNG, JPEG or TIFF) -> (H, W, 3) uint8 or uint16."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import tifffile

        image = tifffile.imread(path)
    else:
        tf = import_tensorflow()

        image = tf.io.decode_image(tf.io.read_file(str(path)), channels=3, dtype=tf.uint8,
                                   expand_animations=False).numpy()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    return np.ascontiguousarray(image[..., :3])


def to_float(image: np.ndarray) -> np.ndarray:
    scale = 65535.0 if image.dtype == np.uint16 else 255.0
    return image.astype(np.float32) / scale


def list_photos(folder: str | Path) -> list[Path]:
    """Photos under ``folder`` (recursively), sorted by path."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())


def split_photos(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """The fixed train / held-out split of a photo folder.

    Held out: every photo in a folder named ``mcmaster`` and the last 20 photos of ``urban100``
    (the layout of ../shared/data/photos); for any other folder, every tenth photo.
    """
    photos = list_photos(folder)
    held: list[Path] = [p for p in photos if p.parent.name == "mcmaster"]
    urban = [p for p in photos if p.parent.name == "urban100"]
    held += urban[-20:]
    if not held:
        held = photos[9::10]
    held_set = set(held)
    return [p for p in photos if p not in held_set], sorted(held)


# --- the camera model --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Capture:
    """The random camera settings of one synthetic sample."""

    camera: str
    cfa: str
    bits: int
    black: int
    neutral: tuple[float, float, float]   # as-shot neutral, camera RGB of white, green = 1
    exposure: float
    shot: float                           # shot-noise variance per unit signal (normalised)
    read: float                           # read-noise variance (normalised)

    @property
    def white(self) -> int:
        return 2 ** self.bits - 1


def colour_jitter(photo: np.ndarray, rng: np.random.Generator, max_saturation: float = 2.0,
                  min_saturation: float = 1.0) -> np.ndarray:
    """A photo (float sRGB [0, 1]) with its colour channels in a random order and its saturation
    raised by a random factor in [``min_saturation``, ``max_saturation``] (in linear light, clipped
    to [0, 1]).

    Natural photos have strongly correlated colour channels; this gives the network saturated,
    weakly correlated colours (as in the McMaster set) that it would otherwise never see.
    """
    lin = srgb_decode(photo)[..., rng.permutation(3)]
    grey = lin.mean(axis=-1, keepdims=True)
    lin = np.clip(grey + rng.uniform(min_saturation, max_saturation) * (lin - grey), 0.0, 1.0)
    return linear_to_srgb(lin).astype(np.float32)


def upscale(photo: np.ndarray, factor: float) -> np.ndarray:
    """A photo (H, W, 3) uint8/uint16 enlarged ``factor`` times with Lanczos (Pillow), same dtype:
    a frame with almost no detail at the Bayer frequency, like an out-of-focus or sky region."""
    from PIL import Image

    h, w = photo.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    if photo.dtype == np.uint8:
        return np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    channels = [np.asarray(Image.fromarray(photo[..., c].astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
                for c in range(3)]
    return np.clip(np.rint(np.stack(channels, -1)), 0, 65535).astype(photo.dtype)


def smooth_crop(photo: np.ndarray, size: int, factor: float, rng: np.random.Generator) -> np.ndarray:
    """A ``size`` x ``size`` crop of ``photo`` upscaled ``factor`` times (see :func:`upscale`)."""
    side = min(int(np.ceil(size / factor)) + 2, *photo.shape[:2])
    y = int(rng.integers(0, photo.shape[0] - side + 1))
    x = int(rng.integers(0, photo.shape[1] - side + 1))
    big = upscale(photo[y:y + side, x:x + side], max(factor, size / side))
    return big[:size, :size]


def draw_capture(rng: np.random.Generator, cameras: Sequence[str] = TRAIN_CAMERAS,
                 noisy: bool | None = None, cfa: str | None = None, bits: int | None = None) -> Capture:
    camera = str(rng.choice(list(cameras)))
    cfa = cfa or str(rng.choice(CFA_PATTERNS))
    bits = bits or int(rng.choice([10, 12, 14]))
    black = int(round(rng.choice([0.0, 1.0, 1.0]) * rng.uniform(0.01, 0.07) * 2 ** bits))
    n = daylight_neutral(camera_matrix(camera))
    neutral = np.clip(n * np.array([rng.uniform(0.7, 1.35), 1.0, rng.uniform(0.7, 1.35)]), 0.2, 1.0)
    if noisy is None:
        noisy = bool(rng.random() < 0.5)
    shot = read = 0.0
    if noisy:
        log_shot = rng.uniform(np.log(1e-4), np.log(1.2e-2))
        shot = float(np.exp(log_shot))
        read = float(np.exp(2.18 * log_shot + 1.2 + rng.normal(0.0, 0.26)))
    return Capture(camera, cfa, bits, black, tuple(float(v) for v in neutral),
                   float(rng.uniform(0.6, 1.0)), shot, read)


def unprocess(photo: np.ndarray, capture: Capture, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """An sRGB photo (H, W, 3) float [0, 1] -> (raw mosaic uint16 in ``capture.cfa`` order,
    target sRGB float32 [0, 1]). The raw carries black level and noise like a sensor dump."""
    lin = srgb_decode(photo) * capture.exposure
    target = linear_to_srgb(lin)
    to_cam = camera_from_srgb(camera_matrix(capture.camera)) * np.asarray(capture.neutral)[:, None]
    cam = np.einsum("hwc,dc->hwd", lin, to_cam.astype(np.float32))
    m = np.clip(mosaic_rggb(cam, capture.cfa), 0.0, None)
    if capture.shot or capture.read:
        m = m + rng.normal(0.0, 1.0, m.shape).astype(np.float32) * np.sqrt(capture.shot * m + capture.read)
    span = capture.white - capture.black
    raw = np.clip(np.round(m * span + capture.black), 0, capture.white).astype(np.uint16)
    return raw, target.astype(np.float32)


def synthetic_pair(photo: np.ndarray, capture: Capture, rng: np.random.Generator):
    """(packed, target, cam_to_srgb) for one photo crop (H, W even, float [0, 1])."""
    raw, target = unprocess(photo, capture, rng)
    neutral = np.asarray(capture.neutral, np.float32)
    packed, padding = condition(raw, capture.cfa, capture.black, capture.white, neutral[1] / neutral)
    cam_to_srgb = cam_to_srgb_from_xyz(camera_matrix(capture.camera))  # as develop derives it from the DNG
    return packed, pad_like(target, padding), cam_to_srgb


class PatchSampler:
    """Batches of synthetic training patches from a list of photos, deterministic per step.

    Batch ``step`` is drawn from ``numpy.random.default_rng([seed, step])``, so a resumed run
    sees exactly the batches it would have seen without the interruption.
    """

    def __init__(self, photos: Sequence[np.ndarray], patch: int, batch: int, seed: int = 0,
                 cameras: Sequence[str] = TRAIN_CAMERAS, noisy_fraction: float = 0.5,
                 colour_fraction: float = 0.0, highlight_fraction: float = 0.0,
                 smooth_fraction: float = 0.0):
        if patch % 2:
            raise ValueError(f"patch must be even, got {patch}")
        self.photos = [p for p in photos if min(p.shape[:2]) >= patch + 2]
        if not self.photos:
            raise ValueError(f"no photo is at least {patch + 2} pixels on its short side")
        self.patch, self.batch, self.seed = patch, batch, seed
        self.cameras = tuple(cameras)
        self.noisy_fraction = noisy_fraction
        self.colour_fraction = colour_fraction      # share of patches given colour_jitter
        self.highlight_fraction = highlight_fraction  # share over-exposed 1-4x: clipped highlights
        self.smooth_fraction = smooth_fraction      # share cut from a photo upscaled 2-4x: smooth
        sizes = np.array([p.shape[0] * p.shape[1] for p in self.photos], float)
        self.weights = sizes / sizes.sum()          # sample photos in proportion to their area

    def sample(self, rng: np.random.Generator):
        size = self.patch + 2                       # one spare row/column for the RGGB phase crop
        photo = self.photos[int(rng.choice(len(self.photos), p=self.weights))]
        if self.smooth_fraction and rng.random() < self.smooth_fraction:
            crop = smooth_crop(photo, size, float(rng.uniform(2.0, 4.0)), rng)
        else:
            y = int(rng.integers(0, photo.shape[0] - size + 1))
            x = int(rng.integers(0, photo.shape[1] - size + 1))
            crop = photo[y:y + size, x:x + size]
        crop = augment(to_float(crop), int(rng.integers(8)))
        if self.colour_fraction and rng.random() < self.colour_fraction:
            crop = colour_jitter(crop, rng)
        capture = draw_capture(rng, self.cameras, noisy=bool(rng.random() < self.noisy_fraction))
        if self.highlight_fraction and rng.random() < self.highlight_fraction:
            capture = dataclasses.replace(capture, exposure=float(np.exp(rng.uniform(0.0, np.log(4.0)))))
        packed, target, matrix = synthetic_pair(crop, capture, rng)
        n = self.patch // 2
        return packed[:n, :n], target[:self.patch, :self.patch], matrix

    def batch_at(self, step: int):
        """(packed (B, p/2, p/2, 4), target (B, p, p, 3), cam_to_srgb (B, 3, 3)), float32."""
        rng = np.random.default_rng([self.seed, step])
        items = [self.sample(rng) for _ in range(self.batch)]
        return tuple(np.stack(v).astype(np.float32) for v in zip(*items))


def load_photos(paths: Sequence[Path]) -> list[np.ndarray]:
    return [read_photo(p) for p in paths]


# --- paired datasets -------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairedItem:
    raw: Path
    target: Path


def _png_16(path: Path) -> np.ndarray:
    tf = import_tensorflow()

    return tf.io.decode_png(tf.io.read_file(str(path)), dtype=tf.uint16).numpy()


def zurich_pairs(folder: str | Path) -> list[PairedItem]:
    """Pairs of the Zurich RAW-to-RGB / Fujifilm UltraISP layout: ``FOLDER/{huawei_raw|raw|train_raw}/N.png``
    (single-channel Bayer PNG) beside ``FOLDER/{canon|rgb|train_rgb}/N.{png,jpg}`` with the same stem."""
    folder = Path(folder)
    raw_dirs = [folder / d for d in ("huawei_raw", "raw", "train_raw", "fujifilm_raw") if (folder / d).is_dir()]
    rgb_dirs = [folder / d for d in ("canon", "rgb", "train_rgb", "fujifilm_rgb") if (folder / d).is_dir()]
    if not raw_dirs or not rgb_dirs:
        raise FileNotFoundError(f"{folder}: expected a raw folder (huawei_raw/raw/...) beside an RGB folder (canon/rgb/...)")
    targets = {p.stem: p for p in rgb_dirs[0].iterdir() if p.suffix.lower() in PHOTO_SUFFIXES}
    pairs = [PairedItem(p, targets[p.stem]) for p in sorted(raw_dirs[0].glob("*.png")) if p.stem in targets]
    if not pairs:
        raise FileNotFoundError(f"{folder}: no raw PNG has a same-named target")
    return pairs


def load_zurich_pair(item: PairedItem, cfa: str = "RGGB", white: float = 1023.0, black: float = 0.0):
    """A Zurich pair -> (packed (h, w, 4) float32 RGGB-phase, target (2h, 2w, 3) float32 [0, 1]).

    The raw PNG is a full-resolution Bayer mosaic (uint8/uint16, ``white`` its maximum); the target
    is display sRGB, so the network output is used as sRGB (conditioning ``output="srgb"``)."""
    raw = _png_16(item.raw)[..., 0]
    target = to_float(read_photo(item.target))
    packed, padding = condition(raw, cfa, black, white, (1.0, 1.0, 1.0),
                                Conditioning(white_balance=False, output="srgb"))
    return packed, pad_like(target, padding)


def raw_folder_pairs(raw_folder: str | Path, target_folder: str | Path) -> list[PairedItem]:
    """RAW files (any format LibRaw reads) in ``raw_folder`` with same-stem targets in ``target_folder``."""
    raw_folder, target_folder = Path(raw_folder), Path(target_folder)
    targets = {p.stem: p for p in target_folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES}
    pairs = [PairedItem(p, targets[p.stem]) for p in sorted(raw_folder.iterdir())
             if p.is_file() and p.stem in targets and p.suffix.lower() not in PHOTO_SUFFIXES]
    if not pairs:
        raise FileNotFoundError(f"{raw_folder}: no RAW file has a same-named target in {target_folder}")
    return pairs


def load_raw_pair(item: PairedItem):
    """A RAW + target pair -> (packed, target sRGB float [0, 1] padded like the mosaic, Mosaic).

    The RAW is decoded by :func:`raw.decode` (black and white level, as-shot white balance and
    colour matrix from the file), conditioned as the default weights expect."""
    from ..raw import decode

    mosaic = decode(item.raw)
    packed, padding = condition(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white, mosaic.wb)
    return packed, pad_like(to_float(read_photo(item.target)), padding), mosaic
