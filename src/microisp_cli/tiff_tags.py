"""The tags of a TIFF-based RAW file, read with tifffile before LibRaw (which does not say what it
skipped): the tags themselves (:func:`tiff_tags`), the colours of its CFAPattern
(:func:`cfa_letters`), and whether its uncompressed pixel data is short (:func:`short_pixel_block`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

#: TIFF tags that make a TIFF-based file a camera RAW: Make, DNGVersion, CFAPattern.
CAMERA_TAGS = (271, 50706, 33422)
_T_CFA_PATTERN, _T_CFA_PLANE_COLOR = 33422, 50710
#: DNG CFAPlaneColor codes.
_PLANE_COLOURS = "RGBCMYW"


def tiff_tags(path: Path) -> dict[int, object] | None:
    """The tags of a TIFF-based file's first IFD, updated with those of the first SubIFD that
    holds a CFA (a DNG's raw image); None when it is not a TIFF that tifffile can parse (LibRaw
    then decides). Never prints: tifffile's log messages and warnings are silenced."""
    import logging

    import tifffile

    log = logging.getLogger("tifffile")
    disabled, log.disabled = log.disabled, True
    try:
        with warnings.catch_warnings(), tifffile.TiffFile(path) as tif:
            warnings.simplefilter("ignore")
            page = tif.pages.first
            tags = {tag.code: tag.value for tag in page.tags}
            for sub in (page.pages or [])[:8]:
                if _T_CFA_PATTERN in sub.tags:
                    tags.update({tag.code: tag.value for tag in sub.tags})
                    break
            return tags
    except Exception:  # tifffile raises many kinds on files that are not (valid) TIFF
        return None
    finally:
        log.disabled = disabled


def cfa_letters(tags: dict[int, object]) -> str | None:
    """The colours of the file's CFAPattern (``RGCB``...), through its CFAPlaneColor."""
    pattern, planes = tags.get(_T_CFA_PATTERN), tags.get(_T_CFA_PLANE_COLOR, b"\0\1\2")
    if not isinstance(pattern, bytes) or not isinstance(planes, bytes):
        return None
    colour = [_PLANE_COLOURS[c] if c < len(_PLANE_COLOURS) else "?" for c in planes]
    return "".join(colour[i] if i < len(colour) else "?" for i in pattern)


def _first(value) -> int | None:
    value = value[0] if isinstance(value, (tuple, list)) and value else value
    return int(value) if isinstance(value, int) else None


def short_pixel_block(tags: dict[int, object]) -> str | None:
    """Why the uncompressed pixel data is short (a strip or tile whose byte count is less than
    its rows need), from the raw image's TIFF tags; None when it is not, or cannot be told."""
    bits, width, height = _first(tags.get(258)), _first(tags.get(256)), _first(tags.get(257))
    samples = _first(tags.get(277, 1)) or 1
    if _first(tags.get(259, 1)) != 1 or not (bits and width and height):
        return None
    if 325 in tags and 322 in tags and 323 in tags:
        kind, counts = "tile", tags[325]
        tile_width, tile_length = _first(tags[322]), _first(tags[323])
        if not (tile_width and tile_length):
            return None
        needed = [-(-tile_width * samples * bits // 8) * tile_length] * len(counts)
    elif 279 in tags:
        kind, counts = "strip", tags[279]
        rows = _first(tags.get(278)) or height
        line = -(-width * samples * bits // 8)
        needed = [line * max(0, min(rows, height - i * rows)) for i in range(len(counts))]
    else:
        return None
    counts = counts if isinstance(counts, (tuple, list)) else (counts,)
    for i, (count, need) in enumerate(zip(counts, needed)):
        if isinstance(count, int) and count < need:
            return (f"{kind} {i + 1} of {len(counts)} of the pixel data holds {count} of the {need} bytes "
                    "it needs: that part of the image shows other data (garbage)")
    return None
