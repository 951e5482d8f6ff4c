"""The classical developers microisp is measured against, each run neutrally on the same RAW file.

- **LibRaw** through rawpy ``postprocess``: as-shot white balance, no auto-brightening, the
  file's white level (``adjust_maximum_thr=0``), sRGB primaries and curve; AHD, DHT, AAHD.
- **darktable** (``darktable-cli``, Debian package ``darktable``): a private config folder with
  ``plugins/darkroom/workflow=none`` (no filmic, sigmoid or base curve) and
  ``chromatic-adaptation=legacy`` (the white balance module at as-shot), a history holding only the
  demosaic module (RCD or LMMSE), ``--core --configdir DIR --library :memory:``.
- **demosaicnet** (Gharbi et al. 2016, ``learned_peer.py``): the learned anchor, its published
  Bayer weights from the ``demosaicnet`` package, in microisp's own decode and render.
- **RawTherapee** (``rawtherapee-cli``, Debian package ``rawtherapee``): its neutral built-in
  defaults with the input profile set to the file's own matrix (``(camera)``, not the bundled DCPs),
  no tone curve, look table, hue/sat map or baseline exposure offset, border 0, camera white
  balance; AMaZE or LMMSE, and LMMSE with its noise reduction at luminance 15, 30 and 50.

Every renderer returns (H, W, 3) float32 sRGB in [0, 1] from a 16-bit output, orientation as
stored (the synthetic sets are written unrotated). ``PEERS`` names them as the eval report does.
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import PeerError

LIBRAW_METHODS = ("AHD", "DHT", "AAHD")
#: darktable 4.x demosaic method numbers (``dt_iop_demosaic_method_t``).
DARKTABLE_METHODS = {"RCD": 5, "LMMSE": 6}
#: rawtherapee-cli ``[RAW Bayer] Method`` values.
RAWTHERAPEE_METHODS = {"AMaZE": "amaze", "LMMSE": "lmmse"}


def libraw_postprocess(path: str | Path, method: str = "AHD", bits: int = 16) -> np.ndarray:
    """LibRaw's neutral sRGB rendering of ``path`` with demosaic ``method`` (see module doc), as
    LibRaw returns it: (H, W, 3) uint8 or uint16."""
    import rawpy

    with rawpy.imread(str(path)) as raw:
        return raw.postprocess(
            demosaic_algorithm=getattr(rawpy.DemosaicAlgorithm, method), use_camera_wb=True,
            no_auto_bright=True, output_bps=bits, gamma=(2.4, 12.92),
            output_color=rawpy.ColorSpace.sRGB, user_flip=0, adjust_maximum_thr=0.0)


def libraw_render(path: str | Path, method: str = "AHD") -> np.ndarray:
    """:func:`libraw_postprocess` as float32 in [0, 1]."""
    return libraw_postprocess(path, method).astype(np.float32) / 65535.0


def libraw_versions() -> dict[str, str]:
    import rawpy

    return {"libraw": ".".join(map(str, rawpy.libraw_version)), "rawpy": rawpy.__version__}


# --- darktable --------------------------------------------------------------------------------
_DARKTABLE_RC = """\
plugins/darkroom/workflow=none
plugins/darkroom/chromatic-adaptation=legacy
plugins/imageio/format/tiff/bpp=16
plugins/imageio/format/tiff/compress=0
plugins/imageio/format/png/bpp=8
"""

_DARKTABLE_XMP = """\
<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:darktable="http://darktable.sf.net/"
   darktable:xmp_version="4" darktable:history_end="1">
   <darktable:history>
    <rdf:Seq>
     <rdf:li darktable:num="0" darktable:operation="demosaic" darktable:enabled="1"
      darktable:modversion="4" darktable:params="{params}" darktable:multi_name=""
      darktable:multi_priority="0"/>
    </rdf:Seq>
   </darktable:history>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
"""


def darktable_setup(folder: str | Path, method: str = "LMMSE") -> tuple[Path, Path]:
    """Write a neutral darktable config folder and a one-module history (demosaic ``method``)
    into ``folder``; returns (config folder, XMP file)."""
    folder = Path(folder)
    config = folder / "darktable-config"
    config.mkdir(parents=True, exist_ok=True)
    (config / "darktablerc").write_text(_DARKTABLE_RC)
    # dt_iop_demosaic_params_t v4: green_eq, median_thrs, color_smoothing, method, lmmse_refine, dual_thrs
    params = struct.pack("<IfIIIf", 0, 0.0, 0, DARKTABLE_METHODS[method], 1, 0.2).hex()
    xmp = folder / f"demosaic-{method.lower()}.xmp"
    xmp.write_text(_DARKTABLE_XMP.format(params=params))
    return config, xmp


def darktable_command(raw: str | Path, output: str | Path, config: Path, xmp: Path) -> list[str]:
    """The ``darktable-cli`` command line that develops ``raw`` to ``output`` neutrally."""
    return ["darktable-cli", str(raw), str(xmp), str(output), "--core", "--configdir", str(config),
            "--library", ":memory:"]


# --- RawTherapee ------------------------------------------------------------------------------
_RAWTHERAPEE_PP3 = """\
[Version]
AppVersion=5.9
Version=349

[White Balance]
Enabled=true
Setting=Camera

[Color Management]
InputProfile=(camera)
ToneCurve=false
ApplyLookTable=false
ApplyBaselineExposureOffset=false
ApplyHueSatMap=false
WorkingProfile=ProPhoto
OutputProfile=RT_sRGB
OutputProfileIntent=Relative
OutputBPC=true

