"""microisp beside LibRaw AHD, darktable LMMSE and RawTherapee AMaZE on every real RAW file in
../shared/data/raw: writes docs/real-files.md and its pictures in docs/images/.

For each file: the whole frame (downscaled to at most 600 pixels wide per panel) and 128-pixel 1:1
crops of detail, edges, highlights and dark noise (``crop_centres``), microisp on the left, then each peer (``microisp_cli.peers``, neutral
settings; a peer that cannot read a file is left out of its row). The peers read the DNG and KDC
files themselves; the headerless dumps and the .npy patch are handed to them as a DNG holding the
very same mosaic (same CFA, black and white level, white balance, no colour matrix, as microisp
sees them).

Figures per picture: mean RGB (a colour cast shows as a difference), and the "checker" energy, the
mean absolute 2x2 checkerboard component of the luma ([[1, -1], [-1, 1]] / 4) in 1/255: maze and
zipper artefacts raise it.

    python benchmarks/side_by_side.py [--weights default] [--raw-dir ../shared/data/raw]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from microisp_cli.develop import develop_mosaic, make_runner
from microisp_cli.stages import with_cfa
from microisp_cli.raw import DumpFormat, decode
from microisp_cli.training.dng import write_dng
from microisp_cli import peers
from microisp_cli.weights import load_weights

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "docs" / "images"

# (file, how microisp reads it, CFA override or None, note)
FILES = [
    ("canon550d_colorchart.dng", None, None, "colour checker (grey patches measured below)"),
    ("picam_gbrg_10bit.dng", None, "BGGR", ("tagged GBRG, greens on the other diagonal: microisp with "
                                            "`--force-cfa BGGR`; LibRaw can only read it as tagged (maze)")),
    ("kodak_dc50_grbg.kdc", None, None, "Kodak DC50, no colour matrix"),
    ("nikon_crop_768x512_rggb.u16le.raw", DumpFormat((768, 512), "RGGB", 14, 600.0), None,
     "headerless dump, `--raw-size 768x512 --cfa RGGB --bits-per-sample 14 --black-level 600`"),
    ("vivo_x90_rggb_patch.npy", DumpFormat(), None, ("packed RGGB patch, black already subtracted; "
                                                     "clipped point lights (street lamps)")),
]

# centres (y, x) of the six grey patches of the colour checker in canon550d_colorchart.dng's output,
# white to black; each is read as a 40x40 window
GREY_PATCHES = [(930, x) for x in (700, 812, 925, 1035, 1145, 1255)]


def grey_means(rgb: np.ndarray) -> list[np.ndarray]:
    """Mean RGB of each grey patch."""
    return [rgb[y - 20:y + 20, x - 20:x + 20].reshape(-1, 3).mean(0) for y, x in GREY_PATCHES]


def rgb(image: np.ndarray) -> str:
    """Mean R/G/B of an image (or of one colour), as text."""
    return "/".join(f"{v:.3f}" for v in np.reshape(image, (-1, 3)).mean(0))


def checker(image: np.ndarray) -> float:
    """Mean absolute 2x2 checkerboard component of the luma, in 1/255."""
    luma = image @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    h, w = (luma.shape[0] // 2) * 2, (luma.shape[1] // 2) * 2
    c = luma[:h:2, :w:2] - luma[:h:2, 1:w:2] - luma[1:h:2, :w:2] + luma[1:h:2, 1:w:2]
    return float(np.abs(c).mean() / 4 * 255)


#: The peers shown beside microisp, where installed.
PEERS = ("LibRaw AHD", "darktable LMMSE", "RawTherapee AMaZE")


def peer_renders(path: Path, mosaic, dump) -> dict[str, np.ndarray]:
    """Each available peer's rendering of ``path`` (of a DNG holding ``mosaic`` as microisp decoded
    it, for a dump); a peer that cannot read the file is left out."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if dump is not None:
            path = Path(tmp) / "mosaic.dng"
            write_dng(path, mosaic.data, mosaic.cfa, mosaic.black.reshape(-1).tolist(), int(mosaic.white),
                      as_shot_neutral=(1.0 / mosaic.wb).tolist())
        for name in peers.available(list(PEERS)):
            try:
                out[name] = peers.render(name, path)
            except peers.PeerError as exc:
                print(f"  {name}: {exc}", flush=True)
    return out


def side_by_side(panels: list[np.ndarray], scale: int = 1) -> np.ndarray:
    panels = [p[::scale, ::scale] for p in panels]
    gap = np.ones((panels[0].shape[0], 8, 3), np.float32)
    row = [panels[0]]
    for p in panels[1:]:
        row += [gap, p]
    return np.concatenate(row, 1)


