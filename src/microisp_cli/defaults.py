"""Every default value, in one place: read by the library and the CLI alike."""

from __future__ import annotations

#: Weights used when none are named: a manifest name in the bundled ``weights/`` folder.
WEIGHTS = "default"

#: Output tile side in full-resolution pixels for the exact tiled pipeline (0: whole frame).
#: 512 from measurements (docs/tiling.md, docs/benchmarks.md): as fast as 1024 at 12 MP, and
#: about 140 MB less working memory, which keeps a 32 MP develop under 1 GB.
TILE_SIZE = 512
#: The same for a one-pass network (no attention, no state between windows): a window's halo is
#: then the only overhead, 30 % of a 512 tile's work and 15 % of a 1024 one's. At 12 MP, 1024 took
#: 0.97 CPU-s/MP against 512's 1.02 on a quiet machine (23 % less under load), in 135 MB more;
#: 2048 took 0.78 at 12 MP but gained nothing at 24 MP, in 330 MB more (docs/benchmarks.md).
ONE_PASS_TILE_SIZE = 1024
#: Most bytes of state a row of tiles maps at once in the exact mode; on wider frames the rows of
#: tiles get shorter (memory stays flat with frame size; see tiling._run_exact).
STATE_BAND_BYTES = 160 << 20

#: How attention is computed when tiling: "exact" (global, two-pass) or "tile" (per tile).
ATTENTION = "exact"

#: Output bit depth when the format allows a choice (PNG); TIFF defaults to 16.
BITS_PNG = 8
BITS_TIFF = 16

#: JPEG quality.
JPEG_QUALITY = 92

#: Output format when the output is a directory.
OUTPUT_EXTENSION = ".png"

#: Backend that runs the network: "openvino" (OpenVINO graphs built from the weights; fastest
#: here, docs/benchmarks.md), "tf" (TensorFlow) or "tflite" (LiteRT, an exported file).
BACKEND = "openvino"

#: Threads for the backend (None: the runtime's default).
THREADS = None

# --- training (``microisp train``) and evaluation (``microisp eval``) ---------------------------
#: Folder of sRGB photos for synthetic pairs (held-out split: see ``training.data.split_photos``).
TRAIN_PHOTOS = "../shared/data/photos"
#: Fixed demosaic the network refines ("none": the published network draws the whole image).
TRAIN_BASE = "mhc"
TRAIN_STEPS = 20000
TRAIN_BATCH = 16
#: Patch side in full-resolution pixels (at least 2 * 79 for the attention blocks).
TRAIN_PATCH = 192
TRAIN_LR = 2e-3
TRAIN_LR_MIN = 1e-5
TRAIN_WARMUP = 100
#: Pixel loss after the colour matrix and sRGB curve: "l1" or "mse".
TRAIN_LOSS = "l1"
#: How the loss treats rendered values outside [0, 1]: "clip" (no gradient there; the bundled
#: default was trained so) or "extend" (the curve's end slopes; see training.train.render_for_loss).
TRAIN_OUT_OF_RANGE = "clip"
TRAIN_SEED = 0
TRAIN_CHECKPOINT_EVERY = 250
#: Threads for training (the machine has 2 cores).
TRAIN_THREADS = 2
#: Held-out synthetic evaluation set: where it is written, and how many DNGs (0: one per photo).
EVAL_DIR = "runs/eval-set"
EVAL_COUNT = 0
EVAL_SEED = 1234
#: Border (full-resolution pixels) left out of every PSNR/SSIM: demosaic edges are not compared.
EVAL_BORDER = 8

# --- microisp bench ---------------------------------------------------------------------------
#: Frame sizes benchmarked when none are named (see ``resolution.NAMED``).
BENCH_RESOLUTIONS = ("12mp",)

#: Timed runs per configuration, and untimed warm-up runs before them (the first run included).
BENCH_RUNS = 5
BENCH_WARMUP = 1

#: A whole-frame run is skipped when its estimated peak exceeds this (MiB), or half the memory
#: available at the time, whichever is smaller.
BENCH_MEMORY_LIMIT_MB = 6144

#: Whole-frame peak resident memory, per backend: (MiB at start, bytes per output pixel), used only
#: to skip frames that cannot fit. TF: 2.48 GB peak for a whole 12 MP frame (default weights);
#: LiteRT (segmented export): 2.68 GB for a whole FullHD frame. OpenVINO: not measured, TF's.
BENCH_WHOLE_FRAME_BYTES_PER_PIXEL = {"openvino": (600.0, 180.0), "tf": (600.0, 180.0),
                                     "tflite": (100.0, 1300.0)}

#: zlib level of PNG outputs (0-9: 9 smallest and slowest). With the run-length strategy that the
#: PNG writer uses, level 1 compressed the developed Canon DNG (2 MP) in 0.045 s against 0.256 s for
#: plain level 6, and smaller (0.527 against 0.583 of the raw bytes); a 12 MP photo went from 9.06
#: to 0.62 s (`microisp bench --input`).
PNG_COMPRESSION = 1

