"""Weights: the project's file format, its manifest, bundled presets and the published checkpoint.

A weights file is two files side by side:

- ``NAME.npz``: one float32 array per parameter, named as in :func:`model.parameter_shapes`;
- ``NAME.json``: the manifest (format ``microisp-weights/1``): the model config, the input
  conditioning, what the network outputs, a description, and the sha256 of the ``.npz``.

``load_weights(spec)`` accepts a bundled name (``default``), a path to either file, or the prefix
of a TensorFlow 1 checkpoint of the published MicroISP (``.../MicroISP.ckpt``), which is mapped by
its variable names and gets the ``upstream-imx586`` conditioning.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import zipfile
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import defaults
from .bayer import SITES
from .errors import WeightsError
from .files import Unreadable, npy_header, npy_shaped, read_regular
from .model import BRANCHES, PUBLISHED, ModelConfig, check_parameters, count_parameters, parameter_shapes
from .tensorflow_import import import_tensorflow
from .vocabulary import OUTPUT_KINDS, OutputKind, choose

FORMAT = "microisp-weights/1"


@dataclasses.dataclass(frozen=True)
class Conditioning:
    """How a Bayer mosaic is turned into the network's input, and what the network returns.

    - ``channels``: the packed channel order, as RGGB sites (``R``, ``Gr`` = green on red rows,
      ``Gb`` = green on blue rows, ``B``).
    - ``black_level``: subtract the per-channel black level first.
    - ``scale``: divide by ``"white"`` (white level minus black level) or by this number.
    - ``white_balance``: multiply by the as-shot white balance gains before the network.
    - ``output``: ``"linear"``: white-balanced linear camera RGB (the colour matrix and sRGB curve
      are applied after the network); ``"srgb"``: display-ready sRGB (only clipped afterwards).
    """

    channels: tuple[str, ...] = SITES
    black_level: bool = True
    scale: Literal["white"] | float = "white"
    white_balance: bool = True
    output: OutputKind = "linear"

    def __post_init__(self) -> None:
        if sorted(self.channels) != sorted(SITES):
            raise ValueError(f"channels must be a permutation of {SITES}, got {self.channels}")
        if self.scale != "white" and not (isinstance(self.scale, (int, float)) and self.scale > 0):
            raise ValueError(f"scale must be 'white' or a positive number, got {self.scale!r}")
        choose("output", self.output, OUTPUT_KINDS)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Conditioning:
        data = dict(data)
        data["channels"] = tuple(data.get("channels", SITES))
        return cls(**data)


#: The published weights' conditioning (its inference script, IMX586 10-bit RGGB DNGs): channels
#: B, G, R, G taken as raw[1::2,1::2], raw[0::2,1::2], raw[0::2,0::2], raw[1::2,0::2]; divided by
#: 4 * 255; no black level, white balance or colour matrix; the network draws sRGB directly.
UPSTREAM_IMX586 = Conditioning(
    channels=("B", "Gr", "R", "Gb"), black_level=False, scale=4.0 * 255.0,
    white_balance=False, output="srgb",
)


@dataclasses.dataclass
class Weights:
    """A model config, its parameters and how to feed it; what every command runs."""

    name: str
    config: ModelConfig
    params: dict[str, np.ndarray]
    conditioning: Conditioning
    description: str = ""
    source: str = ""

    def build(self):
        """The TensorFlow network (:class:`model.MicroISP`) for these weights."""
        from .network import MicroISP

        return MicroISP(self.config, self.params)


# --- the project's format -------------------------------------------------------------------
def bundled_dir() -> Path:
    """The folder of the bundled weights (``weights/`` in the repository)."""
    return Path(str(resources.files("microisp_cli.weights_data")))


def bundled_names() -> list[str]:
    return sorted(p.stem for p in bundled_dir().glob("*.json"))


def _npz_bytes(params: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v, np.float32) for k, v in sorted(params.items())})
    return buffer.getvalue()


def save_weights(weights: Weights, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``weights`` as ``PATH.npz`` + ``PATH.json``; returns the manifest path.

    ``extra`` adds fields to the manifest (e.g. training provenance).
    """
    check_parameters(weights.config, weights.params)
    base = Path(path).with_suffix("")
    blob = _npz_bytes(weights.params)
    manifest = {
        "format": FORMAT,
        "name": weights.name,
        "description": weights.description,
        "model": weights.config.to_dict(),
        "conditioning": weights.conditioning.to_dict(),
        "file": base.name + ".npz",
        "sha256": hashlib.sha256(blob).hexdigest(),
        **(extra or {}),
    }
    base.parent.mkdir(parents=True, exist_ok=True)
    base.with_suffix(".npz").write_bytes(blob)
    manifest_path = base.with_suffix(".json")
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest_path


