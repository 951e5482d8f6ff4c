"""demosaicnet (Gharbi, Chaurasia, Paris and Durand, "Deep Joint Demosaicking and Denoising",
SIGGRAPH Asia 2016) as a learned yardstick: the Bayer network of the ``demosaicnet`` package
(MIT licence), from the weights it bundles, run on OpenVINO without PyTorch.

The weights are only read from an installed package (``pip install --no-deps demosaicnet``:
its ``data/bayer.pth``, an old-format PyTorch pickle, read by :func:`read_torch_legacy`); they are
never shipped. The network is the package's ``BayerDemosaick`` (15 valid 3x3 convolutions of 64
features at half resolution after a 2x2 stride-2 packing convolution, a filter/mask product, a
1x1 residual, a grouped 2x2 transposed convolution to full resolution, and a full-resolution 3x3
and 1x1 over the mosaic and the residual): about 142k MAC per pixel. It was trained on sRGB
images mosaicked in GRBG order with values in [0, 1], so it runs here in that domain: the file is
decoded and conditioned as ``microisp develop`` does it (black level, white level, as-shot white
balance), encoded with the sRGB curve, shifted one column to GRBG, demosaicked, decoded back to
linear and rendered by :func:`render.render_tile` with the file's colour matrix: only the
demosaic differs from microisp's own output.
"""

from __future__ import annotations

import collections
import functools
import importlib.util
import pickle
import struct
from pathlib import Path

import numpy as np

from .errors import PeerError

DEPTH, WIDTH = 15, 64
#: Context the valid convolutions eat on each side, full-resolution pixels (2 x 15 + 1).
CROP = 2 * DEPTH + 1


def weights_path() -> Path | None:
    """``data/bayer.pth`` of the installed ``demosaicnet`` package, or None."""
    try:
        spec = importlib.util.find_spec("demosaicnet")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "bayer.pth"
    return path if path.is_file() else None


def read_torch_legacy(path: str | Path) -> dict[str, np.ndarray]:
    """A state dict saved by PyTorch's legacy (pre-1.6, non-zip) ``torch.save``, as numpy arrays:
    five pickles (magic number, protocol, system info, the object with storages as persistent
    ids, the storage keys), then each storage as an int64 element count and its raw data. Float32
    tensors only; nothing but tensors and ordered dicts is unpickled."""

    class Tensor:
        def __init__(self, key, offset, size, stride):
            self.key, self.offset, self.size, self.stride = key, offset, tuple(size), tuple(stride)

    def rebuild(storage, offset, size, stride, *_):
        return Tensor(storage, offset, size, stride)

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return rebuild
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if module == "torch" and name == "FloatStorage":
                return name
            raise pickle.UnpicklingError(f"unexpected {module}.{name} in {path}")

        def persistent_load(self, pid):
            if pid[0] != "storage" or pid[1] != "FloatStorage":
                raise pickle.UnpicklingError(f"unexpected storage {pid[:2]} in {path}")
            return pid[2]

    with open(path, "rb") as f:
        for _ in range(3):  # magic number, protocol version, system info
            pickle.load(f)
        state = Reader(f).load()
        keys = pickle.load(f)
        storages = {}
        for key in keys:
            (count,) = struct.unpack("<q", f.read(8))
            storages[key] = np.frombuffer(f.read(4 * count), "<f4")
    out = {}
    for name, t in state.items():
        data = storages[t.key]
        out[name] = np.lib.stride_tricks.as_strided(data[t.offset:], t.size, [4 * s for s in t.stride]).copy()
    return out


