"""How to develop: one frozen, validated :class:`DevelopOptions`, and presets of it.

The CLI builds one from :mod:`defaults`, a ``--preset`` and its own options, and passes it to
:func:`develop.develop`, :func:`develop.develop_to_file`, :func:`batch_step.develop_file` and
:func:`parallel.develop_files`; library users do the same, or pass single options as keywords::

    from microisp_cli.develop import develop
    from microisp_cli.options import DevelopOptions, load_preset
    develop("IMG.dng", options=DevelopOptions(wb="daylight", exposure=0.5, colorspace="display-p3"))
    develop("IMG.dng", options=load_preset("proof"), bits=8)

A value that cannot be used raises :class:`errors.OptionsError` naming the option (``--wb``).
Presets are small TOML files of these fields (``exposure = 0.7``, ``wb = [2.0, 1.0, 1.5]``); the
bundled ones live in ``microisp_cli/presets/`` (``microisp develop --list-presets``).
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from . import defaults
from .bayer import CFA, CFA_PATTERNS
from .colour import COLOUR_SPACES, KELVIN_RANGE, TINT_RANGE, Kelvin
from .errors import OptionsError
from .files import Unreadable, read_regular
from .raw import DumpFormat
from .vocabulary import ATTENTION_MODES, BIT_DEPTHS, FORMATS, HIGHLIGHT_MODES, SUBSAMPLINGS, WB_MODES


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


#: The most characters of a value echoed in a message (a preset may hold an 800 KB string).
SHOWN_CHARACTERS = 60


def shown(value: Any) -> str:
    """``repr(value)`` for a one-line message, cut to :data:`SHOWN_CHARACTERS` (its length said);
    an integer too long to print is described by its size."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        return f"a {type(value).__name__} value"
    if len(text) <= SHOWN_CHARACTERS:
        return text
    return f"{text[:SHOWN_CHARACTERS]}... ({len(text)} characters)"