def _read(path: Path, max_bytes: int, what: str) -> bytes:
    try:
        return read_regular(path, max_bytes)
    except Unreadable as exc:
        raise WeightsError(f"{path}: {what} {exc}") from None


def _load_manifest(manifest_path: Path) -> Weights:
    """Weights from a manifest and its ``.npz``, every size bounded before it is allocated: the
    manifest's bytes (``defaults.MAX_MANIFEST_BYTES``), its model config (``ModelConfig``'s
    limits), the ``.npz`` file, and each array's shape and type, read from the zip member's
    header before it is inflated (:func:`_read_params`)."""
    text = _read(manifest_path, defaults.MAX_MANIFEST_BYTES, "the weights manifest")
    try:
        manifest = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise WeightsError(f"{manifest_path}: not a readable weights manifest ({why})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise WeightsError(f"{manifest_path}: not a {FORMAT} manifest")
    try:
        config = ModelConfig.from_dict(manifest["model"])
        conditioning = Conditioning.from_dict(manifest["conditioning"])
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{manifest_path}: unusable model or conditioning ({exc})") from None
    npz_path = manifest_path.parent / str(manifest.get("file", ""))
    shapes = parameter_shapes(config)
    blob = _read(npz_path, 8 * count_parameters(config) + 1024 * len(shapes) + 65536,
                 "the weights file")
    if hashlib.sha256(blob).hexdigest() != manifest.get("sha256"):
        raise WeightsError(f"{npz_path}: sha256 does not match its manifest (corrupt or replaced file)")
    try:
        params = _read_params(blob, shapes)
        check_parameters(config, params)
    except (KeyError, TypeError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{manifest_path}: weights do not match the manifest ({exc})") from None
    return Weights(
        name=str(manifest.get("name", manifest_path.stem)), config=config, params=params,
        conditioning=conditioning, description=str(manifest.get("description", "")),
        source=str(manifest_path),
    )


def _read_params(blob: bytes, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (bytes) as float32; each member's name, shape and type are checked
    against ``shapes`` from its ``.npy`` header before the member is inflated."""
    params: dict[str, np.ndarray] = {}
    with zipfile.ZipFile(io.BytesIO(blob)) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if name not in shapes or name in params:
                raise ValueError(f"unexpected or repeated array {info.filename!r}")
            with archive.open(info) as member:
                shape, fortran, dtype = npy_header(member)
                if shape != tuple(shapes[name]) or dtype.kind != "f" or dtype.itemsize > 8:
                    raise ValueError(f"{name} is {dtype} {shape}, expected float {tuple(shapes[name])}")
                size = math.prod(shape) * dtype.itemsize
                data = member.read(size + 1)
            if len(data) != size:
                raise ValueError(f"{name}: {len(data)} bytes of data for {shape} {dtype}")
            params[name] = npy_shaped(np.frombuffer(data, dtype), shape, fortran).astype(np.float32)
    return params


# --- the published TF1 checkpoint -------------------------------------------------------------
def _prelu_local_index(config: ModelConfig, conv: int | None, att: tuple[int, int] | None) -> int:
    """Position of a PReLU in a published branch's creation order: per block the PReLUs of its
    three convs, then the five of its attention; the last conv's PReLU closes the branch."""
    per_block = 3 + 5
    if att is not None:
        block, m = att
        return block * per_block + 3 + m
    block, j = divmod(conv, 3)
    return block * per_block + j if block < config.blocks else config.blocks * per_block


def tf1_variable_names(config: ModelConfig = PUBLISHED) -> dict[str, str]:
    """Our parameter name -> the published checkpoint's variable name."""
    if config != PUBLISHED:
        raise WeightsError("only the published configuration maps to the TF1 checkpoint names")
    names: dict[str, str] = {}
    per_branch = 8 * config.blocks + 1
    for g in range(config.stages):
        gen = f"generator-{g + 1}"
        for i in range(BRANCHES):
            p = f"s{g}.b{i}"
            for j in range(config.convs_per_branch):
                names[f"{p}.conv{j}.kernel"] = f"{gen}/{i}_w{g + 1}_{j}"
                names[f"{p}.conv{j}.bias"] = f"{gen}/{i}_b{g + 1}_{j}"
                n = g * BRANCHES * per_branch + i * per_branch + _prelu_local_index(config, j, None)
                names[f"{p}.conv{j}.alpha"] = f"{gen}/p_re_lu" + (f"_{n}" if n else "") + "/alpha"
            names[f"{p}.out.kernel"] = f"{gen}/{i}_w{g + 1}_out"
            names[f"{p}.out.bias"] = f"{gen}/{i}_b{g + 1}_out"
            for k in range(config.blocks):
                for m in range(6):
                    v = 2 * ((i * config.blocks + k) * 6 + m)
                    names[f"{p}.att{k}.conv{m}.kernel"] = f"{gen}/Variable" + (f"_{v}" if v else "")
                    names[f"{p}.att{k}.conv{m}.bias"] = f"{gen}/Variable_{v + 1}"
                    if m < 5:
                        n = (g * BRANCHES * per_branch + i * per_branch
                             + _prelu_local_index(config, None, (k, m)))
                        names[f"{p}.att{k}.conv{m}.alpha"] = f"{gen}/p_re_lu_{n}/alpha"
    return names


def load_tf1_checkpoint(prefix: str | Path) -> Weights:
    """The published MicroISP checkpoint (TF1 variable names) as project weights."""

    tf = import_tensorflow()

    prefix = str(prefix)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except (tf.errors.OpError, ValueError) as exc:
        raise WeightsError(f"{prefix}: not a readable TensorFlow checkpoint ({type(exc).__name__})") from None
    available = reader.get_variable_to_shape_map()
    params = {}
    for ours, theirs in tf1_variable_names().items():
        if theirs not in available:
            raise WeightsError(f"{prefix}: variable {theirs} not found; not a MicroISP checkpoint")
        params[ours] = np.asarray(reader.get_tensor(theirs), np.float32).reshape(-1) \
            if ours.endswith(".alpha") else np.asarray(reader.get_tensor(theirs), np.float32)
    try:
        check_parameters(PUBLISHED, params)
    except ValueError as exc:
        raise WeightsError(f"{prefix}: {exc}") from None
    return Weights(
        name="upstream-imx586", config=PUBLISHED, params=params, conditioning=UPSTREAM_IMX586,
        description="published MicroISP weights (Ignatov et al. 2022), Sony IMX586 RGGB 10-bit; "
                    "CC BY-NC-SA 4.0, research use only",
        source=prefix,
    )


# --- one entry point --------------------------------------------------------------------------
def _checkpoint_prefix(path: Path) -> Path | None:
    if path.suffix == ".index" or ".data-" in path.name:
        return path.with_name(path.name.split(".index")[0].split(".data-")[0])
    if Path(str(path) + ".index").exists():
        return path
    return None


def load_weights(spec: str | Path | None = None) -> Weights:
    """Weights by bundled name, by path to a ``.json``/``.npz``, or by TF1 checkpoint prefix."""
    spec = str(spec if spec is not None else defaults.WEIGHTS)
    path = Path(spec).expanduser()
    if "/" not in spec and "\\" not in spec and not path.suffix:
        manifest = bundled_dir() / f"{spec}.json"
        if manifest.exists():
            return _load_manifest(manifest)
        if not path.exists():
            known = ", ".join(bundled_names()) or "none"
            raise WeightsError(f"unknown weights name {spec!r} (bundled: {known}); or give a path")
    prefix = _checkpoint_prefix(path)
    if prefix is not None:
        return load_tf1_checkpoint(prefix)
    if path.suffix == ".npz":
        path = path.with_suffix(".json")
    if not path.exists():
        raise WeightsError(f"{spec}: no such weights file")
    return _load_manifest(path)