[RAW Bayer]
Method={method}
Border=0
CcSteps=0
LineDenoise=0
GreenEqThreshold=0

[RAW]
CA=false
HotPixelFilter=false
DeadPixelFilter=false
"""


#: Luminance strengths of RawTherapee's noise reduction (its "Directional Pyramid Denoising",
#: Lab, chrominance on its automatic setting) scored as peers beside its plain LMMSE: the
#: yardstick on noisy frames is a classical demosaic plus the developer's own noise reduction.
RAWTHERAPEE_DENOISE = (15, 30, 50)

_RAWTHERAPEE_DENOISE_PP3 = """
[Directional Pyramid Denoising]
Enabled=true
Enhance=false
Median=false
Luma={luma}
Ldetail=0
Chroma=0
Method=Lab
LMethod=SLI
CMethod=AUT
C2Method=AUTO
SMethod=shal
MedMethod=55
RGBMethod=soft
MethodMed=Lpab
Redchro=0
Bluechro=0
Gamma=1.7
Passes=1
LCurve=0;
CCCurve=0;
"""


def rawtherapee_setup(folder: str | Path, method: str = "LMMSE", denoise: int = 0) -> Path:
    """Write a neutral RawTherapee profile (demosaic ``method``; luminance noise reduction
    ``denoise``, 0: off) into ``folder``; returns it."""
    profile = Path(folder) / f"neutral-{method.lower()}-nr{denoise}.pp3"
    profile.parent.mkdir(parents=True, exist_ok=True)
    text = _RAWTHERAPEE_PP3.format(method=RAWTHERAPEE_METHODS[method])
    profile.write_text(text + (_RAWTHERAPEE_DENOISE_PP3.format(luma=denoise) if denoise else ""))
    return profile


def rawtherapee_command(raw: str | Path, output: str | Path, profile: Path, bits: int = 16) -> list[str]:
    """The ``rawtherapee-cli`` command line that develops ``raw`` to a TIFF ``output`` neutrally."""
    return ["rawtherapee-cli", "-q", "-Y", "-o", str(output), f"-b{bits}", "-t", "-p", str(profile),
            "-c", str(raw)]


# --- one interface ----------------------------------------------------------------------------
@functools.cache
def _workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="microisp-peers-"))


def _run_to_tiff(command: list[str], output: Path, raw: Path) -> np.ndarray:
    import tifffile

    output.unlink(missing_ok=True)
    done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode or not output.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise PeerError(f"{raw}: {command[0]} failed (exit {done.returncode}): {tail[0]}")
    image = tifffile.imread(output)
    output.unlink()
    return image[..., :3].astype(np.float32) / 65535.0


def darktable_render(path: str | Path, method: str = "LMMSE") -> np.ndarray:
    config, xmp = darktable_setup(_workdir(), method)
    out = _workdir() / "darktable-out.tif"
    return _run_to_tiff(darktable_command(path, out, config, xmp), out, Path(path))


def rawtherapee_render(path: str | Path, method: str = "LMMSE", denoise: int = 0) -> np.ndarray:
    profile = rawtherapee_setup(_workdir(), method, denoise)
    out = _workdir() / "rawtherapee-out.tif"
    return _run_to_tiff(rawtherapee_command(path, out, profile), out, Path(path))


def _program(name: str) -> Callable[[], str | None]:
    return lambda: None if shutil.which(name) else f"{name} is not installed (Debian package {name.split('-')[0]})"


def _demosaicnet_missing() -> str | None:
    from .learned_peer import weights_path

    return None if weights_path() else "its weights are not installed (pip install --no-deps demosaicnet)"


def _demosaicnet_render(path: str | Path) -> np.ndarray:
    from .learned_peer import render as render_demosaicnet

    return render_demosaicnet(path)


def _peers() -> dict[str, tuple[Callable[[], str | None], Callable[[str | Path], np.ndarray]]]:
    table: dict[str, tuple[Callable[[], str | None], Callable[[str | Path], np.ndarray]]] = {}
    for m in LIBRAW_METHODS:
        table[f"LibRaw {m}"] = (lambda: None, functools.partial(libraw_render, method=m))
    for m in DARKTABLE_METHODS:
        table[f"darktable {m}"] = (_program("darktable-cli"), functools.partial(darktable_render, method=m))
    for m in RAWTHERAPEE_METHODS:
        table[f"RawTherapee {m}"] = (_program("rawtherapee-cli"), functools.partial(rawtherapee_render, method=m))
    for luma in RAWTHERAPEE_DENOISE:
        table[f"RawTherapee LMMSE NR{luma}"] = (_program("rawtherapee-cli"),
                                                functools.partial(rawtherapee_render, denoise=luma))
    table["demosaicnet"] = (_demosaicnet_missing, _demosaicnet_render)
    return table


#: Every yardstick by its report name -> (why it cannot run here, or None; renderer(path) -> float RGB).
PEERS = _peers()


def missing(name: str) -> str | None:
    """Why the peer ``name`` cannot run on this machine, or None if it can."""
    return PEERS[name][0]()


def available(names: list[str] | None = None) -> list[str]:
    """The peers in ``names`` (default: all) that can run here."""
    return [n for n in (names or list(PEERS)) if missing(n) is None]


def render(name: str, path: str | Path) -> np.ndarray:
    """Render ``path`` with the peer ``name`` (a key of :data:`PEERS`)."""
    if name not in PEERS:
        raise PeerError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    reason = missing(name)
    if reason:
        raise PeerError(f"{name}: {reason}")
    return PEERS[name][1](path)