def _whole(value: Any) -> bool:
    """An integer, not a bool (``true`` is not 1 in a preset)."""
    return isinstance(value, int) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class DevelopOptions:
    """Every choice of a develop, validated (and normalised: ``wb="2,1,1.5"`` becomes a tuple,
    ``exposure="0.5"`` a float) when made.

    - ``bits``: 8 or 16, None for the format's default (PNG, JPEG, WebP 8; TIFF 16);
    - ``quality`` 1-100 and ``subsampling`` ``"444"|"422"|"420"``: JPEG (``quality`` also WebP);
    - ``wb``: ``"camera"`` (as shot), ``"auto"`` (grey world), ``"daylight"``, a
      :class:`colour.Kelvin` (``"5500K,+2"``: temperature and tint) or (R, G, B) gains;
    - ``exposure``: EV (a linear gain of 2**EV before the transfer curve) or ``"auto"``;
    - ``highlights``: ``"clip"``, ``"blend"`` or ``"reconstruct"`` (:func:`render.recover_highlights`);
    - ``look``: ``"neutral"`` (no tone curve) or a scene-referred look of ``defaults.LOOKS``
      (:func:`render.tone_map`); ``contrast`` and ``saturation`` replace the look's (None: the
      look's); ``sharpen``: capture sharpening amount (0: off; :func:`adjust.sharpen`);
      ``lens_correction``: distortion, TCA and vignetting through lensfun (:mod:`lens`);
    - ``colorspace``: one of :data:`colour.COLOUR_SPACES`;
    - ``half_size``: develop a 2x2-binned mosaic (half width and height, a quarter of the work);
    - ``size``: long side of the output in pixels, ``width`` and ``height``: its width and
      height (the largest size within every limit given, aspect kept; resampled in linear light,
      Lanczos), None for full size; ``upscale``: enlarge a photo smaller than that (else it
      keeps its size);
    - ``thumbnail``: write the file's embedded preview instead of developing it;
    - ``strip_metadata``: leave the camera's EXIF/XMP out (the ICC profile is always embedded);
    - ``tile_size``, ``attention``: the tiled network (docs/tiling.md); ``dump``: how to read
      sensor dumps and ``.npy``; ``cfa``: a CFA order that overrides the file's; ``max_megapixels``:
      larger frames are refused (None: no limit).
    """

    bits: int | None = None
    quality: int = defaults.JPEG_QUALITY
    subsampling: str = defaults.JPEG_SUBSAMPLING
    wb: str | Kelvin | tuple[float, float, float] = defaults.WB
    exposure: float | str = defaults.EXPOSURE
    highlights: str = defaults.HIGHLIGHTS
    look: str = defaults.LOOK
    contrast: float | None = None
    saturation: float | None = None
    sharpen: float = defaults.SHARPEN
    lens_correction: bool = False
    colorspace: str = defaults.COLORSPACE
    half_size: bool = False
    size: int | None = None
    width: int | None = None
    height: int | None = None
    upscale: bool = False
    thumbnail: bool = False
    strip_metadata: bool = False
    tile_size: int | None = None  # None: the network's (tile_plans.tile_size_for)
    attention: str = defaults.ATTENTION
    dump: DumpFormat | None = None
    cfa: CFA | None = None
    max_megapixels: float | None = defaults.MAX_MEGAPIXELS

    def __post_init__(self) -> None:
        def choose(name: str, allowed: tuple[str, ...]) -> None:
            value = getattr(self, name)
            value = value.lower().replace(":", "") if isinstance(value, str) else value
            if value not in allowed:
                raise OptionsError(_flag(name), f"{shown(getattr(self, name))} is not one of {', '.join(allowed)}")
            object.__setattr__(self, name, value)

        if self.bits is not None and not (_whole(self.bits) and self.bits in BIT_DEPTHS):
            raise OptionsError("--bits", f"must be the integer 8 or 16, got {shown(self.bits)}")
        if not (_whole(self.quality) and 1 <= self.quality <= 100):
            raise OptionsError("--quality", f"must be an integer 1-100, got {shown(self.quality)}")
        choose("subsampling", SUBSAMPLINGS)
        object.__setattr__(self, "wb", parse_wb(self.wb))
        object.__setattr__(self, "exposure", parse_exposure(self.exposure))
        choose("highlights", HIGHLIGHT_MODES)
        choose("look", tuple(defaults.LOOKS))
        for name, low, high in (("contrast", 1.0, 4.0), ("saturation", 0.0, 3.0), ("sharpen", 0.0, 5.0)):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
                raise OptionsError(_flag(name), f"must be a number {low:g}-{high:g}, got {value!r}")
            object.__setattr__(self, name, float(value))
        if self.contrast is not None and self.look == "neutral":
            raise OptionsError("--contrast", "the neutral look has no tone curve: choose one with "
                               f"--look ({', '.join(k for k in defaults.LOOKS if k != 'neutral')})")
        choose("colorspace", COLOUR_SPACES)
        choose("attention", ATTENTION_MODES)
        for name in ("size", "width", "height"):
            value = getattr(self, name)
            if value is not None and not (_whole(value) and value >= 2):
                raise OptionsError(_flag(name), f"must be a whole number of pixels >= 2, got {shown(value)}")
        from .tile_plans import check_tile_size  # the one tile-size rule

        try:
            check_tile_size(self.tile_size)
        except (TypeError, ValueError) as exc:
            raise OptionsError("--tile-size", str(exc)) from None
        if self.cfa is not None and self.cfa not in CFA_PATTERNS:
            raise OptionsError("--force-cfa", f"{shown(self.cfa)} is not one of {', '.join(CFA_PATTERNS)}")
        if self.max_megapixels is not None and not (
                isinstance(self.max_megapixels, (int, float)) and not isinstance(self.max_megapixels, bool)
                and self.max_megapixels > 0 and math.isfinite(self.max_megapixels)):
            raise OptionsError("--max-megapixels", f"must be a positive finite number, got {shown(self.max_megapixels)}")
        for name in ("half_size", "upscale", "lens_correction", "thumbnail", "strip_metadata"):
            if not isinstance(getattr(self, name), bool):
                raise OptionsError(_flag(name), f"must be true or false, got {shown(getattr(self, name))}")

    def replace(self, **changes: Any) -> DevelopOptions:
        """A copy with ``changes`` (field names; dashes allowed), validated again."""
        return dataclasses.replace(self, **_fields(changes, "option"))

    @classmethod
    def of(cls, options: DevelopOptions | None = None, **changes: Any) -> DevelopOptions:
        """``options`` (or the defaults) with ``changes``: how the library functions take both."""
        options = options if options is not None else cls()
        return options.replace(**changes) if changes else options