#: Bit depth of the array that the library's ``develop()`` returns.
BITS_ARRAY = 16

#: Headerless sensor dumps: CFA order of the top-left 2x2 cell, and their black level.
DUMP_CFA = "RGGB"
DUMP_BLACK = 0.0

# --- hostile inputs (docs/robustness.md) -------------------------------------------------------
#: Largest frame, in megapixels, that a file may declare; larger ones fail before any pixel memory
#: is allocated (``--max-megapixels``). The largest camera sensors sold are about 150 MP.
MAX_MEGAPIXELS = 200.0

#: Weights manifests and models (also a ``.tflite`` file's metadata): largest value of each model
#: config field, largest parameter count (the published model has 13,560), largest manifest file
#: (bytes). Checked before anything is allocated for them.
MODEL_FIELD_LIMITS = {"stages": 16, "blocks": 16, "features": 256, "attention_hidden": 256}
MAX_PARAMETERS = 10_000_000
MAX_MANIFEST_BYTES = 1 << 20
#: Largest ``.tflite`` file read (exports are 0.1-0.2 MB).
MAX_MODEL_BYTES = 256 << 20

#: White-balance gains (R/G and B/G) outside this range are implausible: as-shot or daylight gains
#: out of it are replaced by the next fallback (with a warning); grey-world gains are clipped to it.
WB_GAIN_LIMITS = (0.125, 16.0)

#: A camera -> sRGB matrix (rows summing to 1) is used only if every coefficient is within this
#: magnitude and its condition number is below ``MATRIX_MAX_CONDITION``; else a fallback (warning).
MATRIX_MAX_COEFFICIENT = 16.0
MATRIX_MAX_CONDITION = 1000.0

# --- a photographer's controls (``options.DevelopOptions``, docs/cli.md) ----------------------
#: JPEG chroma subsampling: "444" (none), "422" or "420". 4:4:4 at every quality: no silent switch.
JPEG_SUBSAMPLING = "444"

#: White balance: "camera" (as shot, with the fallbacks of raw.py), "auto" (grey world),
#: "daylight" (LibRaw's daylight gains) or R,G,B gains.
WB = "camera"

#: Exposure in EV (a linear gain of 2**EV before the transfer curve), or "auto".
EXPOSURE = 0.0
#: ``--exposure auto``: the log-average of the green samples (clipped ones left out) is brought to
#: this linear level (18% grey), but their ``EXPOSURE_AUTO_PERCENTILE``-th percentile no higher
#: than white (at most about 1% of them clip), the gain within +-``EXPOSURE_AUTO_LIMIT`` EV.
EXPOSURE_AUTO_TARGET = 0.18
EXPOSURE_AUTO_PERCENTILE = 99.0
EXPOSURE_AUTO_LIMIT = 4.0

#: Highlights: "clip", "blend" or "reconstruct" (render.recover_highlights).
HIGHLIGHTS = "clip"
#: ``--highlights blend``: pixels whose lowest channel is above this fraction of the clip level
#: are blended towards neutral, fully at the clip level (coloured highlights keep their colour).
HIGHLIGHT_BLEND_START = 0.75

#: The look (``--look``): "neutral" (the linear rendering, no tone curve: what ``eval`` scores) or
#: a scene-referred tone map (render.tone_map). Each look's own exposure (EV, added to
#: ``--exposure``), contrast (the curve's log-log slope parameter) and saturation; a photographer's
#: ``--contrast``/``--saturation`` replace the last two. "sigmoid": +0.5 EV like darktable's
#: scene-referred default (+0.7 EV with its filmic/sigmoid), a moderate S-curve, a little colour.
LOOK = "neutral"
LOOKS = {
    "neutral": {"exposure": 0.0, "contrast": 1.0, "saturation": 1.0},
    "sigmoid": {"exposure": 0.5, "contrast": 1.5, "saturation": 1.1},
    "sigmoid-high-contrast": {"exposure": 0.5, "contrast": 2.0, "saturation": 1.2},
}
#: The tone curve keeps scene mid grey at display mid grey (18%).
LOOK_GREY = 0.18

#: ``--sharpen AMOUNT``: capture sharpening, an unsharp mask of the luminance of the encoded
#: image (no colour fringes) with a Gaussian of this sigma in pixels; 0 (off) by default.
SHARPEN = 0.0
SHARPEN_SIGMA = 0.8

#: Output colour space (colour.SPACES).
COLORSPACE = "srgb"

#: The CFA-phase check (``mosaic.unlikely_cfa``): the two green sites of a 2x2 cell differ little
#: (mean relative difference 0.03-0.10 on the real files of ../shared), red and blue much more
#: (0.2-1.0). When the diagonal read as red/blue differs less than this fraction of the one read
#: as green, the greens are taken to sit on the other diagonal (the Pi camera DNG: 0.034 against
#: 0.342; random mosaics: 0.94, no warning).
CFA_CHECK_RATIO = 0.5

#: Resolution written into every output (EXIF X/YResolution, TIFF tags, PNG pHYs, JPEG JFIF).
RESOLUTION_DPI = 300
