"""The fixed words of microisp, each defined once with its check: the library, the options, the
CLI's choices, the runtimes and the tests read them from here.

A leaf module (it imports nothing of microisp), so every floor may read it. The CFA orders live
with the other Bayer facts in :mod:`bayer` (``CFA``, ``CFA_PATTERNS``, ``check_cfa``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

#: ``--wb`` words (besides a colour temperature and R, G, B gains).
WBMode = Literal["camera", "auto", "daylight"]
WB_MODES: tuple[str, ...] = get_args(WBMode)

#: ``--highlights``: :func:`render.recover_highlights`.
HighlightMode = Literal["clip", "blend", "reconstruct"]
HIGHLIGHT_MODES: tuple[str, ...] = get_args(HighlightMode)

#: ``--attention``: ``exact`` (global attention over the whole frame) or ``tile`` (per window).
AttentionMode = Literal["exact", "tile"]
ATTENTION_MODES: tuple[str, ...] = get_args(AttentionMode)

#: JPEG (and AVIF) chroma subsampling.
Subsampling = Literal["444", "422", "420"]
SUBSAMPLINGS: tuple[str, ...] = get_args(Subsampling)

#: What a network's last segment gives: linear camera RGB, or sRGB-encoded values.
OutputKind = Literal["linear", "srgb"]
OUTPUT_KINDS: tuple[str, ...] = get_args(OutputKind)

#: Output file extensions and the format each is written in.
FORMATS = {".png": "png", ".tif": "tiff", ".tiff": "tiff", ".jpg": "jpeg", ".jpeg": "jpeg",
           ".webp": "webp", ".avif": "avif", ".jxl": "jxl"}
#: Formats written 8-bit only (Pillow's encoders take 8-bit RGB); PNG and TIFF take 8 or 16.
EIGHT_BIT_ONLY = ("jpeg", "webp", "avif", "jxl")
#: Bit depths of an output image.
BIT_DEPTHS = (8, 16)

#: A sample at or above this fraction of the white level counts as clipped (left out of the
#: grey-world and auto-exposure statistics).
CLIP_FRACTION = 0.98


def choose(what: str, value: object, allowed: Iterable[str]) -> str:
    """``value`` if it is one of ``allowed``, else ValueError naming ``what`` and listing them."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
    return value  # type: ignore[return-value]


def bits_problem(kind: str, bits: int) -> str | None:
    """Why format ``kind`` cannot be written with ``bits`` per sample (one phrase), or None."""
    if kind in EIGHT_BIT_ONLY and bits != 8:
        return f"{kind.upper()} is 8-bit only"
    if bits not in BIT_DEPTHS:
        return f"must be 8 or 16, got {bits!r}"
    return None


def clip_level(white: float) -> float:
    """The level at and above which a sample of white level ``white`` counts as clipped."""
    return CLIP_FRACTION * white