@dataclasses.dataclass(frozen=True)
class Development:
    """What a develop actually used, for reports (``--json``): the white balance gains (R, G, B;
    G = 1) and where they came from, the matrix from white-balanced camera RGB to the linear
    output space and where the camera part came from, the exposure in EV, the colour space, and
    the output size (width, height)."""

    wb: tuple[float, ...]
    wb_source: str
    matrix: tuple[tuple[float, ...], ...]
    matrix_source: str
    exposure: float
    colorspace: str
    size: tuple[int, int]


_KELVIN = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*(k?)\s*(?:,\s*([+-]?\d+(?:\.\d*)?)\s*)?$", re.IGNORECASE)


def parse_wb(value: Any) -> str | Kelvin | tuple[float, float, float]:
    """``"camera"``/``"auto"``/``"daylight"``; a colour temperature in kelvin with an optional
    tint (``"5500K"``, ``"5500"``, ``"3200K,-4"``: :class:`colour.Kelvin`, the tint in thousandths
    of Duv, positive greener); or R, G, B gains (``"2,1,1.5"`` or a sequence), normalised to
    G = 1; :class:`OptionsError` otherwise."""
    if isinstance(value, Kelvin):
        value = str(value)
    if isinstance(value, str) and value.strip().lower() in WB_MODES:
        return value.strip().lower()
    match = _KELVIN.match(value) if isinstance(value, str) else None
    if match and (match.group(2) or match.group(3) is not None or float(match.group(1)) >= 1000):
        kelvin = Kelvin(float(match.group(1)), float(match.group(3) or 0.0))
        if not KELVIN_RANGE[0] <= kelvin.temperature <= KELVIN_RANGE[1]:
            raise OptionsError("--wb", f"{value!r}: a colour temperature must be "
                               f"{KELVIN_RANGE[0]:g}-{KELVIN_RANGE[1]:g} K")
        if not TINT_RANGE[0] <= kelvin.tint <= TINT_RANGE[1]:
            raise OptionsError("--wb", f"{value!r}: the tint must be {TINT_RANGE[0]:+g} to "
                               f"{TINT_RANGE[1]:+g} (thousandths of Duv)")
        return kelvin
    parts = value.split(",") if isinstance(value, str) else value
    try:
        gains = tuple(float(p) for p in parts) if isinstance(parts, (list, tuple)) and len(parts) == 3 else ()
    except (TypeError, ValueError, OverflowError):
        gains = ()
    if len(gains) != 3:
        raise OptionsError("--wb", f"{shown(value)} is not one of {', '.join(WB_MODES)}, a colour "
                           "temperature such as 5500K (with a tint: 5500K,+3) or R,G,B gains such as 2.1,1,1.6")
    if not all(math.isfinite(g) and g > 0 for g in gains):
        raise OptionsError("--wb", f"gains must be positive numbers, got {shown(value)}")
    return tuple(g / gains[1] for g in gains)  # type: ignore[return-value]


