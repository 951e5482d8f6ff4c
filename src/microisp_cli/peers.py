"""The classical developers microisp is measured against, each run neutrally on the same RAW file.

- **LibRaw** through rawpy ``postprocess``: as-shot white balance, no auto-brightening, the
  file's white level (``adjust_maximum_thr=0``), sRGB primaries and curve; AHD, DHT, AAHD.
- **darktable** (``darktable-cli``, Debian package ``darktable``): a private config folder with
  ``plugins/darkroom/workflow=none`` (no filmic, sigmoid or base curve) and
  ``chromatic-adaptation=legacy`` (the white balance module at as-shot), a history holding only the
  demosaic module (RCD or LMMSE), ``--core --configdir DIR --library :memory:``.
- **RawTherapee** (``rawtherapee-cli``, Debian package ``rawtherapee``): its neutral built-in
  defaults with the input profile set to the file's own matrix (``(camera)``, not the bundled DCPs),
  no tone curve, look table, hue/sat map or baseline exposure offset, border 0, camera white
  balance; AMaZE or LMMSE.

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


def rawtherapee_setup(folder: str | Path, method: str = "LMMSE") -> Path:
    """Write a neutral RawTherapee profile (demosaic ``method``) into ``folder``; returns it."""
    profile = Path(folder) / f"neutral-{method.lower()}.pp3"
    profile.parent.mkdir(parents=True, exist_ok=True)
    profile.write_text(_RAWTHERAPEE_PP3.format(method=RAWTHERAPEE_METHODS[method]))
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


def rawtherapee_render(path: str | Path, method: str = "LMMSE") -> np.ndarray:
    profile = rawtherapee_setup(_workdir(), method)
    out = _workdir() / "rawtherapee-out.tif"
    return _run_to_tiff(rawtherapee_command(path, out, profile), out, Path(path))


def _peers() -> dict[str, tuple[str | None, Callable[[str | Path], np.ndarray]]]:
    table: dict[str, tuple[str | None, Callable[[str | Path], np.ndarray]]] = {}
    for m in LIBRAW_METHODS:
        table[f"LibRaw {m}"] = (None, functools.partial(libraw_render, method=m))
    for m in DARKTABLE_METHODS:
        table[f"darktable {m}"] = ("darktable-cli", functools.partial(darktable_render, method=m))
    for m in RAWTHERAPEE_METHODS:
        table[f"RawTherapee {m}"] = ("rawtherapee-cli", functools.partial(rawtherapee_render, method=m))
    return table


#: Every yardstick by its report name -> (program it needs or None, renderer(path) -> float RGB).
PEERS = _peers()


def available(names: list[str] | None = None) -> list[str]:
    """The peers in ``names`` (default: all) whose program is installed."""
    return [n for n in (names or list(PEERS)) if PEERS[n][0] is None or shutil.which(PEERS[n][0])]


def render(name: str, path: str | Path) -> np.ndarray:
    """Render ``path`` with the peer ``name`` (a key of :data:`PEERS`)."""
    if name not in PEERS:
        raise PeerError(f"unknown peer {name!r}; choose from {', '.join(PEERS)}")
    program, renderer = PEERS[name]
    if program and not shutil.which(program):
        raise PeerError(f"{name}: {program} is not installed (Debian package {program.split('-')[0]})")
    return renderer(path)