def crop_centres(image: np.ndarray, clipped: np.ndarray, r: int) -> dict[str, tuple[int, int]]:
    """Centres of 1:1 crops of side 2r: ``detail`` (most luma variance), ``highlights`` (the
    most even mix of ``clipped`` and unclipped pixels), ``dark`` (darkest window with some signal, where
    noise shows) and ``edges`` (strongest mean gradient), on a grid of windows, distinct kinds
    in distinct places where the frame allows."""
    luma = image[..., :3].mean(axis=-1)
    h, w = luma.shape
    step = max(1, r // 2)
    centres = [(y, x) for y in range(r, h - r + 1, step) for x in range(r, w - r + 1, step)] or [(h // 2, w // 2)]

    def window(a, y, x):
        return a[y - r:y + r, x - r:x + r]

    gy, gx = np.abs(np.diff(luma, axis=0, append=luma[-1:])), np.abs(np.diff(luma, axis=1, append=luma[:, -1:]))
    scores = {
        "detail": lambda y, x: window(luma, y, x).var(),
        "edges": lambda y, x: window(gy + gx, y, x).mean(),
        "highlights": lambda y, x: (lambda c: c.mean() * (1 - c.mean()))(window(clipped, y, x)),
        "dark": lambda y, x: -window(luma, y, x).mean() if window(luma, y, x).mean() > 0.01 else -np.inf,
    }
    chosen: dict[str, tuple[int, int]] = {}
    for kind, score in scores.items():
        if kind == "highlights" and not clipped.any():
            continue
        free = [c for c in centres if all(abs(c[0] - y) >= 2 * r or abs(c[1] - x) >= 2 * r
                                          for y, x in chosen.values())] or centres
        chosen[kind] = max(free, key=lambda c: score(*c))
    return chosen


def write_png(path: Path, image: np.ndarray) -> None:
    from microisp_cli.encode import write_image

    write_image(path, (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), overwrite=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default="default")
    parser.add_argument("--raw-dir", type=Path, default=ROOT.parent / "shared" / "data" / "raw")
    args = parser.parse_args()
    weights = load_weights(args.weights)
    runner = make_runner(weights)
    IMAGES.mkdir(parents=True, exist_ok=True)
    intro = (f"Generated by `python benchmarks/side_by_side.py --weights {args.weights}` on the RAW files "
             "of ../shared/data/raw. Left: microisp; then LibRaw AHD, darktable LMMSE and RawTherapee "
             "AMaZE, each neutral as in `microisp eval` (camera white balance, the file's matrix, no "
             "auto-brightening, tone curve or sharpening; see docs/weights.md). Mean RGB in 0..1; checker: mean absolute 2x2 "
             "checkerboard component of the luma, in 1/255 (maze and zipper artefacts raise it, and so "
             "do noise and fine detail). Where a file has no white balance, microisp uses grey world; "
             "LibRaw uses the camera's own (the KDC file) or, for the DNG wrapper, rescales the gains so "
             "the smallest is 1 (the Nikon dump's red gain is 0.73, so LibRaw's picture is brighter).")
    lines = ["# Real files: microisp beside LibRaw, darktable and RawTherapee", "", intro, "",
             "| file | note | clipped samples | developer | mean RGB | checker |", "|---|---|---|---|---|---|"]
    pictures, greys = [], []
    for name, dump, cfa, note in FILES:
        path = args.raw_dir / name
        mosaic = decode(path, dump)
        tagged = mosaic
        if cfa:
            mosaic = with_cfa(mosaic, cfa)
        ours = develop_mosaic(mosaic, weights, runner, bits=16).astype(np.float32) / 65535
        panels = [ours]
        if cfa:  # also as tagged, to show what the wrong tag does to both developers
            panels.append(develop_mosaic(tagged, weights, runner, bits=16).astype(np.float32) / 65535)
        others = peer_renders(path, mosaic, dump)
        labels = ["microisp"] + ([f"microisp as tagged {tagged.cfa}"] if cfa else []) + list(others)
        h = min(p.shape[0] for p in panels + list(others.values()))
        w = min(p.shape[1] for p in panels + list(others.values()))
        panels = [p[:h, :w] for p in panels + list(others.values())]
        stem = name.split(".")[0]
        scale = -(-w // 600)
        write_png(IMAGES / f"{stem}-side-by-side.png", side_by_side(panels, scale))
        r = min(64, h // 2, w // 2)
        crops = crop_centres(ours[:h, :w], (ours[:h, :w] >= 0.99).any(axis=-1), r)  # as oriented
        for kind, (cy, cx) in crops.items():
            write_png(IMAGES / f"{stem}-crop-{kind}.png",
                      side_by_side([p[cy - r:cy + r, cx - r:cx + r] for p in panels]))
        clipped = int((mosaic.data >= mosaic.white).sum())
        for k, (label, panel) in enumerate(zip(labels, panels)):
            first = k == 0
            lines.append(f"| {f'`{name}`' if first else ''} | {note if first else ''} | "
                         f"{f'{clipped:,}' if first else ''} | {label} | {rgb(panel)} | {checker(panel):.2f} |")
            print(lines[-1], flush=True)
        pictures += [f"### `{name}`", "", "Left to right: " + ", ".join(labels) + "; whole frame"
                     + (f" at 1/{scale}" if scale > 1 else "") + ", then crops of "
                     + ", ".join(crops) + " at 1:1 (chosen by `crop_centres`).", "",
                     f"![{stem}](images/{stem}-side-by-side.png)", ""]
        pictures += [f"![{stem} {kind}](images/{stem}-crop-{kind}.png)" for kind in crops] + [""]
        if name.startswith("canon"):
            about = ("Grey patches of the colour checker (white to black, 40x40 windows), mean RGB. "
                     "Both developers use the file's as-shot white balance, which leaves these greys warm "
                     "(the camera's as-shot neutral does not match the scene light); a cast added by the "
                     "developer shows as a difference between the two renderings (last column, the largest "
                     "channel difference in 1/255).")
            ahd = panels[labels.index("LibRaw AHD")]
            greys = ["", about, "", "| patch | microisp RGB | LibRaw AHD RGB | largest difference |", "|---|---|---|---|"]
            for k, (m, a) in enumerate(zip(grey_means(panels[0]), grey_means(ahd))):
                greys.append(f"| {k + 1} | {rgb(m)} | {rgb(a)} | {np.abs(m - a).max() * 255:.1f} |")
    page = ROOT / "docs" / "real-files.md"
    kept = page.read_text() if page.exists() else ""  # benchmarks/looks.py's section stays
    kept = kept[kept.index("<!-- BEGIN looks.py -->"):] if "<!-- BEGIN looks.py -->" in kept else ""
    page.write_text("\n".join(lines + greys + [""] + pictures) + ("\n" + kept if kept else ""))


if __name__ == "__main__":
    main()