def parse_exposure(value: Any) -> float | str:
    """EV as a float (``"+0.5"`` accepted), or ``"auto"``; :class:`OptionsError` otherwise."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        if isinstance(value, bool):
            raise TypeError
        ev = float(value)
    except (TypeError, ValueError, OverflowError):
        raise OptionsError("--exposure", f"{shown(value)} is neither a number of EV nor auto") from None
    if not (math.isfinite(ev) and abs(ev) <= 10):
        raise OptionsError("--exposure", f"{shown(value)} EV is outside -10..+10")
    return ev


FIELDS = tuple(f.name for f in dataclasses.fields(DevelopOptions))


def _fields(values: dict[str, Any], what: str) -> dict[str, Any]:
    out = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELDS:
            raise OptionsError(_flag(name[:SHOWN_CHARACTERS]), f"unknown {what}; known: {', '.join(map(_flag, FIELDS))}")
        out[name] = value
    return out


def parse_format(value: Any) -> str:
    """An output format (``jpg``, ``.TIF``...) -> its extension with the dot (``.jpg``), one of
    ``vocabulary.FORMATS``; :class:`OptionsError` naming ``--format`` otherwise."""

    extension = "." + str(value).strip().lower().lstrip(".")
    if not isinstance(value, str) or extension not in FORMATS:
        raise OptionsError("--format", f"{value!r} is not one of png, tif, tiff, jpg, jpeg, webp, avif, jxl")
    return extension


# --- presets ---------------------------------------------------------------------------------------
#: Largest preset file read.
PRESET_MAX_BYTES = 1 << 20
#: Keys a preset may hold: the options a photographer sets (not the tiling or dump reading), and
#: ``format``, the output format where ``-o`` is a folder or ``-`` (what ``--format`` sets).
PRESET_KEYS = ("format", "bits", "quality", "subsampling", "wb", "exposure", "highlights", "look",
               "contrast", "saturation", "sharpen", "lens_correction", "colorspace",
               "half_size", "size", "width", "height", "upscale", "strip_metadata")


def bundled_presets() -> dict[str, str]:
    """Name -> description of every bundled preset."""
    folder = resources.files(__package__) / "presets"
    found = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".toml"):
            found[entry.name[:-5]] = str(tomllib.loads(entry.read_text()).get("description", ""))
    return found


def preset_values(name_or_path: str | Path) -> dict[str, Any]:
    """The options a preset sets: a bundled name or a ``.toml`` file (``description`` ignored).
    :class:`OptionsError` for a missing or unreadable file and for keys it may not hold."""
    text = str(name_or_path)
    bundled = resources.files(__package__) / "presets" / f"{text}.toml"
    try:
        if "/" not in text and not text.endswith(".toml") and bundled.is_file():
            data = tomllib.loads(bundled.read_text())
        elif not Path(text).exists():
            raise OptionsError("--preset", f"{text}: no such preset or file (bundled: "
                               f"{', '.join(bundled_presets())})")
        else:  # a user's file: regular and small (a FIFO named here must not hang)
            data = tomllib.loads(read_regular(text, PRESET_MAX_BYTES).decode("utf-8"))
    except Unreadable as exc:
        raise OptionsError("--preset", f"{text}: {exc}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise OptionsError("--preset", f"{text}: not a readable TOML file ({shown(str(exc))[1:-1]})") from None
    except RecursionError:
        raise OptionsError("--preset", f"{text}: not a readable TOML file (nested too deeply)") from None
    except ValueError as exc:  # an integer of thousands of digits
        why = "an integer with too many digits" if "digits" in str(exc) else shown(str(exc))[1:-1]
        raise OptionsError("--preset", f"{text}: not a readable TOML file ({why})") from None
    data.pop("description", None)
    values, written = {}, {}
    for key, value in data.items():
        name = key.replace("-", "_")
        if name not in PRESET_KEYS:
            raise OptionsError(f"--preset {text}", f"{shown(key)[1:-1]} cannot be set by a preset (allowed: "
                               f"{', '.join(PRESET_KEYS)})")
        values[name], written[name] = value, key
    try:  # each value checked now, so that an error names the key the preset's author wrote
        if "format" in values:
            values["format"] = parse_format(values["format"])
        DevelopOptions(**{k: v for k, v in values.items() if k != "format"})
    except OptionsError as exc:
        name = exc.option.lstrip("-").replace("-", "_")
        raise OptionsError(f"--preset {text}", f"{written.get(name, name)} = {shown(data.get(written.get(name, name)))}: "
                           f"{exc.reason}") from None
    return values


def preset_blame(exc: OptionsError, preset: str, values: dict[str, Any]) -> OptionsError:
    """``exc`` about an option that the preset ``preset`` set (``values``: what it set and the
    command line did not override) restated as the preset's key, e.g. ``--preset archive: bits =
    16: JPEG is 8-bit only``; ``exc`` itself otherwise."""
    name = exc.option.lstrip("-").replace("-", "_")
    if name not in values:
        return exc
    return OptionsError(f"--preset {preset}", f"{name} = {values[name]!r}: {exc.reason}")


def load_preset(name_or_path: str | Path, base: DevelopOptions | None = None) -> DevelopOptions:
    """``base`` (or the defaults) with the preset's options (its ``format`` is for the caller
    that names the outputs: see :func:`preset_values`)."""
    values = preset_values(name_or_path)
    values.pop("format", None)
    return DevelopOptions.of(base, **values)
