"""The yardsticks (LibRaw, darktable, RawTherapee) render a synthetic DNG neutrally: their colour
must match the truth before their scores can be trusted."""

import numpy as np
import pytest

from microisp_cli import peers
from microisp_cli.training import data
from microisp_cli.training.dng import write_dng
from microisp_cli.training.evaluate import psnr


def smooth_scene(h=256, w=320):  # rawtherapee-cli refuses to load a 192x256 DNG:
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w])[:, None, None]
    return np.stack([0.2 + 0.6 * x, 0.3 + 0.4 * y, 0.7 - 0.5 * x * y], -1).astype(np.float32)


@pytest.mark.parametrize("name", [n if n.startswith("LibRaw") else pytest.param(n, marks=pytest.mark.slow)
                                  for n in peers.PEERS])  # the external programs and demosaicnet: slow
def test_peer_renders_the_reference_colour(tmp_path, name):
    if peers.missing(name):
        pytest.skip(f"{name}: {peers.missing(name)}")
    capture = data.Capture("Sony ILCE-7", "GRBG", 12, 128, (0.55, 1.0, 0.7), 0.8, 0.0, 0.0)
    raw, target = data.unprocess(smooth_scene(), capture, np.random.default_rng(0))
    path = write_dng(tmp_path / "scene.dng", raw, capture.cfa, capture.black, capture.white,
                     data.camera_matrix(capture.camera), capture.neutral, camera=capture.camera)
    out = peers.render(name, path)
    assert out.shape == target.shape and out.dtype == np.float32
    inner = (slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(out[inner].mean((0, 1)), target[inner].mean((0, 1)), atol=0.01)
    assert psnr(out[inner], target[inner]) > 35


def test_unknown_peer_is_a_typed_error():
    with pytest.raises(peers.PeerError, match="unknown peer"):
        peers.render("darktable XYZ", "x.dng")
