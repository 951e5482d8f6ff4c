"""Malformed files on purpose, for the robustness tests and the fuzz campaign
(``benchmarks/fuzz_raw.py``): a minimal TIFF IFD walker and in-place patcher (:func:`parse_tiff`,
:func:`put`, :func:`set_field`, :func:`patch_tag`) and raw ``.npz`` archives (:func:`npz_bytes`).
"""

from __future__ import annotations

import dataclasses
import io
import struct
import zipfile
from pathlib import Path

import numpy as np

# --- a minimal TIFF IFD walker and patcher ------------------------------------------------------
TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
TYPE_FORMATS = {1: "B", 3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 11: "f", 12: "d", 13: "I"}
SUB_IFD_TAGS = (330, 34665)  # SubIFDs, Exif

T_WIDTH, T_LENGTH, T_BITS, T_COMPRESSION, T_PHOTOMETRIC = 256, 257, 258, 259, 262
T_STRIP_OFFSETS, T_ORIENTATION, T_SAMPLES, T_ROWS_PER_STRIP, T_STRIP_BYTES = 273, 274, 277, 278, 279
T_PLANAR, T_TILE_WIDTH, T_TILE_LENGTH, T_TILE_OFFSETS, T_TILE_BYTES = 284, 322, 323, 324, 325
T_CFA_DIM, T_CFA_PATTERN = 33421, 33422
T_BLACK_DIM, T_BLACK, T_WHITE = 50713, 50714, 50717
T_CROP_ORIGIN, T_CROP_SIZE, T_ACTIVE_AREA = 50719, 50720, 50829
T_MATRIX1, T_MATRIX2, T_CALIBRATION1, T_ANALOG, T_NEUTRAL = 50721, 50722, 50723, 50727, 50728
RATIONAL_TAGS = (T_MATRIX1, T_MATRIX2, T_CALIBRATION1, T_ANALOG, T_NEUTRAL, T_BLACK, 50730, 50731)


@dataclasses.dataclass
class Entry:
    pos: int  # offset of the 12-byte entry
    tag: int
    type: int
    count: int
    data_pos: int  # where its values are (inline or at the offset)


@dataclasses.dataclass
class Tiff:
    endian: str  # "<" or ">"
    entries: list[Entry]
    ifds: list[int]  # offsets of the IFDs found
    meta_end: int  # end of the furthest IFD entry or out-of-line value below the pixel data

    def find(self, *tags: int) -> list[Entry]:
        return [e for e in self.entries if e.tag in tags]


def parse_tiff(data: bytes) -> Tiff | None:
    """IFD0 chain, SubIFDs and the Exif IFD of a classic TIFF; None when it is not one."""
    if data[:4] == b"II*\0":
        endian = "<"
    elif data[:4] == b"MM\0*":
        endian = ">"
    else:
        return None
    u16 = lambda p: struct.unpack_from(endian + "H", data, p)[0]  # noqa: E731
    u32 = lambda p: struct.unpack_from(endian + "I", data, p)[0]  # noqa: E731
    entries: list[Entry] = []
    ifds: list[int] = []
    todo = [u32(4)]
    meta_end = 8
    while todo and len(ifds) < 64:
        offset = todo.pop(0)
        if offset in ifds or not 8 <= offset <= len(data) - 2:
            continue
        ifds.append(offset)
        n = u16(offset)
        if offset + 2 + 12 * n + 4 > len(data):
            continue
        for k in range(n):
            pos = offset + 2 + 12 * k
            tag, typ, count = u16(pos), u16(pos + 2), u32(pos + 4)
            size = TYPE_SIZES.get(typ, 1) * count
            data_pos = pos + 8 if size <= 4 else u32(pos + 8)
            entries.append(Entry(pos, tag, typ, count, data_pos))
            if size > 4 and data_pos + size <= len(data) and size < 65536:
                meta_end = max(meta_end, data_pos + size)
            if tag in SUB_IFD_TAGS and typ in (4, 13):
                todo += [u32(data_pos + 4 * j) for j in range(min(count, 8))
                         if data_pos + 4 * j + 4 <= len(data)]
        meta_end = max(meta_end, offset + 2 + 12 * n + 4)
        todo.append(u32(offset + 2 + 12 * n))
    pixels = [o for e in entries if e.tag in (T_STRIP_OFFSETS, T_TILE_OFFSETS)
              for o in tag_values(data, endian, e)]
    if pixels:
        first = min(pixels)
        if first > 8:
            meta_end = min(meta_end, first) if meta_end > first else meta_end
    return Tiff(endian, entries, ifds, meta_end)


