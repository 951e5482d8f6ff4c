"""Hostile command lines for the fuzz campaign (``benchmarks/fuzz_raw.py --kinds ...``): the
classes of issue 14, each case a folder of real files and a ``microisp develop`` command run in
the campaign's worker process (TensorFlow loaded once), judged by the contract of
docs/robustness.md.

Classes (``CLI_KINDS``): ``names`` (file names that are not UTF-8, control characters, escape
sequences, forged summary lines, bidi overrides, 250-byte names), ``special`` (FIFOs, devices,
folders, links as inputs, weights and models), ``npy-header`` (``.npy`` files whose header declares
random shapes and types over sparse, short or empty data), ``weights`` (manifests with huge, nested,
mistyped or missing fields; ``.npz`` files whose members declare other shapes, inflate beyond them,
repeat or are not zips), ``tflite`` (an export truncated, bit-flipped, with edited metadata or a
random body), ``options`` (option values: nan, inf, out of range, unparsable; the ``-o`` rules;
scheduler addresses), ``same-file`` (the output is the input, through links and ``..``).

A case is a dict: ``argv`` (after ``microisp``), ``cwd``, ``inputs`` (files that must be unchanged
afterwards), ``description``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np

from microisp_cli.synthetic import random_mosaic

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # tests/malformed.py
from malformed import npz_bytes  # noqa: E402

CLI_KINDS = ["names", "special", "npy-header", "weights", "tflite", "options", "same-file"]


class Assets:
    """What the CLI cases share: a small valid DNG, and a tiny network's weights with its
    segmented ``.tflite`` export (made once per campaign)."""

    def __init__(self, folder: Path, seed: int):
        from microisp_cli.training.dng import write_dng

        folder.mkdir(parents=True, exist_ok=True)
        mosaic = random_mosaic(48, 64, [seed, 14])
        self.dng = write_dng(folder / "small.dng", mosaic, "GBRG", black_level=64, white_level=4095,
                             as_shot_neutral=[0.5, 1.0, 0.7]).read_bytes()
        self.folder = folder
        self.manifest, self.tflite = self._export(folder)

    @staticmethod
    def _export(folder: Path) -> tuple[Path, bytes]:
        from microisp_cli import export
        from microisp_cli.model import ModelConfig, init_parameters
        from microisp_cli.weights import Conditioning, Weights, save_weights

        config = ModelConfig(stages=1, blocks=1, base="mhc")
        weights = Weights("tiny", config, init_parameters(config, seed=1), Conditioning())
        manifest = save_weights(weights, folder / "tiny")
        export.export_tflite(weights, folder / "tiny.tflite", precision="fp32")
        return manifest, (folder / "tiny.tflite").read_bytes()


def make_cli_case(kind: str, rng: random.Random, assets: Assets, case_dir: Path) -> dict:
    case_dir.mkdir(parents=True)
    case = BUILDERS[kind](rng, assets, case_dir)
    case.setdefault("cwd", str(case_dir))
    case.setdefault("inputs", [])
    case["argv"] = ["develop", *map(str, case["argv"])]
    return case


def digest(paths: list[str]) -> dict[str, str]:
    """sha256 of each regular file (what must not change)."""
    out = {}
    for p in paths:
        try:
            out[p] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
        except OSError:
            out[p] = "unreadable"
    return out


# --- names ----------------------------------------------------------------------------------------
NAME_PARTS = [b"Caf\xe9", b"\xff\xfe", b"a\nb", b"x\r", b"\x1b[31mred\x1b[0m", b"\x07bell", b"\t",
              b"12 done, 0 skipped, 0 failed\n", b"error: forged", "\u202egnp".encode(), b"-rf",
              b"..", b" ", "ünï".encode(), b"$(reboot)", b"\x1b]0;title\x07", b"\x7f", b"e" * 200]


def _odd_name(rng: random.Random) -> bytes:
    parts = b"".join(rng.choice(NAME_PARTS) for _ in range(rng.randint(1, 3)))
    return parts[:240] + rng.choice([b".dng", b".DNG", b".npy", b".raw", b".dng.dng"])


def b_names(rng, assets, case_dir):
    src = case_dir / "in"
    src.mkdir()
    made = []
    for _ in range(rng.randint(1, 3)):
        name = _odd_name(rng)
        path = os.path.join(os.fsencode(src), name.replace(b"/", b"_"))
        content = rng.choice([assets.dng, assets.dng[:200], b"", b"not a raw at all"])
        with open(path, "wb") as f:
            f.write(content)
        made.append(os.fsdecode(path))
    if rng.random() < 0.5:  # given directly, or as the folder
        return dict(argv=[*made, "-o", f"{case_dir}/out/", "--tile-size", "0"], inputs=made,
                    description=f"{len(made)} odd names, given directly")
    return dict(argv=[src, "-o", f"{case_dir}/out/", "--tile-size", "0"], inputs=made,
                description=f"{len(made)} odd names in a folder")


# --- special files --------------------------------------------------------------------------------
def b_special(rng, assets, case_dir):
    good = case_dir / "good.dng"
    good.write_bytes(assets.dng)
    what = rng.choice(["fifo input", "fifo in folder", "device input", "folder named .dng", "fifo link",
                       "dangling link", "fifo weights", "device weights", "fifo model", "device model"])
    fifo = case_dir / "f.dng"
    os.mkfifo(fifo)
    argv = [good]
    if what == "fifo input":
        argv = [fifo, good]
    elif what == "fifo in folder":
        argv = [case_dir]
    elif what == "device input":
        argv = [rng.choice(["/dev/zero", "/dev/urandom", "/dev/null"]), good]
    elif what == "folder named .dng":
        (case_dir / "d.dng").mkdir()
        argv = [case_dir / "d.dng", good]
    elif what == "fifo link":
        (case_dir / "l.dng").symlink_to(fifo)
        argv = [case_dir / "l.dng", good]
    elif what == "dangling link":
        (case_dir / "x.dng").symlink_to(case_dir / "missing")
        argv = [case_dir / "x.dng", good]
    argv += ["-o", f"{case_dir}/out/", "--tile-size", "0"]
    if what.endswith("weights"):
        argv += ["--weights", fifo.with_suffix(".json") if "fifo" in what else "/dev/zero"]
        if "fifo" in what:
            os.mkfifo(fifo.with_suffix(".json"))
    if what.endswith("model"):
        model = case_dir / "m.tflite"
        if "fifo" in what:
            os.mkfifo(model)
        else:
            model = Path("/dev/zero")
        argv += ["--backend", "tflite", "--model", model, "--weights", assets.manifest]
    return dict(argv=argv, inputs=[str(good)], description=what)


# --- .npy headers ---------------------------------------------------------------------------------
DIMS = [0, 1, 2, 3, 4, 5, 64, 100, 4095, 100_000, 2 ** 31, 2 ** 40]
DTYPES = ["|u1", "<u2", ">u2", "<i2", "<i4", "<u8", "<f2", "<f4", ">f8", "<c8", "|b1", "<U8", "|V8", "|O",
          "<M8[s]"]


def b_npy_header(rng, assets, case_dir):
    from numpy.lib import format as npy

    ndim = rng.choice([0, 1, 2, 2, 2, 3, 3, 4])
    shape = tuple(rng.choice(DIMS) if rng.random() < 0.5 else rng.randint(2, 80) for _ in range(ndim))
    if ndim == 3 and rng.random() < 0.6:
        shape = shape[:2] + (rng.choice([3, 4]),)
    dtype = rng.choice(DTYPES)
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": dtype, "fortran_order": rng.random() < 0.2, "shape": shape})
    head = bytearray(header.getvalue())
    if rng.random() < 0.15:  # a damaged header
        for _ in range(rng.randint(1, 6)):
            head[rng.randrange(len(head))] = rng.randrange(256)
    try:
        itemsize = np.dtype(dtype).itemsize
    except TypeError:
        itemsize = 8
    declared = int(np.prod(shape, dtype=object)) * itemsize if shape else itemsize
    data = rng.choice(["sparse", "short", "none", "random"])
    path = case_dir / "m.npy"
    with open(path, "wb") as f:
        f.write(head)
        if data == "sparse" and declared < 2 ** 42:
            f.truncate(len(head) + declared)
        elif data == "short":
            f.write(bytes(rng.randrange(256) for _ in range(min(declared // 2, 4096))))
        elif data == "random":
            f.write(np.random.default_rng(rng.randrange(2 ** 32)).integers(0, 256, min(declared, 1 << 16),
                                                                            np.uint8).tobytes())
    good = case_dir / "good.dng"
    good.write_bytes(assets.dng)
    return dict(argv=[path, good, "-o", f"{case_dir}/out/", "--tile-size", "0"], inputs=[str(good)],
                description=f"{shape} {dtype}, data {data}")


# --- weights --------------------------------------------------------------------------------------
def _npy(shape, dtype="<f4", body: bytes | None = None) -> bytes:
    from numpy.lib import format as npy

    buffer = io.BytesIO()
    npy.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue() + (body if body is not None else bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize))


FIELD_VALUES = [0, -1, 1, 2, 17, 257, 1e9, 1e8, 10 ** 12, 2.5, "2", True, None, [2], {"a": 1}]


def b_weights(rng, assets, case_dir):
    manifest = json.loads(assets.manifest.read_text())
    npz = (assets.manifest.parent / manifest["file"]).read_bytes()
    what = rng.choice(["model field", "model field", "nested", "huge text", "missing key", "format",
                       "file path", "member shape", "member inflates", "member repeated", "member dtype",
                       "not a zip", "sha mismatch", "not json", "conditioning"])
    text = None
    if what == "model field":
        field = rng.choice(["stages", "blocks", "features", "attention_hidden", "base", "extra"])
        manifest["model"][field] = rng.choice(FIELD_VALUES)
        what += f" {field}={manifest['model'][field]!r}"
    elif what == "nested":
        depth = rng.choice([100, 1000, 10_000, 100_000])
        text = '{"format": "microisp-weights/1", "model": ' + "[" * depth + "]" * depth + "}"
        what += f" {depth}"
    elif what == "not json":
        text = rng.choice(["", "{", "[1, 2", "\x00\x01", '{"format": "microisp-weights/1", "model": NaN}',
                           '"a string"', "\ufeff{}", "null"])
    elif what == "huge text":
        text = json.dumps(manifest) + " " * rng.choice([1 << 20, 3 << 20])
    elif what == "missing key":
        manifest.pop(rng.choice(["model", "conditioning", "file", "sha256", "format"]))
    elif what == "format":
        manifest["format"] = rng.choice(["microisp-weights/2", "", 1, None])
    elif what == "file path":
        manifest["file"] = rng.choice(["/dev/zero", "../../../../etc/passwd", "", ".", "missing.npz"])
    elif what == "conditioning":
        manifest["conditioning"] = rng.choice([{"channels": ["R"]}, {"scale": -1}, {"output": "x"}, [], "x",
                                               {"extra": 1}])
    else:
        with zipfile.ZipFile(io.BytesIO(npz)) as archive:
            members = {i.filename: archive.read(i) for i in archive.infolist()}
        name = rng.choice(sorted(members))
        if what == "member shape":
            members[name] = _npy(rng.choice([(40000, 40000), (1,), (3, 3, 4, 5), ()]), body=b"")
        elif what == "member inflates":
            members[name] = members[name] + bytes(rng.choice([1 << 20, 32 << 20]))
        elif what == "member dtype":
            stream = io.BytesIO(members[name])
            np.lib.format.read_magic(stream)
            shape = np.lib.format.read_array_header_1_0(stream)[0]
            members[name] = _npy(shape, rng.choice(["<c8", "|O", "<U4", "<i4", "<f8"]))
        npz = npz_bytes(members)
        if what == "member repeated":
            buffer = io.BytesIO(npz)
            with warnings.catch_warnings(), zipfile.ZipFile(buffer, "a") as archive:
                warnings.simplefilter("ignore")  # "Duplicate name": that is the point
                archive.writestr(name, members[name])
            npz = buffer.getvalue()
        if what == "not a zip":
            npz = b"PK\x03\x04" + bytes(rng.randrange(256) for _ in range(200))
        if what != "sha mismatch":
            manifest["sha256"] = hashlib.sha256(npz).hexdigest()
    (case_dir / "w.npz").write_bytes(npz)
    if "file" in manifest and manifest["file"] == assets.manifest.with_suffix(".npz").name:
        manifest["file"] = "w.npz"
    (case_dir / "w.json").write_text(text if text is not None else json.dumps(manifest))
    good = case_dir / "good.dng"
    good.write_bytes(assets.dng)
    return dict(argv=[good, "-o", case_dir / "out.png", "--tile-size", "0", "--weights", case_dir / "w.json"],
                inputs=[str(good)], description=what)


# --- .tflite --------------------------------------------------------------------------------------
def b_tflite(rng, assets, case_dir):
    from microisp_cli.tflite_format import read_metadata

    data = bytearray(assets.tflite)
    meta = json.dumps(read_metadata(assets.tflite), sort_keys=True).encode()  # as export writes it
    meta_at = assets.tflite.index(meta)
    meta_end = meta_at + len(meta)
    what = rng.choice(["truncate", "truncate", "bit flips", "bit flips in metadata", "metadata field",
                       "random body", "tiny"])
    if what == "truncate":
        cut = rng.choice([64, 100, 1000]) if rng.random() < 0.3 else int(len(data) * rng.random())
        data = data[:cut]
        what += f" at {cut} of {len(assets.tflite)} bytes"
    elif what == "bit flips":
        for _ in range(rng.choice([1, 8, 64, 512])):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    elif what == "bit flips in metadata":
        for _ in range(rng.choice([1, 4, 16])):
            data[rng.randrange(meta_at, meta_end)] ^= 1 << rng.randrange(7)
    elif what == "metadata field":
        meta = bytes(data[meta_at:meta_end])
        old, new = rng.choice([(b'"stages": 1', b'"stages": 2'), (b'"model"', b'"mode_"'), (b'"blocks": 1', b'"blocks": 9'),
                               (b'"kind": "segments"', b'"kind": "fixed___"'), (b'"format"', b'"forma_"'),
                               (b'{', b'[')])
        data[meta_at:meta_end] = meta.replace(old, new, 1)
        what += f" {old.decode()} -> {new.decode()}"
    elif what == "random body":
        data = data[:8] + bytearray(rng.randrange(256) for _ in range(len(data) - 8))
    else:
        data = data[:rng.choice([0, 4, 8, 16])]
    model = case_dir / "m.tflite"
    model.write_bytes(bytes(data))
    good = case_dir / "good.dng"
    good.write_bytes(assets.dng)
    return dict(argv=[good, "-o", case_dir / "out.png", "--tile-size", "64", "--backend", "tflite",
                      "--model", model, "--weights", assets.manifest], inputs=[str(good)], description=what)


# --- option values --------------------------------------------------------------------------------
OPTION_VALUES = {
    "--max-megapixels": ["nan", "inf", "-inf", "-1", "0", "1e-300", "1e308", "abc", ""],
    "--tile-size": ["-2", "1", "16", "20", "31", "33", "2147483648", "x", "0", "32"],
    "--black-level": ["nan", "-1", "1e9", "inf", "x"],
    "--scheduler": ["not a url", "tcp://127.0.0.1:1", "tcp://:0", "tcp://h:99999", "ucx://x", "", "tcp://a b:1",
                    "tcp://host.invalid:8786"],
    "--raw-size": ["0x0", "-1x5", "1e9x1e9", "axb", "100000x100000", "2x2"],
    "--quality": ["0", "101", "-5", "x"],
    "--format": ["bmp", "", "PNG", "..png"],
    "--bits": ["12", "0", "16"],
    "--threads": ["0", "-1", "x"],
    "--workers": ["0", "-1", "x"],
    "-o": ["-", "noext", "a.bmp", "/dev/null/x.png", "", ".", "noext/", "x.PNG", "/proc/x.png"],
}


def b_options(rng, assets, case_dir):
    good = case_dir / "good.dng"
    good.write_bytes(assets.dng)
    chosen = rng.sample(sorted(OPTION_VALUES), rng.randint(1, 2))
    argv: list = [good]
    if "-o" not in chosen:
        argv += ["-o", case_dir / "out.png"]
    for option in chosen:
        argv += [option, rng.choice(OPTION_VALUES[option])]
    if "--tile-size" not in chosen:
        argv += ["--tile-size", "0"]
    return dict(argv=argv, inputs=[str(good)], description=" ".join(map(str, argv[1:])))


# --- the output is the input ----------------------------------------------------------------------
def b_same_file(rng, assets, case_dir):
    source = case_dir / "same.tif"
    source.write_bytes(assets.dng)
    what = rng.choice(["same name", "symlink", "hard link", "dot-dot", "folder in place"])
    target: Path | str = source
    if what == "symlink":
        target = case_dir / "link.tif"
        target.symlink_to(source)
    elif what == "hard link":
        target = case_dir / "hard.tif"
        os.link(source, target)
    elif what == "dot-dot":
        (case_dir / "sub").mkdir()
        target = f"{case_dir}/sub/../same.tif"
    argv = [source, "-o", target, "--overwrite", "--tile-size", "0"]
    if what == "folder in place":  # a folder developed into itself, as PNGs named like the inputs
        (case_dir / "in").mkdir()
        moved = case_dir / "in" / "x.png.dng"
        source.rename(moved)
        source = moved
        argv = [case_dir / "in", "-o", case_dir / "in", "--overwrite", "--tile-size", "0"]
    return dict(argv=argv, inputs=[str(source)], description=what)


BUILDERS = {"names": b_names, "special": b_special, "npy-header": b_npy_header, "weights": b_weights,
            "tflite": b_tflite, "options": b_options, "same-file": b_same_file}
