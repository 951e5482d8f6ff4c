"""develop.py: the library entry points, end to end on small DNGs made here."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import small_dng
from microisp_cli.bayer import mosaic_rggb
from microisp_cli.develop import develop, develop_to_file, make_runner
from microisp_cli.encode import write_image
from microisp_cli.errors import InputError, MicroISPError, OutputError
from microisp_cli.options import DevelopOptions
from microisp_cli.raw import CFA_PATTERNS, decode
from microisp_cli.render import srgb_encode
from microisp_cli.streaming import RowBands
from microisp_cli.training.dng import write_dng
from microisp_cli.weights import load_weights

NEUTRAL = np.array([0.5, 1.0, 0.8])  # camera RGB of white: gains 2, 1, 1.25


@pytest.fixture(scope="module")
def weights():
    """The ``mhc`` preset: the published topology returning the Malvar-He-Cutler demosaic
    exactly, a known reference for checking the pipeline's geometry and colour."""
    return load_weights("mhc")


@pytest.fixture(scope="module")
def runner(weights):
    return make_runner(weights)


def _scene(h, w):
    """A smooth linear RGB scene in [0.05, 0.85] (the MHC base reproduces it away from borders)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    return np.stack([0.1 + 0.7 * x / w, 0.1 + 0.6 * y / h, 0.4 + 0.2 * (x + y) / (w + h)], -1)


def _write(path, scene, cfa="RGGB", bits=12, black=64, orientation=1):
    white = 2 ** bits - 1
    camera = scene * NEUTRAL  # what the sensor saw before white balance
    mosaic = np.round(mosaic_rggb(camera, cfa) * (white - black) + black).astype(np.uint16)
    return write_dng(path, mosaic, cfa, black_level=black, white_level=white,
                     as_shot_neutral=NEUTRAL, orientation=orientation)


@pytest.mark.parametrize("cfa", CFA_PATTERNS)
@pytest.mark.parametrize("h, w", [(96, 130), (97, 131)])
def test_every_cfa_and_odd_size_develops_to_the_scene(tmp_path, weights, runner, cfa, h, w):
    scene = _scene(h, w)
    path = _write(tmp_path / "x.dng", scene, cfa)
    image = develop(path, weights, runner=runner, bits=16, tile_size=0)
    assert image.shape == (h, w, 3) and image.dtype == np.uint16  # exactly the visible size
    expected = srgb_encode(scene.astype(np.float32)) * 65535
    error = np.abs(image.astype(np.float64) - expected)[3:-3, 3:-3]
    assert error.max() < 0.01 * 65535, error.max()


def test_bundled_default_weights_develop_the_scene(tmp_path):
    """The trained default: close to the scene inside the frame, in every CFA order."""
    default = load_weights()
    runner = make_runner(default)
    scene = _scene(96, 130)
    expected = srgb_encode(scene.astype(np.float32)) * 65535
    for cfa in CFA_PATTERNS:
        image = develop(_write(tmp_path / f"{cfa}.dng", scene, cfa), default, runner=runner, bits=16)
        error = np.abs(image.astype(np.float64) - expected)[8:-8, 8:-8]
        assert error.mean() < 0.01 * 65535, (cfa, error.mean())


@pytest.mark.parametrize("bits", [10, 14])
def test_bit_depths_and_8_bit_output(tmp_path, weights, runner, bits):
    scene = _scene(64, 80)
    image = develop(_write(tmp_path / "x.dng", scene, "GRBG", bits=bits), weights, runner=runner, bits=8,
                    tile_size=0)
    assert image.dtype == np.uint8
    expected = srgb_encode(scene.astype(np.float32)) * 255
    assert np.abs(image.astype(np.float64) - expected)[3:-3, 3:-3].max() <= 3


@pytest.mark.parametrize("tiff, rotate", [(3, 2), (6, -1), (8, 1)])
def test_orientation_is_applied(tmp_path, weights, runner, tiff, rotate):
    scene = _scene(60, 90)
    upright = develop(_write(tmp_path / "a.dng", scene), weights, runner=runner, tile_size=0)
    turned = develop(_write(tmp_path / "b.dng", scene, orientation=tiff), weights, runner=runner,
                     tile_size=0)
    np.testing.assert_array_equal(turned, np.rot90(upright, rotate))


def test_tiled_equals_whole_frame(tmp_path, weights, runner):
    path = _write(tmp_path / "x.dng", _scene(200, 230), "BGGR")
    whole = develop(path, weights, runner=runner, tile_size=0)
    tiled = develop(path, weights, runner=runner, tile_size=64, attention="exact")
    assert tiled.shape == whole.shape
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1


def test_progress_reports_tiles(tmp_path, weights, runner):
    calls = []
    develop(_write(tmp_path / "x.dng", _scene(200, 230)), weights, runner=runner, tile_size=64,
            progress=lambda done, total: calls.append((done, total)))
    assert calls and calls[-1][0] == calls[-1][1]


def test_develop_to_file(tmp_path, weights, runner):
    path = _write(tmp_path / "x.dng", _scene(40, 50))
    out = develop_to_file(path, tmp_path / "x.png", weights, runner=runner)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(OutputError, match="exists"):
        develop_to_file(path, out, weights, runner=runner)
    with pytest.raises(OutputError, match="8-bit"):
        develop_to_file(path, tmp_path / "x.jpg", weights, runner=runner, bits=16)
    tif = develop_to_file(path, tmp_path / "x.tif", weights, runner=runner)
    import tifffile

    assert tifffile.imread(tif).dtype == np.uint16  # TIFF defaults to 16 bits


@pytest.mark.parametrize("tiff", [1, 2, 3, 6])  # upright, mirrored, turned 180, turned 90
def test_png_encoded_beside_the_network_is_the_developed_image(tmp_path, weights, runner, tiff):
    """develop_to_file compresses PNG rows in a thread as tiles finish: same bytes as encoding the
    finished image, whatever the orientation (rows in order, reversed, or turned into columns)."""
    path = _write(tmp_path / "x.dng", _scene(150, 170), orientation=tiff)
    image = develop(path, weights, runner=runner, bits=8, tile_size=64)
    write_image(tmp_path / "reference.png", image)
    develop_to_file(path, tmp_path / "x.png", weights, runner=runner, tile_size=64, strip_metadata=True)
    assert (tmp_path / "x.png").read_bytes() == (tmp_path / "reference.png").read_bytes()


@pytest.mark.parametrize("mirror", [False, True])
def test_row_bands_hold_only_the_rows_not_yet_read(mirror):
    image = np.arange(10 * 4 * 3, dtype=np.uint8).reshape(10, 4, 3)
    bands = RowBands(image.shape, np.uint8, mirror=mirror)
    for y0, y1 in [(0, 3), (3, 6), (6, 10)]:  # rows of tiles, each filled by two tiles
        bands.band(y0, y1)[:, :2] = image[y0:y1, :2]
        bands.band(y0, y1)[:, 2:] = image[y0:y1, 2:]
    expected = image[:, ::-1] if mirror else image
    np.testing.assert_array_equal(bands[0:4], expected[0:4])  # across two bands
    np.testing.assert_array_equal(bands[4:7], expected[4:7])
    assert sorted(bands._bands) == [3, 6]  # rows 0-2 were read: their band is gone
    np.testing.assert_array_equal(bands[7:10], expected[7:10])
    assert sorted(bands._bands) == [6] and len(bands) == 10


def test_png_unwritable_output_stops_the_network_and_leaves_nothing(tmp_path, weights, runner):
    path = _write(tmp_path / "x.dng", _scene(150, 170))
    (tmp_path / "out").write_text("a file, not a folder")
    tiles = []
    with pytest.raises(OutputError, match="cannot write there"):
        develop_to_file(path, tmp_path / "out" / "x.png", weights, runner=runner, tile_size=64,
                        progress=lambda done, total: tiles.append(total))
    assert len(tiles) < tiles[0]  # stopped before the last tile
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.dng"]


def test_png_interrupted_mid_frame_leaves_no_partial_file(tmp_path, weights, runner):
    path = _write(tmp_path / "x.dng", _scene(150, 170))

    def interrupt(done, total):
        if done == total - 2:  # the last segment: rows have reached the encoder already
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        develop_to_file(path, tmp_path / "x.png", weights, runner=runner, tile_size=64,
                        progress=interrupt)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dng"]


def test_bad_input_writes_nothing(tmp_path, weights, runner):
    bad = tmp_path / "x.dng"
    bad.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        develop_to_file(bad, tmp_path / "x.png", weights, runner=runner)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dng"]


def test_unknown_backend(weights):
    with pytest.raises(MicroISPError, match="unknown backend"):
        make_runner(weights, backend="nnapi")


@pytest.mark.slow
def test_upstream_preset_matches_the_published_script(tmp_path, upstream_checkpoint):
    """10-bit RGGB: our pipeline with the published weights = the published inference script."""
    weights = load_weights(upstream_checkpoint)
    rng = np.random.default_rng(3)
    scene = _scene(180, 220) * rng.uniform(0.9, 1.1, (180, 220, 1))
    raw = np.round(mosaic_rggb(scene, "RGGB") * 1023).astype(np.uint16)
    path = write_dng(tmp_path / "imx586.dng", raw, "RGGB", black_level=0, white_level=1023)
    ours = develop(path, weights, bits=8, tile_size=0)
    # the published script, written out: its channel order and scaling, the network, *255, uint8
    f = raw.astype(np.float32)
    packed = np.dstack((f[1::2, 1::2], f[0::2, 1::2], f[0::2, 0::2], f[1::2, 0::2])) / (4 * 255)
    out = weights.build()(packed[None]).numpy()[0]
    script = np.uint8(np.clip(out * 255, 0, 255))
    assert ours.shape == script.shape
    assert np.abs(ours.astype(int) - script.astype(int)).max() <= 1


def test_cfa_override_for_wrong_metadata(tmp_path, weights, runner):
    scene = _scene(64, 80)
    right = _write(tmp_path / "right.dng", scene, "RGGB")
    mosaic = np.round(mosaic_rggb(scene * NEUTRAL, "RGGB") * (4095 - 64) + 64).astype(np.uint16)
    wrong = write_dng(tmp_path / "wrong.dng", mosaic, "GBRG", black_level=64, white_level=4095,
                      as_shot_neutral=NEUTRAL)  # tagged GBRG, really RGGB
    expected = develop(right, weights, runner=runner, tile_size=0)
    assert np.abs(develop(wrong, weights, runner=runner, tile_size=0).astype(int) - expected).max() > 1000
    np.testing.assert_array_equal(develop(wrong, weights, runner=runner, tile_size=0, cfa="RGGB"), expected)


@pytest.mark.parametrize("output", ["linear", "srgb"])
def test_the_reported_matrix_is_the_one_applied(tmp_path, output):
    """Weights that draw sRGB get no camera matrix in render, and the record says so."""
    from microisp_cli import colour
    from microisp_cli.batch_step import develop_file
    from microisp_cli.model import ModelConfig, init_parameters
    from microisp_cli.weights import Conditioning, Weights

    xyz_to_cam = np.array([[0.65, -0.12, -0.09], [-0.38, 1.16, 0.25], [-0.08, 0.19, 0.65]])
    dng = small_dng(tmp_path / "a.dng", color_matrix=xyz_to_cam)
    config = ModelConfig(stages=1, blocks=0, features=3)
    weights = Weights("tiny", config, init_parameters(config, 0), Conditioning(output=output))
    result = develop_file(dng, tmp_path / "a.png", weights, options=DevelopOptions(colorspace="display-p3"))
    assert result.status == "done", result.message
    camera = np.eye(3) if output == "srgb" else decode(dng).cam_to_srgb
    np.testing.assert_allclose(result.used.matrix, colour.from_srgb("display-p3") @ camera, atol=1e-6)