@functools.cache
def _compiled(height: int, width: int):
    """The network for a padded (1, 3, height, width) GRBG mosaic, compiled for the CPU."""
    import openvino as ov

    path = weights_path()
    if path is None:
        raise PeerError("demosaicnet: its weights come from the demosaicnet package: "
                        "pip install --no-deps demosaicnet")
    w = read_torch_legacy(path)
    ops = ov.opset13
    const = lambda a: ops.constant(np.ascontiguousarray(a, np.float32))  # noqa: E731

    def conv(x, name, stride=1):
        y = ops.convolution(x, const(w[name + ".weight"]), [stride] * 2, [0, 0], [0, 0], [1, 1])
        return ops.add(y, const(w[name + ".bias"].reshape(1, -1, 1, 1)))

    mosaic = ops.parameter([1, 3, height, width], np.float32, name="mosaic")
    x = conv(mosaic, "main_processor.pack_mosaic", stride=2)
    for i in range(1, DEPTH + 1):
        x = ops.relu(conv(x, f"main_processor.conv{i}"))
    filters = ops.slice(x, [0], [WIDTH], [1], [1])
    masks = ops.slice(x, [WIDTH], [2 * WIDTH], [1], [1])
    residual = conv(ops.multiply(filters, masks), "residual_predictor")
    # ConvTranspose2d(12, 3, 2, stride=2, groups=3): weight (12, 1, 2, 2) -> (3, 4, 1, 2, 2)
    up = ops.group_convolution_backprop_data(residual, const(w["upsampler.weight"].reshape(3, 4, 1, 2, 2)),
                                             [2, 2], pads_begin=[0, 0], pads_end=[0, 0])
    up = ops.add(up, const(w["upsampler.bias"].reshape(1, 3, 1, 1)))
    size = 2 * (height // 2 - 2 * DEPTH)
    margin = (height - size) // 2, (width - (2 * (width // 2 - 2 * DEPTH))) // 2
    cropped = ops.slice(mosaic, [margin[0], margin[1]], [margin[0] + size, width - margin[1]], [1, 1], [2, 3])
    x = ops.relu(conv(ops.concat([cropped, up], 1), "fullres_processor.post_conv"))
    out = conv(x, "fullres_processor.output")
    model = ov.Model([out], [mosaic], "demosaicnet")
    return ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})


def demosaic(encoded: np.ndarray) -> np.ndarray:
    """An RGGB mosaic (H, W), even sides, values in [0, 1] after the sRGB curve -> (H, W, 3)
    RGB in the same domain, by demosaicnet (reflect-padded, so the output has the input's size)."""
    height, width = encoded.shape
    pad = CROP + 1  # even, so reflection keeps the CFA phase; one more column on the left: GRBG
    padded = np.pad(encoded, ((pad, pad), (pad + 1, pad - 1)), mode="reflect")
    planes = np.zeros((1, 3) + padded.shape, np.float32)
    planes[0, 1, 0::2, 0::2] = padded[0::2, 0::2]  # G R / B G
    planes[0, 0, 0::2, 1::2] = padded[0::2, 1::2]
    planes[0, 2, 1::2, 0::2] = padded[1::2, 0::2]
    planes[0, 1, 1::2, 1::2] = padded[1::2, 1::2]
    out = _compiled(*padded.shape)(planes)[0][0].transpose(1, 2, 0)
    # out[i, j] is padded[i + CROP, j + CROP], that is the frame's (i + CROP - pad, j + CROP - pad - 1)
    dy, dx = pad - CROP, pad + 1 - CROP
    return out[dy:dy + height, dx:dx + width]


def render(path: str | Path) -> np.ndarray:
    """``path`` developed with demosaicnet's demosaic (module doc): (H, W, 3) float32 sRGB in
    [0, 1], orientation as stored."""
    from .bayer import PackedBayerSource
    from .colour import srgb_decode, srgb_encode
    from .raw import decode
    from .render import render_tile
    from .weights import Conditioning

    mosaic = decode(path)
    conditioning = Conditioning()
    source = PackedBayerSource.from_mosaic(mosaic, conditioning)
    h, w = source.shape
    packed = np.clip(source.read(0, h, 0, w), 0.0, 1.0)
    full = packed.reshape(h, w, 2, 2).transpose(0, 2, 1, 3).reshape(2 * h, 2 * w)  # R Gr / Gb B
    rgb = srgb_decode(np.clip(demosaic(srgb_encode(full).astype(np.float32)), 0.0, 1.0)).astype(np.float32)
    top, left, height, width = source.crop
    out = render_tile(rgb[top:top + height, left:left + width], "linear", mosaic.cam_to_srgb, 16,
                      clip_level=float(mosaic.wb.min()))
    return out.astype(np.float32) / 65535.0
