"""Decoding: a RAW file or a sensor dump -> a validated :class:`Mosaic` (:func:`decode`).

Three kinds of input:

- camera RAW files in any format LibRaw reads (DNG, CR2, NEF, ARW, RAF, RW2, KDC, ...), through
  rawpy;
- headerless sensor dumps: little-endian uint16 samples, one per pixel, row after row, described
  by a :class:`DumpFormat` (``--raw-size WxH --cfa RGGB --bits-per-sample 14`` in the CLI);
- ``.npy`` mosaics: a 2-D Bayer array, or a packed (H/2, W/2, 4) array whose channels are the
  sites of one RGGB-ordered 2x2 cell (``R``, ``Gr``, ``Gb``, ``B`` = ``[0::2, 0::2]``,
  ``[0::2, 1::2]``, ``[1::2, 0::2]``, ``[1::2, 1::2]``), as phone RAW data sets store them.

Metadata and its fallbacks (documented in docs/cli.md):

- white balance (:mod:`white_balance`): the as-shot gains; else LibRaw's daylight gains; else
  grey-world gains measured on the mosaic (a gain set counts as missing when R and B are 0 or all
  are equal). A gain set that is present but non-finite, not positive or outside
  ``defaults.WB_GAIN_LIMITS`` is skipped; why the as-shot gains were not used is kept
  (``Mosaic.wb_problem``) for the one :class:`WhiteBalanceFallback` line the develop's
  white-balance stage says (not decode: the develop may be asked for another white balance);
  grey-world gains are clipped to those limits; LibRaw's daylight gains are kept
  (``Mosaic.daylight_wb``) for ``--wb daylight`` and colour temperatures;
- camera -> sRGB matrix: the file's DNG ColorMatrix as LibRaw turns it into ``color_matrix``;
  else LibRaw's table for the camera (``rgb_xyz_matrix``); else the identity. A matrix that is
  non-finite, singular or extreme (see :func:`matrix_problem`) is skipped with a warning, and a
  camera file without any matrix gets one too;
- orientation: LibRaw's ``sizes.flip`` (0 for dumps and ``.npy``).

Hostile files (docs/robustness.md): a frame larger than ``max_megapixels`` is refused from its
header, before any pixel memory is allocated; black levels at or above the white level are an
:class:`InputError`.

This module is the entry point (which reader a file goes to) and the public names; the pieces:
``mosaic`` (:class:`Mosaic`, :class:`DumpFormat`, the checks every input passes, grey world),
``dumps`` (dumps and ``.npy``) and ``camera_raw`` (LibRaw, the only rawpy import).
"""

from __future__ import annotations

from pathlib import Path

from . import defaults
from .bayer import CFA_PATTERNS
from .camera_raw import read_raw, read_thumbnail
from .dumps import check_npy_header, read_dump, read_npy
from .errors import InputError
from .mosaic import FLIPS, DumpFormat, Mosaic, check_file, check_megapixels, grey_world, parse_size
from .tiff_tags import tiff_tags

__all__ = [
    "CFA_PATTERNS", "DUMP_EXTENSIONS", "FLIPS", "HEADERLESS_EXTENSIONS", "INPUT_EXTENSIONS",
    "RAW_EXTENSIONS", "DumpFormat", "Mosaic", "check_file", "check_megapixels", "check_npy_header",
    "decode", "grey_world", "has_raw_header", "parse_size", "read_dump", "read_npy", "read_raw",
    "read_thumbnail", "tiff_tags",
]


#: File extensions LibRaw reads (lower case, with the dot); directories are scanned for these.
RAW_EXTENSIONS = frozenset(
    "." + e for e in (
        "3fr ari arw bay cap cr2 cr3 crw data dcr dcs dng drf eip erf fff gpr iiq k25 kdc mdc "
        "mef mos mrw nef nrw orf pef ptx pxn r3d raf raw rw2 rwl rwz sr2 srf srw sti x3f"
    ).split()
)
#: Extensions of sensor dumps (besides ``.raw``, which is also a camera format).
DUMP_EXTENSIONS = frozenset({".npy", ".bin", ".u16"})
INPUT_EXTENSIONS = RAW_EXTENSIONS | DUMP_EXTENSIONS


# --- entry point ------------------------------------------------------------------------------
def decode(path: str | Path, dump: DumpFormat | None = None,
           max_megapixels: float | None = defaults.MAX_MEGAPIXELS) -> Mosaic:
    """Read ``path`` into a :class:`Mosaic`.

    ``.npy`` files are read as mosaics; with ``dump.size`` set, any other file is read as a
    headerless uint16 dump; everything else goes to LibRaw.
    ``max_megapixels``: largest frame accepted (None: no limit), checked against the size the
    file declares before its pixels are read.
    Raises :class:`InputError` (unreadable, empty, truncated, not a RAW),
    :class:`ImageTooLargeError` (over ``max_megapixels``) or :class:`UnsupportedSensorError`
    (not a 2x2 Bayer mosaic). Fallbacks for unusable metadata are reported as
    :class:`MicroISPWarning` warnings, but for the white balance's (module doc).
    """
    path = Path(path)
    head = check_file(path)
    dump = dump or DumpFormat()
    if path.suffix.lower() == ".npy":
        return read_npy(path, dump, max_megapixels)
    if not has_raw_header(head):
        if dump.size is not None:
            return read_dump(path, dump, max_megapixels)
        if path.suffix.lower() in HEADERLESS_EXTENSIONS:
            raise InputError("no file header: a headerless sensor dump needs --raw-size WxH "
                             "(with --cfa and --bits-per-sample)")
    return read_raw(path, max_megapixels)


#: Extensions under which sensor dumps come; without a known header these are never guessed by
#: LibRaw (it would pick a camera by the file size alone).
HEADERLESS_EXTENSIONS = frozenset({".raw", ".bin", ".u16"})

#: Leading bytes of the RAW containers LibRaw reads (TIFF-based, Panasonic, Olympus, Fuji, Canon
#: CRW/CR3, Minolta, Foveon, ARRI, Phase One, Sinar, RED, ...).
_MAGICS = (b"II*\0", b"MM\0*", b"IIU\0", b"IIRO", b"IIRS", b"FUJIFILM", b"ARRI", b"FOVb",
           b"\0MRM", b"IIII", b"RIFF", b"\xff\xd8", b"BR", b"RED", b"PWAD", b"\0\0\0\x18ftyp",
           b"\0\0\0\x1cftyp", b"\0\0\0 ftyp", b"ftyp")


def has_raw_header(head: bytes) -> bool:
    """Whether ``head`` (a file's first bytes) starts like a RAW container LibRaw knows."""
    return head.startswith(_MAGICS) or head[6:14] == b"HEAPCCDR" or head[4:8] == b"ftyp"
