"""White balance: which gains a develop uses, and the one line it says when it cannot use what was
asked for. :func:`choose` is the whole policy; :func:`apply` is the develop's white-balance stage.

What can be asked for (``options.DevelopOptions.wb``, ``--wb``):

- ``"camera"``: the file's as-shot gains; else LibRaw's daylight gains for the camera; else
  grey-world gains measured on the mosaic. Falling back says why the as-shot gains were not used
  (missing, or unusable: non-finite, not positive, outside ``defaults.WB_GAIN_LIMITS``) and what is
  used instead; an input without metadata (a sensor dump, a ``.npy``) is measured without a word;
- ``"auto"``: grey world;
- ``"daylight"``: LibRaw's daylight gains (grey world, with a line, for a camera without them);
- a :class:`colour.Kelvin` (``5500K``, ``3200K,-4``): the gains that make that light neutral,
  through the camera's matrices (:func:`colour.kelvin_gains`); grey world, with a line, for a
  camera without a colour matrix and daylight gains, or where they give unusable gains;
- (R, G, B) gains: used as given.

The readers (:mod:`camera_raw`, :mod:`dumps`) decode with ``"camera"`` through :func:`choose` and
keep what it needs on the :class:`mosaic.Mosaic` (``wb_problem``, ``daylight_wb``), without a
warning: the develop decides once, in its white-balance stage, with what was asked, and says the
line there (:data:`errors.WhiteBalanceFallback`), so no decoder's line needs hiding.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable

import numpy as np

from . import defaults
from .colour import Kelvin, kelvin_gains
from .errors import WhiteBalanceFallback
from .mosaic import Mosaic, grey_world

#: Where the gains came from (``Mosaic.wb_source``, the ``--json`` record's ``wb_source``).
AS_SHOT, DAYLIGHT, GREY_WORLD, USER = "as shot", "daylight (LibRaw)", "grey world", "user"

#: What ``--wb`` may be: a word, a light, or gains.
Wanted = str | Kelvin | tuple[float, float, float]


@dataclasses.dataclass(frozen=True)
class WhiteBalance:
    """The gains (R, G, B; G = 1 once a :class:`Mosaic` holds them), where they came from, and the
    one line to say when they are a fallback (None: they are what was asked for)."""

    gains: np.ndarray
    source: str
    fallback: str | None = None


def choose(wanted: Wanted, *, as_shot: np.ndarray | None, problem: str | None,
           daylight: np.ndarray | None, matrix: np.ndarray | None,
           grey: Callable[[], np.ndarray]) -> WhiteBalance:
    """The white balance ``wanted`` asks for (module doc), from what the file gives: its
    ``as_shot`` gains (None: missing or unusable, ``problem`` saying which; None for an input
    without metadata), LibRaw's ``daylight`` gains (None: unknown), the camera -> sRGB ``matrix``
    (None: the file has none, only the identity) and ``grey``, which measures grey-world gains."""
    if isinstance(wanted, Kelvin):
        if daylight is not None and matrix is not None:
            gains = kelvin_gains(wanted, matrix, daylight)
            low, high = defaults.WB_GAIN_LIMITS
            if np.all(np.isfinite(gains)) and np.all((gains >= low) & (gains <= high)):
                return WhiteBalance(gains, f"{wanted} (colour temperature)")
            why = f"{wanted} gives unusable gains for this camera ({', '.join(f'{g:.3g}' for g in gains)})"
        else:
            why = f"{wanted} needs the camera's colour matrix and daylight white balance, and this file has none"
        return WhiteBalance(grey(), GREY_WORLD, f"{why}; using grey world gains instead")
    if wanted == "camera":
        if as_shot is not None:
            return WhiteBalance(as_shot, AS_SHOT)
        gains, source = (daylight, DAYLIGHT) if daylight is not None else (grey(), GREY_WORLD)
        return WhiteBalance(gains, source, None if problem is None else f"{problem}; using {source} gains instead")
    if wanted == "daylight":
        if daylight is not None:
            return WhiteBalance(daylight, DAYLIGHT)
        return WhiteBalance(grey(), GREY_WORLD, "no daylight white balance is known for this camera; "
                                                "using grey world gains instead")
    if wanted == "auto":
        return WhiteBalance(grey(), GREY_WORLD)
    return WhiteBalance(np.asarray(wanted, np.float32), USER)


def apply(mosaic: Mosaic, wanted: Wanted) -> Mosaic:
    """The develop's white-balance stage: ``mosaic`` with the gains ``wanted`` asks for
    (:func:`choose`, from what its reader kept), a fallback said in one
    :class:`errors.WhiteBalanceFallback` warning. ``"camera"`` takes the gains the mosaic was
    decoded with (grey world is measured again: the CFA order may have been forced since)."""
    as_shot = None if mosaic.wb_source in (DAYLIGHT, GREY_WORLD) else mosaic.wb
    matrix = None if mosaic.matrix_source.startswith("identity") else mosaic.cam_to_srgb
    choice = choose(wanted, as_shot=as_shot, problem=mosaic.wb_problem, daylight=mosaic.daylight_wb,
                    matrix=matrix, grey=lambda: grey_world(mosaic.data, mosaic.cfa, mosaic.black, mosaic.white))
    if choice.fallback is not None:
        warnings.warn(choice.fallback, WhiteBalanceFallback, stacklevel=2)
    if choice.gains is mosaic.wb:  # the decoded gains: the mosaic as it is (its source kept)
        return mosaic
    return dataclasses.replace(mosaic, wb=choice.gains, wb_source=choice.source)