def tag_values(data: bytes, endian: str, e: Entry) -> list[float]:
    """The values of entry ``e`` (empty when its type has no plain format or it is out of the file)."""
    fmt = TYPE_FORMATS.get(e.type)
    if fmt is None or e.count > 4096 or e.data_pos + TYPE_SIZES[e.type] * e.count > len(data):
        return []
    return list(struct.unpack_from(endian + fmt * e.count, data, e.data_pos))


def put(buf: bytearray, endian: str, e: Entry, index: int, value: float) -> None:
    """Write element ``index`` of entry ``e`` in its own type (rationals take (num, den) tuples)."""
    size = TYPE_SIZES.get(e.type, 1)
    pos = e.data_pos + index * size
    if pos + size > len(buf) or index >= max(e.count, 1):
        return
    if e.type in (5, 10):
        num, den = value if isinstance(value, tuple) else (int(value), 1)
        code = "I" if e.type == 5 else "i"
        struct.pack_into(endian + code + code, buf, pos, *_wrap(num, code), *_wrap(den, code))
    elif e.type in (11, 12):
        with np.errstate(over="ignore"):
            number = np.array(float(value), (endian + ("f4" if e.type == 11 else "f8")))
        buf[pos:pos + size] = number.tobytes()
    elif e.type in TYPE_FORMATS:
        code = TYPE_FORMATS[e.type]
        struct.pack_into(endian + code, buf, pos, *_wrap(int(value), code))
    else:
        buf[pos] = int(value) & 0xFF


def _wrap(value: int, code: str) -> tuple[int]:
    bits = struct.calcsize(code) * 8
    value = int(value) & ((1 << bits) - 1)
    if code.islower() and value >= 1 << (bits - 1):
        value -= 1 << bits
    return (value,)


def set_field(buf: bytearray, endian: str, e: Entry, *, tag: int | None = None, typ: int | None = None,
              count: int | None = None, offset: int | None = None) -> None:
    """Rewrite the entry itself: its tag code, type, count or value offset."""
    if tag is not None:
        struct.pack_into(endian + "H", buf, e.pos, tag & 0xFFFF)
    if typ is not None:
        struct.pack_into(endian + "H", buf, e.pos + 2, typ & 0xFFFF)
    if count is not None:
        struct.pack_into(endian + "I", buf, e.pos + 4, count & 0xFFFFFFFF)
    if offset is not None:
        struct.pack_into(endian + "I", buf, e.pos + 8, offset & 0xFFFFFFFF)


def patch_tag(path: str | Path, code: int, values, new_type: int | None = None) -> Path:
    """Overwrite the values of tag ``code`` of the first IFD that has it, in place (optionally
    retyping it first: the new type must take as many bytes as the old, ``SRATIONAL`` ->
    ``DOUBLE``); rationals take ``(numerator, denominator)`` pairs."""
    path = Path(path)
    buf = bytearray(path.read_bytes())
    tiff = parse_tiff(bytes(buf))
    if tiff is None or not tiff.find(code):
        raise ValueError(f"{path}: no TIFF tag {code}")
    entry = tiff.find(code)[0]
    if new_type is not None:
        set_field(buf, tiff.endian, entry, typ=new_type)
        entry = dataclasses.replace(entry, type=new_type)
    for index, value in enumerate(values):
        put(buf, tiff.endian, entry, index, value)
    path.write_bytes(bytes(buf))
    return path


# --- archives -----------------------------------------------------------------------------------
def npz_bytes(members: dict[str, bytes]) -> bytes:
    """A ``.npz`` (zip) archive of ``members``, name -> raw bytes, written as given."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()
