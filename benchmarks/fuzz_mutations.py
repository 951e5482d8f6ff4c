"""The raw-file side of the fuzz campaign (``fuzz_raw.py``): seed files and the mutations made
to them, one kind per case (``KINDS``); :func:`make_case` draws case ``i`` of a seed."""

from __future__ import annotations

import dataclasses
import random
import struct
import sys
from pathlib import Path

import numpy as np

from microisp_cli.synthetic import gradient_scene

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/malformed.py
from malformed import (  # noqa: E402
    RATIONAL_TAGS, SUB_IFD_TAGS, T_ACTIVE_AREA, T_ANALOG, T_BITS, T_BLACK, T_BLACK_DIM,
    T_CALIBRATION1, T_CFA_DIM, T_CFA_PATTERN, T_COMPRESSION, T_CROP_ORIGIN, T_CROP_SIZE, T_LENGTH,
    T_MATRIX1, T_MATRIX2, T_NEUTRAL, T_ORIENTATION, T_PHOTOMETRIC, T_PLANAR, T_ROWS_PER_STRIP,
    T_SAMPLES, T_STRIP_BYTES, T_STRIP_OFFSETS, T_TILE_BYTES, T_TILE_LENGTH, T_TILE_OFFSETS,
    T_TILE_WIDTH, T_WHITE, T_WIDTH, Tiff, parse_tiff, put, set_field, tag_values,
)

ROOT = Path(__file__).resolve().parents[1]
SHARED_RAW = ROOT.parent / "shared" / "data" / "raw"


# --- seeds --------------------------------------------------------------------------------------
@dataclasses.dataclass
class Seed:
    name: str
    data: bytes
    tiff: Tiff
    weight: float  # relative chance of being picked (large real files cost seconds per case)


def _scene(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    base = gradient_scene(h, w, base=(0.2, 0.15, 0.3))
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
    old = tag_values(buf, tiff.endian, e)
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
    white = [tag_values(buf, tiff.endian, w) for w in tiff.find(T_WHITE)]
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
