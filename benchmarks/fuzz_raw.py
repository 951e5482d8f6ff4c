"""Fuzz campaign: mutated DNGs through the library's ``develop_to_file``, each in a sandboxed worker.

    python benchmarks/fuzz_raw.py --cases 1000 --seed 1 --workers 2 --out runs/fuzz

What it does, deterministically for a given ``--seed`` (case ``i`` draws from its own random stream):

1. Seed files: small synthetic DNGs written with :func:`microisp_cli.training.dng.write_dng` (all four
   CFA orders, with and without ColorMatrix1/AsShotNeutral, 10 to 16 bits, odd and even sizes) and
   the real DNGs of ``../shared/data/raw`` when present.
2. Mutations, one kind per case in rotation (``KINDS``): bit flips (metadata or anywhere), truncation,
   random byte runs, and TIFF tag corruption done in place by a small IFD walker: huge / zero frame
   sizes, strip and tile offsets, bit depth and compression, CFARepeatPatternDim and CFAPattern,
   black and white levels (zero, inverted, huge), NaN / inf / zero-denominator rationals (also as
   tags retyped to DOUBLE or FLOAT holding NaN and inf), absurd and singular colour matrices, absurd
   AsShotNeutral, IFD loops and bogus counts, orientation and crop tags; plus metadata that is
   absurd but well-formed, written directly by ``write_dng``; and stacks of 2 to 4 of these.
3. Each case runs in a long-lived worker process (``--workers``, default 1) under
   ``RLIMIT_AS`` (``--memory-mb``): TensorFlow is imported once per worker, the case runs
   ``develop_to_file`` into a folder of its own, and the worker answers one JSON line. A case that
   does not answer within ``--timeout`` seconds is a *hang*; a worker that dies is a *signal* (or an
   *exit*) attributed to the case it was running; either way the worker is restarted.

4. With ``--kinds``, also (or only) the classes of :mod:`fuzz_classes`: hostile file names,
   special files, ``.npy`` headers, weights manifests, ``.tflite`` bytes, option values and
   same-file outputs, each a ``microisp develop`` command line run in the worker in-process and
   judged by the contract (exit code 0/1/2, no traceback, every line of a known form with names
   escaped, inputs unchanged, no files left behind).

Outcomes per case: ``developed``, ``typed`` (a :class:`MicroISPError` subclass, message on one
line), ``traceback`` (any other exception), ``multiline`` (typed, but the message spans lines),
``signal``, ``exit``, ``hang``; plus ``leftover`` when a failed case left files in its output folder.
The report (JSON, and a Markdown table with ``--markdown``) counts them per mutation kind.
Files of cases that were not a developed or typed outcome are kept under ``OUT/repro/``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import os
import random
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_classes import CLI_KINDS, Assets, digest, make_cli_case  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED_RAW = ROOT.parent / "shared" / "data" / "raw"

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
              for o in _values(data, endian, e)]
    if pixels:
        first = min(pixels)
        if first > 8:
            meta_end = min(meta_end, first) if meta_end > first else meta_end
    return Tiff(endian, entries, ifds, meta_end)


def _values(data: bytes, endian: str, e: Entry) -> list[float]:
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


# --- seeds --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Seed:
    name: str
    data: bytes
    tiff: Tiff
    weight: float  # relative chance of being picked (large real files cost seconds per case)


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = np.stack([0.2 + 0.6 * x, 0.15 + 0.5 * y, 0.3 + 0.3 * (x * y)], -1)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1)


def synthetic_dng(path: Path, rng: np.random.Generator, cfa: str, colour: bool, **over) -> Path:
    """A small valid DNG made with write_dng; ``over`` replaces any of its arguments."""
    from microisp_cli.bayer import mosaic_rggb
    from microisp_cli.training.dng import write_dng

    h, w = over.pop("shape", (int(rng.integers(40, 180)), int(rng.integers(40, 180))))
    bits = int(rng.choice([10, 12, 14, 16]))
    white = 2 ** bits - 1
    black = int(rng.integers(0, 2 ** (bits - 4)))
    mosaic = np.round(mosaic_rggb(_scene(rng, h, w), cfa) * (white - black) + black).astype(np.uint16)
    args = dict(cfa=cfa, black_level=black, white_level=white,
                orientation=int(rng.choice([1, 3, 6, 8])))
    if colour:
        args["color_matrix"] = np.array([[0.65, -0.12, -0.09], [-0.38, 1.16, 0.25], [-0.08, 0.19, 0.65]])
        args["as_shot_neutral"] = [float(rng.uniform(0.35, 0.7)), 1.0, float(rng.uniform(0.45, 0.9))]
    args.update(over)
    return write_dng(path, mosaic, **args)


def make_seeds(folder: Path, seed: int, real: bool) -> list[Seed]:
    from microisp_cli.bayer import CFA_PATTERNS

    rng = np.random.default_rng([seed, 0xD46])
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[tuple[Path, float]] = []
    for cfa in CFA_PATTERNS:
        for colour in (True, False):
            for k in range(2):
                p = synthetic_dng(folder / f"synthetic_{cfa}_{'colour' if colour else 'bare'}_{k}.dng",
                                  rng, cfa, colour)
                paths.append((p, 1.0))
    if real and SHARED_RAW.is_dir():
        for p in sorted(SHARED_RAW.glob("*.dng")) + sorted(SHARED_RAW.glob("bad/*.dng")):
            weight = 0.5 if "bad" in p.parts else 2.0
            paths.append((p, weight))
    seeds = []
    for p, weight in paths:
        data = p.read_bytes()
        tiff = parse_tiff(data)
        if tiff is not None:
            name = p.name if p.parent == folder else f"real:{p.relative_to(SHARED_RAW)}"
            seeds.append(Seed(name, data, tiff, weight))
    return seeds


# --- mutations ----------------------------------------------------------------------------------
HUGE = (0, 1, 3, 65535, 65536, 100_000, 2 ** 31 - 1, 2 ** 32 - 1)


def m_bitflip_meta(buf, tiff, rng):
    end = max(16, tiff.meta_end)
    n = rng.randint(1, 16)
    for _ in range(n):
        pos = rng.randrange(0, min(end, len(buf)))
        buf[pos] ^= 1 << rng.randrange(8)
    return buf, f"{n} bit flips in the first {end} bytes"


def m_bitflip_any(buf, tiff, rng):
    n = rng.choice([1, 8, 64, 512])
    for _ in range(n):
        pos = rng.randrange(len(buf))
        buf[pos] ^= 1 << rng.randrange(8)
    return buf, f"{n} bit flips anywhere"


def m_truncate(buf, tiff, rng):
    if rng.random() < 0.5:
        cut = rng.randrange(1, max(2, tiff.meta_end + 64))
    else:
        cut = rng.randrange(1, len(buf))
    return buf[:cut], f"truncated to {cut} of {len(buf)} bytes"


def m_bytes(buf, tiff, rng):
    end = max(16, tiff.meta_end)
    pos = rng.randrange(0, min(end, len(buf)))
    n = rng.randint(1, 64)
    fill = rng.choice([b"\x00", b"\xff", b"\x7f", b"\x80", None])
    chunk = bytes(rng.randrange(256) for _ in range(n)) if fill is None else fill * n
    buf[pos:pos + n] = chunk
    return buf, f"{n} bytes at {pos} set to {'random' if fill is None else fill.hex()}"


def _pick(tiff, rng, *tags):
    found = tiff.find(*tags)
    return rng.choice(found) if found else None


def m_dims(buf, tiff, rng):
    both = [e for e in tiff.find(T_WIDTH, T_LENGTH) if e.type in (3, 4)]
    if len(both) >= 2 and rng.random() < 0.3:  # width and height: a frame of hundreds of megapixels
        value = rng.choice([15000, 20000, 40000, 65535])
        for e in both:
            put(buf, tiff.endian, e, 0, value)
        return buf, f"width and height = {value}"
    e = _pick(tiff, rng, T_WIDTH, T_LENGTH, T_TILE_WIDTH, T_TILE_LENGTH)
    if e is None:
        return None
    old = _values(buf, tiff.endian, e)
    value = rng.choice(HUGE + (2 * int(old[0]) if old else 4, int(old[0]) + 1 if old else 5))
    if e.type == 3:
        value = min(value, 65535)
    put(buf, tiff.endian, e, 0, value)
    return buf, f"tag {e.tag} = {value}"


def m_strips(buf, tiff, rng):
    e = _pick(tiff, rng, T_STRIP_OFFSETS, T_STRIP_BYTES, T_ROWS_PER_STRIP, T_TILE_OFFSETS, T_TILE_BYTES)
    if e is None:
        return None
    value = rng.choice([0, 1, len(buf) - 1, len(buf), len(buf) + 4096, 2 ** 31, 2 ** 32 - 1,
                        len(buf) // 2])
    put(buf, tiff.endian, e, 0, min(value, 65535) if e.type == 3 else value)
    return buf, f"tag {e.tag} = {value}"


def m_format(buf, tiff, rng):
    choices = {T_BITS: [0, 1, 7, 8, 12, 16, 17, 24, 32, 255], T_COMPRESSION: [0, 2, 6, 7, 8, 99, 34892, 65535],
               T_SAMPLES: [0, 2, 3, 4, 255], T_PHOTOMETRIC: [0, 1, 2, 6, 34892, 65535], T_PLANAR: [0, 2, 9]}
    e = _pick(tiff, rng, *choices)
    if e is None:
        return None
    value = rng.choice(choices[e.tag])
    put(buf, tiff.endian, e, 0, value)
    return buf, f"tag {e.tag} = {value}"


def m_cfa_dims(buf, tiff, rng):
    e = _pick(tiff, rng, T_CFA_DIM)
    if e is None:
        return None
    dims = rng.choice([(0, 0), (1, 1), (1, 2), (2, 1), (2, 4), (3, 3), (6, 6), (8, 8), (16, 16),
                       (255, 255), (65535, 65535), (0, 2)])
    for i, v in enumerate(dims):
        put(buf, tiff.endian, e, i, v)
    return buf, f"CFARepeatPatternDim = {dims}"


def m_cfa_pattern(buf, tiff, rng):
    e = _pick(tiff, rng, T_CFA_PATTERN)
    if e is None:
        return None
    if rng.random() < 0.3:
        count = rng.choice([0, 1, 3, 36, 2 ** 32 - 1])
        set_field(buf, tiff.endian, e, count=count)
        return buf, f"CFAPattern count = {count}"
    values = rng.choice([(0, 0, 0, 0), (1, 1, 1, 1), (0, 0, 2, 2), (3, 3, 3, 3), (0, 1, 3, 2), (4, 5, 6, 1),
                         (255, 1, 1, 2), (2, 1, 1, 9), tuple(rng.randrange(256) for _ in range(4))])
    for i, v in enumerate(values):
        put(buf, tiff.endian, e, i, v)
    return buf, f"CFAPattern = {values}"


def m_levels(buf, tiff, rng):
    e = _pick(tiff, rng, T_BLACK, T_WHITE, T_BLACK_DIM)
    if e is None:
        return None
    if e.tag == T_BLACK_DIM:
        dims = rng.choice([(0, 0), (1, 1), (65535, 65535), (3, 7)])
        for i, v in enumerate(dims):
            put(buf, tiff.endian, e, i, v)
        return buf, f"BlackLevelRepeatDim = {dims}"
    white = [_values(buf, tiff.endian, w) for w in tiff.find(T_WHITE)]
    w0 = int(white[0][0]) if white and white[0] else 4095
    value = rng.choice([0, 1, w0 - 1, w0, w0 + 1, 65535, 2 ** 31, 2 ** 32 - 1])
    if e.type in (5, 10) and rng.random() < 0.4:
        value = rng.choice([(0, 0), (1, 0), (w0, 0)])
    for i in range(max(1, min(e.count, 16))):
        put(buf, tiff.endian, e, i, value)
    return buf, f"tag {e.tag} = {value}"


def m_rational_nan(buf, tiff, rng):
    e = _pick(tiff, rng, *RATIONAL_TAGS)
    if e is None or e.type not in (5, 10, 11, 12):
        return None
    if e.type in (5, 10) and rng.random() < 0.5:
        set_field(buf, tiff.endian, e, typ=12)  # same 8 bytes per value: DOUBLE
        e = dataclasses.replace(e, type=12)
    elif e.type in (5, 10) and rng.random() < 0.3:
        set_field(buf, tiff.endian, e, typ=11)  # FLOAT, 4 bytes: the data now reads as other numbers
        e = dataclasses.replace(e, type=11)
    specials = [float("nan"), float("inf"), float("-inf"), 1e308, 5e-324, 0.0] if e.type in (11, 12) \
        else [(0, 0), (1, 0), (-1, 0), (2 ** 31 - 1, 1), (1, 2 ** 31 - 1)]
    which = rng.choice(["one", "all"])
    indices = [rng.randrange(max(1, e.count))] if which == "one" else range(max(1, min(e.count, 16)))
    value = rng.choice(specials)
    for i in indices:
        put(buf, tiff.endian, e, i, value)
    return buf, f"tag {e.tag} type {e.type}: {which} = {value}"


def m_matrix(buf, tiff, rng):
    e = _pick(tiff, rng, T_MATRIX1, T_MATRIX2, T_CALIBRATION1)
    if e is None or e.type not in (5, 10):
        return None
    eye = [1, 0, 0, 0, 1, 0, 0, 0, 1]
    kind = rng.choice(["zero", "rank1", "rank2", "huge", "tiny", "negative", "random"])
    if kind == "zero":
        values = [0] * 9
    elif kind == "rank1":
        row = [rng.randint(-20000, 20000) for _ in range(3)]
        values = row * 3
    elif kind == "rank2":
        a = [rng.randint(-20000, 20000) for _ in range(3)]
        b = [rng.randint(-20000, 20000) for _ in range(3)]
        values = a + b + [x + y for x, y in zip(a, b)]
    elif kind == "huge":
        values = [rng.choice([2 ** 31 - 1, -(2 ** 31)]) * v for v in eye]
    elif kind == "tiny":
        values = [(v, 2 ** 31 - 1) for v in eye]
    elif kind == "negative":
        values = [-10000 * v for v in eye]
    else:
        values = [rng.randint(-(2 ** 31), 2 ** 31 - 1) for _ in range(9)]
    for i, v in enumerate(values[:e.count]):
        put(buf, tiff.endian, e, i, v if isinstance(v, tuple) else (v, 10000))
    return buf, f"tag {e.tag} {kind}"


def m_neutral(buf, tiff, rng):
    e = _pick(tiff, rng, T_NEUTRAL, T_ANALOG)
    if e is None or e.type not in (5, 10):
        return None
    kind = rng.choice(["zero", "one-zero", "negative", "extreme", "equal", "above-one", "zero-den"])
    values = {"zero": [(0, 1)] * 3, "one-zero": [(1, 1), (0, 1), (1, 2)],
              "negative": [(-1, 2), (1, 1), (1, 2)], "extreme": [(1, 1_000_000), (1, 1), (1_000_000, 1)],
              "equal": [(1, 1)] * 3, "above-one": [(7, 1), (1, 1), (3, 1)],
              "zero-den": [(1, 0), (1, 1), (0, 0)]}[kind]
    if kind == "negative":
        set_field(buf, tiff.endian, e, typ=10)
        e = dataclasses.replace(e, type=10)
    for i, v in enumerate(values[:e.count]):
        put(buf, tiff.endian, e, i, v)
    return buf, f"tag {e.tag} {kind}"


def m_structure(buf, tiff, rng):
    endian = tiff.endian
    kind = rng.choice(["next-self", "next-eof", "sub-self", "first-ifd", "entry-count", "type",
                       "count", "offset", "duplicate"])
    if kind in ("next-self", "next-eof"):
        ifd = rng.choice(tiff.ifds)
        n = struct.unpack_from(endian + "H", buf, ifd)[0]
        pos = ifd + 2 + 12 * n
        if pos + 4 > len(buf):
            return None
        struct.pack_into(endian + "I", buf, pos, ifd if kind == "next-self" else len(buf) + 100)
    elif kind == "sub-self":
        e = _pick(tiff, rng, *SUB_IFD_TAGS)
        if e is None:
            e = rng.choice(tiff.entries)
            ifd = tiff.ifds[0]
            set_field(buf, endian, e, tag=330, typ=4, count=1, offset=ifd)
        else:
            set_field(buf, endian, e, offset=tiff.ifds[0])
    elif kind == "first-ifd":
        struct.pack_into(endian + "I", buf, 4, rng.choice([0, 4, len(buf) - 1, len(buf) + 8, 2 ** 32 - 1]))
    elif kind == "entry-count":
        ifd = rng.choice(tiff.ifds)
        struct.pack_into(endian + "H", buf, ifd, rng.choice([0, 1, 0x7FFF, 0xFFFF]))
    else:
        e = rng.choice(tiff.entries)
        if kind == "type":
            set_field(buf, endian, e, typ=rng.choice([0, 2, 7, 13, 14, 99, 0xFFFF]))
        elif kind == "count":
            set_field(buf, endian, e, count=rng.choice([0, 2 ** 16, 2 ** 28, 2 ** 31, 2 ** 32 - 1]))
        elif kind == "offset":
            set_field(buf, endian, e, offset=rng.choice([0, 8, len(buf) - 2, len(buf) + 8, 2 ** 32 - 1]))
        else:
            other = rng.choice(tiff.entries)
            set_field(buf, endian, e, tag=other.tag)
        return buf, f"{kind} of tag {e.tag}"
    return buf, kind


def m_crop_orient(buf, tiff, rng):
    e = _pick(tiff, rng, T_ORIENTATION, T_CROP_ORIGIN, T_CROP_SIZE, T_ACTIVE_AREA)
    if e is None:
        return None
    if e.tag == T_ORIENTATION:
        value = rng.choice([0, 2, 4, 5, 7, 9, 255, 65535])
        put(buf, tiff.endian, e, 0, value)
        return buf, f"Orientation = {value}"
    values = rng.choice([(0, 0, 0, 0), (100000, 100000, 1, 1), (10, 10, 5, 5), (0, 0, 65535, 65535),
                         (1, 1, 3, 3), (2 ** 31, 2 ** 31, 2 ** 32 - 1, 2 ** 32 - 1)])
    for i, v in enumerate(values[:e.count]):
        put(buf, tiff.endian, e, i, v if e.type not in (5, 10) else (v, 1))
    return buf, f"tag {e.tag} = {values[:e.count]}"


#: Metadata that is absurd but well-formed, written directly (no byte mutation).
SYNTHETIC_CASES = {
    "singular matrix": dict(color_matrix=np.ones((3, 3))),
    "zero matrix": dict(color_matrix=np.zeros((3, 3))),
    "huge matrix": dict(color_matrix=np.eye(3) * 1e6),
    "tiny matrix": dict(color_matrix=np.eye(3) * 1e-6),
    "negative matrix": dict(color_matrix=-np.eye(3)),
    "rows summing to zero": dict(color_matrix=np.array([[1, -1, 0], [0, 1, -1], [-1, 0, 1.0]])),
    "zero neutral": dict(as_shot_neutral=[0, 0, 0]),
    "extreme neutral": dict(as_shot_neutral=[1e-6, 1, 1e3]),
    "neutral above one": dict(as_shot_neutral=[5, 1, 9]),
    "one zero neutral": dict(as_shot_neutral=[0.5, 0, 0.5]),
    "black above white": dict(black_level=5000, white_level=4095),
    "black equals white": dict(black_level=4095, white_level=4095),
    "white zero": dict(white_level=0),
    "white one": dict(white_level=1, black_level=0),
    "per-site blacks inverted": dict(black_level=[4000, 10, 10, 5000], white_level=4095),
    "2x2 frame": dict(shape=(2, 2)),
    "3x5 frame": dict(shape=(3, 5)),
    "1x64 frame": dict(shape=(1, 64)),
    "2x1000 frame": dict(shape=(2, 1000)),
    "flat frame": dict(black_level=0, white_level=0),
}


def m_synthetic(rng, folder: Path):
    from microisp_cli.bayer import CFA_PATTERNS

    name = rng.choice(sorted(SYNTHETIC_CASES))
    over = dict(SYNTHETIC_CASES[name])
    cfa = rng.choice(list(CFA_PATTERNS))
    colour = rng.random() < 0.5 or "matrix" in name or "neutral" in name
    nprng = np.random.default_rng(rng.randrange(2 ** 32))
    path = folder / "synthetic.dng"
    try:
        synthetic_dng(path, nprng, cfa, colour, **over)
    except ValueError:
        return None
    return bytearray(path.read_bytes()), f"{name}, {cfa}"


MUTATORS = {
    "bitflip-meta": m_bitflip_meta, "bitflip-any": m_bitflip_any, "truncate": m_truncate,
    "bytes": m_bytes, "dims": m_dims, "strips": m_strips, "format": m_format,
    "cfa-dims": m_cfa_dims, "cfa-pattern": m_cfa_pattern, "levels": m_levels,
    "rational-nan": m_rational_nan, "matrix": m_matrix, "neutral": m_neutral,
    "structure": m_structure, "crop-orient": m_crop_orient,
}
KINDS = list(MUTATORS) + ["synthetic-meta", "stacked"]


def make_case(index: int, seed: int, seeds: list[Seed], folder: Path,
              kind: str | None = None) -> tuple[str, str, str, bytes]:
    """(kind, seed name, description, file bytes) of case ``index``; the same for the same seed.
    ``kind``: the mutation kind (None: ``KINDS`` in rotation)."""
    rng = random.Random(f"{seed}:{index}")
    kind = kind or KINDS[index % len(KINDS)]
    if kind == "synthetic-meta":
        for _ in range(10):
            made = m_synthetic(rng, folder)
            if made is not None:
                return kind, "write_dng", made[1], bytes(made[0])
    names = rng.sample(list(MUTATORS), rng.randint(2, 4)) if kind == "stacked" else [kind]
    for _ in range(50):
        source = rng.choices(seeds, weights=[s.weight for s in seeds])[0]
        buf, done = bytearray(source.data), []
        for name in names:
            tiff = parse_tiff(bytes(buf)) or source.tiff
            if not tiff.ifds or not tiff.entries:
                continue
            try:
                result = MUTATORS[name](buf, tiff, rng)
            except (struct.error, OverflowError, IndexError, ValueError):
                result = None  # this mutation does not apply to this file: draw again
            if result is not None:
                buf = result[0]
                done.append(f"{name}: {result[1]}" if kind == "stacked" else result[1])
        if done:
            return kind, source.name, "; ".join(done), bytes(buf)
    raise RuntimeError(f"no seed fits mutation {kind}")


# --- judging a command line (the CLI classes) --------------------------------------------------
#: The lines ``microisp develop`` may print on stderr: per-file lines, the summary, click's usage
#: error (three lines), the interruption line.
LINE_FORMS = [r"(error|warning): \S.*", r"skipped \S.*", r"\d+ done, \d+ skipped, \d+ failed",
              r"\S.* -> \S.* \((wrote|replaced), [\d.]+ s\)", r"Usage: .*", r"Try '.*' for help\.",
              r"Error: .*", r"(interrupted|terminated): .*"]
IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")


def _listing(folder: str) -> set[str]:
    found = set()
    for root, dirs, files in os.walk(os.fsencode(folder)):
        found.update(os.fsdecode(os.path.join(root, n)) for n in dirs + files)
    return found


def run_cli_case(job: dict) -> dict:
    """Run ``microisp`` with ``job["argv"]`` in this process and judge it by the contract."""
    import io
    import re
    import traceback

    from microisp_cli.cli.main import cli

    before, listed = digest(job["inputs"]), _listing(job["cwd"])
    err, out = io.StringIO(), io.TextIOWrapper(io.BytesIO())
    saved = sys.stdout, sys.stderr, os.getcwd()
    sys.stdout, sys.stderr = out, err
    os.chdir(job["cwd"])
    tb = None
    try:
        cli.main(args=job["argv"], prog_name="microisp", standalone_mode=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - any other exception is the finding
        code, tb = None, traceback.format_exc()[-4000:]
    finally:
        out.flush()
        sys.stdout, sys.stderr = saved[0], saved[1]
        os.chdir(saved[2])
    text = err.getvalue()
    lines = [ln for ln in text.split("\n") if ln.strip()]
    shown = [ln for ln in lines if ln.startswith(("error:", "Error:", "skipped"))] or lines or [""]
    answer: dict[str, object] = {"exit": code, "message": shown[0][:300]}
    new = sorted(_listing(job["cwd"]) - listed)
    images = [p for p in new if p.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(p)]
    done = [int(m.group(1)) for ln in lines for m in [re.fullmatch(r"(\d+) done, .*", ln)] if m]
    left = [p for p in new if os.path.basename(p).startswith(".") or p.endswith(".part")
            or (os.path.isfile(p) and p not in images)]
    if len(images) != (done[-1] if done else 0):
        left += images
    if tb is not None or "Traceback" in text:
        answer.update(outcome="traceback", error="traceback", traceback=tb or text[-4000:])
    elif code not in (0, 1, 2):
        answer.update(outcome="exit", error=f"exit status {code}")
    elif any(c in text for c in "\x1b\r\x07\x7f") or not all(c.isprintable() or c == "\n" for c in text):
        answer.update(outcome="unescaped", error="raw control characters in the output")
    elif any(not any(re.fullmatch(form, ln) for form in LINE_FORMS) for ln in lines):
        stray = next(ln for ln in lines if not any(re.fullmatch(form, ln) for form in LINE_FORMS))
        answer.update(outcome="stray line", error=stray[:200])
    elif digest(job["inputs"]) != before:
        answer.update(outcome="input changed", error="an input file was changed or removed")
    else:
        answer.update(outcome="cli", error=f"exit {code}")
    if left:
        answer["leftover"] = left[:10]
    return answer


# --- the worker (a child process) ---------------------------------------------------------------
def worker_main(args: argparse.Namespace) -> None:
    import resource

    limit = args.memory_mb * 2 ** 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import inspect
    import traceback
    import warnings

    from microisp_cli.develop import develop_to_file, make_runner
    from microisp_cli.errors import MicroISPError
    from microisp_cli.weights import load_weights

    weights = load_weights()
    runner = make_runner(weights, threads=args.threads)
    extra = {}
    if "max_megapixels" in inspect.signature(develop_to_file).parameters and args.max_megapixels:
        extra["max_megapixels"] = args.max_megapixels
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    out.write(json.dumps({"ready": True}) + "\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        started = time.perf_counter()
        answer: dict[str, object] = {"case": job["case"]}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if job.get("argv"):
                    raise _CommandLine
                if job.get("selftest"):
                    _selftest(job["selftest"], Path(job["output"]))
                develop_to_file(job["path"], job["output"], weights, runner=runner, bits=8,
                                tile_size=args.tile_size, **extra)
            except _CommandLine:
                answer.update(run_cli_case(job))
            except MicroISPError as exc:
                text = str(exc)
                answer.update(outcome="typed" if "\n" not in text.strip() else "multiline",
                              error=type(exc).__name__, message=text[:500])
            except BaseException as exc:  # noqa: BLE001 - every other exception is the finding
                answer.update(outcome="traceback", error=type(exc).__name__, message=str(exc)[:500],
                              traceback=traceback.format_exc()[-4000:])
            else:
                answer.update(outcome="developed")
        answer["warnings"] = [f"{w.category.__name__}: {w.message}" for w in caught
                              if "microisp" in w.category.__module__ or "MicroISP" in w.category.__name__]
        answer["seconds"] = round(time.perf_counter() - started, 3)
        with open("/proc/self/status") as f:
            status = dict(ln.split(":", 1) for ln in f if ":" in ln)
        answer["vm_peak_mb"] = int(status["VmPeak"].split()[0]) // 1024
        answer["rss_peak_mb"] = int(status["VmHWM"].split()[0]) // 1024
        out.write(json.dumps(answer) + "\n")
        out.flush()


class _CommandLine(Exception):
    """The job is a command line (a CLI class), not a file for ``develop_to_file``."""


#: Harness checks (``--self-test``): what the worker does instead of a normal case, and the outcome
#: the campaign must report for it.
SELFTESTS = {"segfault": "signal", "hang": "hang", "bug": "traceback", "leftover": "typed"}


def _selftest(what: str, output: Path) -> None:
    from microisp_cli.errors import InputError

    if what == "segfault":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif what == "hang":
        time.sleep(10 ** 6)
    elif what == "bug":
        raise ZeroDivisionError("a deliberate bug")
    elif what == "leftover":
        output.with_name("partial.png").write_bytes(b"x")
        raise InputError("a deliberate typed error that leaves a file behind")


class Worker:
    """A worker subprocess and the case it is running."""

    def __init__(self, index: int, args: argparse.Namespace, log_dir: Path):
        self.index, self.args, self.log_dir = index, args, log_dir
        self.proc: subprocess.Popen | None = None
        self.case: dict | None = None
        self.started = 0.0
        self.buffer = b""
        self.restarts = -1

    def start(self) -> None:
        self.restarts += 1
        log = open(self.log_dir / f"worker{self.index}.log", "ab")
        cmd = [sys.executable, __file__, "--worker", "--memory-mb", str(self.args.memory_mb),
               "--tile-size", str(self.args.tile_size), "--threads", str(self.args.threads),
               "--max-megapixels", str(self.args.max_megapixels)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                     cwd=ROOT, start_new_session=True)
        log.close()
        self.buffer = b""
        ready = self._read_line(self.args.startup_timeout)
        if ready is None or not json.loads(ready).get("ready"):
            raise RuntimeError(f"worker {self.index} did not start; see {self.log_dir}/worker{self.index}.log")

    def _read_line(self, timeout: float) -> bytes | None:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            sel = selectors.DefaultSelector()
            sel.register(fd, selectors.EVENT_READ)
            ready = sel.select(left)
            sel.close()
            if not ready:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line

    def send(self, case: dict) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.case, self.started = case, time.monotonic()
        job = {k: case[k] for k in ("case", "path", "output", "selftest", "argv", "cwd", "inputs") if k in case}
        self.proc.stdin.write((json.dumps(job) + "\n").encode())
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the worker and its children
        if self.proc is not None:
            self.proc.wait()


def _stderr_tail(log: Path, lines: int = 8) -> str:
    try:
        return "\n".join(log.read_text("utf-8", "replace").splitlines()[-lines:])
    except OSError:
        return ""


def run_campaign(args: argparse.Namespace) -> dict:
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    for sub in ("seeds", "cases", "outputs", "repro", "logs"):
        (out / sub).mkdir(parents=True)
    t0 = time.monotonic()
    seeds = make_seeds(out / "seeds", args.seed, not args.no_real)
    kinds = selected_kinds(args.kinds)
    assets = Assets(out / "assets", args.seed) if set(kinds) & set(CLI_KINDS) else None
    pending = []
    for i in range(args.cases):
        kind = kinds[i % len(kinds)]
        if kind in CLI_KINDS:
            case_dir = out / "cases" / f"{i:05d}"
            made = make_cli_case(kind, random.Random(f"{args.seed}:{i}"), assets, case_dir)
            pending.append(dict(case=i, kind=kind, seed="cli", mutation=made.pop("description"),
                                path=str(case_dir), **made))
            continue
        kind, seed_name, what, data = make_case(i, args.seed, seeds, out / "cases", kind)
        path = out / "cases" / f"{i:05d}.dng"
        path.write_bytes(data)
        pending.append(dict(case=i, kind=kind, seed=seed_name, mutation=what, path=str(path),
                            output=str(out / "outputs" / f"{i:05d}" / "developed.png")))
        (out / "outputs" / f"{i:05d}").mkdir()
    (out / "cases" / "synthetic.dng").unlink(missing_ok=True)
    for k, what in enumerate(SELFTESTS if args.self_test else ()):
        i = args.cases + k
        path = out / "cases" / f"{i:05d}.dng"
        path.write_bytes(seeds[0].data)
        pending.append(dict(case=i, kind="self-test", seed=seeds[0].name, mutation=what, selftest=what,
                            path=str(path), output=str(out / "outputs" / f"{i:05d}" / "developed.png")))
        (out / "outputs" / f"{i:05d}").mkdir()
    generated = time.monotonic() - t0
    workers = [Worker(k, args, out / "logs") for k in range(args.workers)]
    for w in workers:
        w.start()
    results: list[dict] = []
    queue = collections.deque(pending)

    def finish(w: Worker, result: dict) -> None:
        case = w.case
        assert case is not None
        result = {**case, **result}
        if "argv" in case:  # a command line: judged (leftovers too) by the worker
            if result["outcome"] != "cli" or result.get("leftover"):
                shutil.copytree(case["path"], out / "repro" / Path(case["path"]).name, symlinks=True,
                                ignore_dangling_symlinks=True, dirs_exist_ok=True,
                                ignore=lambda d, names: [n for n in names if _special(os.path.join(d, n))])
            if not args.keep:
                shutil.rmtree(case["path"], ignore_errors=True)
            results.append(result)
            w.case = None
            if args.verbose or result["outcome"] != "cli" or result.get("leftover"):
                print(f"[{len(results)}/{len(pending)}] case {case['case']} {case['kind']}: {result['outcome']} "
                      f"{result.get('error', '')} | {case['mutation'][:100]}", flush=True)
            return
        folder = Path(case["output"]).parent
        left = sorted(p.name for p in folder.iterdir())
        if result["outcome"] != "developed" and left:
            result["leftover"] = left
        if result["outcome"] == "developed" and left != ["developed.png"]:
            result["leftover"] = left
        if result["outcome"] not in ("developed", "typed"):
            shutil.copy(case["path"], out / "repro" / Path(case["path"]).name)
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
            Path(case["path"]).unlink(missing_ok=True)
        results.append(result)
        w.case = None
        if args.verbose or result["outcome"] not in ("developed", "typed"):
            print(f"[{len(results)}/{len(pending)}] case {case['case']} {case['kind']}: {result['outcome']} "
                  f"{result.get('error', '')} {result.get('message', '')[:120]}", flush=True)
        elif len(results) % 50 == 0:
            print(f"[{len(results)}/{len(pending)}] {time.monotonic() - t0:.0f} s", flush=True)

    idle = list(workers)
    busy: list[Worker] = []
    while queue or busy:
        while idle and queue:
            w = idle.pop()
            w.send(queue.popleft())
            busy.append(w)
        sel = selectors.DefaultSelector()
        for w in busy:
            sel.register(w.proc.stdout.fileno(), selectors.EVENT_READ, w)
        wait = max(0.05, min(w.started + args.timeout for w in busy) - time.monotonic())
        ready = {key.data for key, _ in sel.select(wait)}
        sel.close()
        for w in list(busy):
            if w in ready:
                chunk = os.read(w.proc.stdout.fileno(), 65536)
                if not chunk:  # end of file: the worker died while running its case
                    code = w.proc.wait()
                    tail = _stderr_tail(out / "logs" / f"worker{w.index}.log")
                    if code < 0:
                        result = dict(outcome="signal", error=signal.Signals(-code).name, stderr=tail)
                    else:
                        result = dict(outcome="exit", error=f"exit status {code}", stderr=tail)
                    result["seconds"] = round(time.monotonic() - w.started, 3)
                    finish(w, result)
                    busy.remove(w)
                    w.start()
                    idle.append(w)
                    continue
                w.buffer += chunk
                if b"\n" in w.buffer:
                    line, w.buffer = w.buffer.split(b"\n", 1)
                    finish(w, json.loads(line))
                    busy.remove(w)
                    idle.append(w)
            elif time.monotonic() - w.started > args.timeout:
                w.kill()
                finish(w, dict(outcome="hang", error=f"no answer in {args.timeout:g} s",
                               seconds=round(time.monotonic() - w.started, 3)))
                busy.remove(w)
                w.start()
                idle.append(w)
    for w in workers:
        if w.proc is not None and w.proc.stdin is not None:
            w.proc.stdin.close()
        w.proc.wait(timeout=60)
    wall = time.monotonic() - t0
    results.sort(key=lambda r: r["case"])
    report = dict(command=" ".join(["python", "benchmarks/fuzz_raw.py"] + sys.argv[1:]), seed=args.seed,
                  cases=len(results), wall_seconds=round(wall, 1), generate_seconds=round(generated, 1),
                  memory_limit_mb=args.memory_mb, timeout_s=args.timeout, workers=args.workers,
                  worker_restarts=sum(w.restarts for w in workers),
                  max_vm_peak_mb=max((r.get("vm_peak_mb", 0) for r in results), default=0),
                  max_rss_peak_mb=max((r.get("rss_peak_mb", 0) for r in results), default=0),
                  seeds=[s.name for s in seeds], results=results)
    (out / "report.json").write_text(json.dumps(report, indent=1))
    return report


def _special(path: str) -> bool:
    import stat

    try:
        return not (stat.S_ISREG(os.lstat(path).st_mode) or stat.S_ISDIR(os.lstat(path).st_mode)
                    or os.path.islink(path))
    except OSError:
        return True


def selected_kinds(text: str) -> list[str]:
    """``--kinds``: ``all``, ``raw`` (the mutated DNGs), ``cli`` (the command-line classes) or a
    comma-separated list of kind names."""
    groups = {"raw": KINDS, "cli": CLI_KINDS, "all": KINDS + CLI_KINDS}
    kinds = [k for part in text.split(",") for k in groups.get(part, [part])]
    unknown = sorted(set(kinds) - set(KINDS) - set(CLI_KINDS))
    if unknown:
        raise SystemExit(f"unknown kind(s) {', '.join(unknown)}; known: {', '.join(KINDS + CLI_KINDS)}")
    return kinds


def markdown_cli(report: dict) -> str:
    """The command-line classes: exit codes and every way of breaking the contract, per class."""
    results = [r for r in report["results"] if r["kind"] in CLI_KINDS]
    if not results:
        return ""
    labels = ["exit 0", "exit 1", "exit 2", "traceback", "exit", "unescaped", "stray line",
              "input changed", "signal", "hang"]
    head = "| class | cases | " + " | ".join(labels) + " | files left behind |"
    lines = [head, "|" + "---|" * (len(labels) + 3)]
    rows = [k for k in CLI_KINDS if any(r["kind"] == k for r in results)] + ["**all**"]
    for kind in rows:
        mine = [r for r in results if kind == "**all**" or r["kind"] == kind]
        c = collections.Counter(r["error"] if r["outcome"] == "cli" else r["outcome"] for r in mine)
        cells = [str(len(mine))] + [str(c[lab]) for lab in labels] + [str(sum(1 for r in mine if r.get("leftover")))]
        if kind == "**all**":
            cells = [f"**{x}**" for x in cells]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def outcome_label(r: dict) -> str:
    return f"typed: {r['error']}" if r["outcome"] == "typed" else r["outcome"]


def markdown(report: dict) -> str:
    results = [r for r in report["results"] if r["kind"] in KINDS]
    labels = ["developed"] + sorted({outcome_label(r) for r in results if r["outcome"] == "typed"}) + \
        ["multiline", "traceback", "signal", "exit", "hang"]
    per_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for r in results:
        per_kind[r["kind"]][outcome_label(r)] += 1
    head = "| mutation | cases | " + " | ".join(labels) + " |"
    lines = [head, "|" + "---|" * (len(labels) + 2)]
    for kind in [k for k in KINDS if k in per_kind]:
        c = per_kind.get(kind, collections.Counter())
        lines.append(f"| {kind} | {sum(c.values())} | " + " | ".join(str(c[lab]) for lab in labels) + " |")
    total = collections.Counter(outcome_label(r) for r in results)
    lines.append(f"| **all** | **{len(results)}** | " + " | ".join(f"**{total[lab]}**" for lab in labels) + " |")
    leftovers = sum(1 for r in results if r.get("leftover"))
    warned = sum(1 for r in results if r.get("warnings"))
    lines = lines if results else []
    cli = markdown_cli(report)
    lines += ["", cli] if cli else []
    lines += ["", f"Wall time {report['wall_seconds']:.0f} s ({report['workers']} worker(s), "
              f"{report['worker_restarts']} restart(s)); outputs left behind by failed cases: {leftovers}; "
              f"cases with a fallback warning: {warned}; largest worker peak: "
              f"{report['max_rss_peak_mb']} MB resident, {report['max_vm_peak_mb']} MB virtual "
              f"(limit {report['memory_limit_mb']} MB)."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds per case before it is a hang")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument("--memory-mb", type=int, default=4096, help="RLIMIT_AS of each worker")
    parser.add_argument("--tile-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-megapixels", type=float, default=0, help="0: the library default")
    parser.add_argument("--kinds", default="raw",
                        help="raw (mutated DNGs), cli (the command-line classes), all, or kind names, "
                             "comma-separated; cases rotate over them")
    parser.add_argument("--out", default="runs/fuzz")
    parser.add_argument("--no-real", action="store_true", help="synthetic seeds only")
    parser.add_argument("--keep", action="store_true", help="keep every case file and output")
    parser.add_argument("--markdown", action="store_true", help="print the results table")
    parser.add_argument("--verbose", action="store_true", help="a line per case")
    parser.add_argument("--self-test", action="store_true",
                        help="add cases that crash, hang, raise and leave a file, to check the harness")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker_main(args)
        return
    report = run_campaign(args)
    checks = [r for r in report["results"] if r["kind"] == "self-test"]
    for r in checks:
        ok = r["outcome"] == SELFTESTS[r["selftest"]] and (r["selftest"] != "leftover" or r.get("leftover"))
        print(f"self-test {r['selftest']}: reported as {r['outcome']} {r.get('error', '')} "
              f"{'leftover ' + str(r.get('leftover')) if r.get('leftover') else ''}: {'ok' if ok else 'WRONG'}")
    bad = [r for r in report["results"] if r["kind"] != "self-test"
           and (r["outcome"] not in ("developed", "typed", "cli") or r.get("leftover"))]
    print(markdown(report) if args.markdown else json.dumps({k: v for k, v in report.items() if k != "results"}))
    print(f"{len(bad)} finding(s); report: {Path(args.out) / 'report.json'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
