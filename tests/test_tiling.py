"""The tiled pipeline equals whole-frame inference; tile plans, small frames, the approximate mode."""

from __future__ import annotations

import os

import numpy as np
import pytest

from microisp_cli import runtimes
from microisp_cli.model import HEAD_SPAN, PUBLISHED, ModelConfig, init_parameters
from microisp_cli.tiling import (
    MIN_TILE_SIZE, ArraySource, feather_weights, fixed_windows,
    packed_tile_size, run_array, run_tiled, split_axis,
)
from microisp_cli.state_store import RAM_DIRECTORY, StateStore, available_memory, state_directory
from microisp_cli.weights import Conditioning, Weights, load_weights

TOLERANCE = 1e-4


def runner_for(weights: Weights, backend: str = "tf"):
    return runtimes.make_runner(backend, weights.config, weights.params)


def make_runner(config: ModelConfig, seed: int = 0, backend: str = "tf"):
    return runner_for(Weights("test", config, init_parameters(config, seed), Conditioning()), backend)


# The exactness tests run on both engines: TensorFlow (the reference; slow) and OpenVINO (the default).
ENGINES = pytest.fixture(scope="module", params=[pytest.param("tf", marks=pytest.mark.slow), "openvino"])


@ENGINES
def small_runner(request):
    return make_runner(ModelConfig(stages=1, blocks=1), seed=1, backend=request.param)


@ENGINES
def published_runner(request):
    return make_runner(PUBLISHED, seed=2, backend=request.param)


@ENGINES
def default_runner(request):
    return runner_for(load_weights("default"), request.param)


def frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A packed frame (h, w, 4) float32 in [0, 1): smooth structure plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    smooth = 0.5 + 0.3 * np.sin(6 * yy + 3 * xx)[..., None] * np.array([1.0, 0.8, 0.9, 0.6])
    return np.clip(smooth + 0.1 * rng.random((h, w, 4)), 0, 1).astype(np.float32)


def whole(runner, packed):
    return run_array(runner, packed, tile_size=0)


# --- tile plans -------------------------------------------------------------------------------
def test_split_axis_gives_near_equal_runs_covering_the_length():
    assert split_axis(10, 4) == [(0, 3), (3, 6), (6, 10)]
    assert split_axis(131, 1000) == [(0, 131)]
    for length, size in [(97, 8), (131, 50), (1, 1), (79, 79), (80, 79)]:
        runs = split_axis(length, size)
        assert runs[0][0] == 0 and runs[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(runs, runs[1:]))
        sizes = [b - a for a, b in runs]
        assert max(sizes) <= size and max(sizes) - min(sizes) <= 1


def test_fixed_windows_single_window_when_core_exceeds_frame():
    assert fixed_windows(20, 64, 3) == [((0, 20), (0, 20))]


def test_fixed_window_cores_are_never_shorter_than_two_halos_and_two():
    """83 rows in cores of 20 would be five runs of 16-17; with a halo of 9 each core needs 20
    (else a window reaches past its neighbour's core, which the exact scheme does not allow)."""
    assert split_axis(83, 20) == [(0, 16), (16, 33), (33, 49), (49, 66), (66, 83)]
    windows = fixed_windows(83, 20, 9)
    assert len(windows) == 4 and min(b - a for (a, b), _ in windows) >= 20
    assert all(w1[0] >= c0[0] for (c0, _), (_, w1) in zip(windows, windows[1:]))
    assert split_axis(10, 4, minimum=20) == [(0, 10)]


@pytest.mark.parametrize("bad", [2, MIN_TILE_SIZE - 2, MIN_TILE_SIZE + 1, -4])
def test_tile_size_must_be_even_and_large_enough(bad):
    with pytest.raises(ValueError, match="tile size"):
        packed_tile_size(bad)
    assert packed_tile_size(0) == 0 and packed_tile_size(MIN_TILE_SIZE) == MIN_TILE_SIZE // 2


def test_feather_ramps_of_neighbours_sum_to_one():
    left, right = feather_weights(40, 0, 6), feather_weights(40, 6, 0)
    np.testing.assert_allclose(left[-12:] + right[:12], 1.0, rtol=0, atol=1e-6)
    assert (left[:-12] == 1).all() and (right[12:] == 1).all()


def test_state_store_round_trips_rectangles(tmp_path):
    rng = np.random.default_rng(0)
    data = rng.random((23, 17, 5)).astype(np.float32)
    with StateStore((23, 17), 5, directory=str(tmp_path)) as store:
        store.write(0, 0, data[:10])
        store.write(10, 0, data[10:, :9])
        store.write(10, 9, data[10:, 9:])
        np.testing.assert_array_equal(store.read(0, 23, 0, 17), data)
        np.testing.assert_array_equal(store.read(4, 19, 3, 11), data[4:19, 3:11])
    assert list(tmp_path.iterdir()) == []  # unlinked


def test_state_store_bands_are_shared_maps_of_one_file(tmp_path):
    with StateStore((9, 4), 3, directory=str(tmp_path)) as store:
        store.band(2, 5)[:] = 7.0  # written through the map ...
        assert (store.read(0, 9, 0, 4)[2:5] == 7).all() and (store.read(0, 2, 0, 4) == 0).all()
        assert store.band(4, 6)[0, 1, 2] == 7.0  # ... and seen by another map of the same rows


def test_state_goes_to_ram_only_when_memory_is_plentiful_and_not_told_otherwise(tmp_path, monkeypatch):
    monkeypatch.delenv("TMPDIR", raising=False)
    assert state_directory(1, str(tmp_path)) == str(tmp_path)
    free = available_memory()
    if free is not None and os.path.isdir(RAM_DIRECTORY):
        assert state_directory(1) == RAM_DIRECTORY
        assert state_directory(free) is None  # not RAM_MARGIN times its size: the temporary folder
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert state_directory(1) is None  # tempfile then honours $TMPDIR


# --- exact tiling equals the whole frame --------------------------------------------------------
# every tile size below is smaller than the frame (a larger one takes the whole-frame path, and
# the test would compare that path with itself): 196 is one row of tiles, 130 two rows of three
@pytest.mark.parametrize("tile_size", [MIN_TILE_SIZE, 50, 96, 130, 196])
def test_small_model_tiled_equals_whole_frame(small_runner, tile_size):
    packed = frame(97, 131)
    assert tile_size // 2 < max(packed.shape[:2])  # tiled, not the whole-frame path
    expected = whole(small_runner, packed)
    got = run_array(small_runner, packed, tile_size)
    assert got.shape == (194, 262, 3)
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize(("shape", "tile_size"), [((83, 89), MIN_TILE_SIZE), ((97, 131), 68),
                                                   ((97, 131), 194)])
def test_published_layout_tiled_equals_whole_frame(published_runner, shape, tile_size):
    packed = frame(*shape, seed=1)
    assert tile_size // 2 < max(shape)  # tiled, not the whole-frame path
    expected = whole(published_runner, packed)
    assert np.abs(run_array(published_runner, packed, tile_size) - expected).max() <= TOLERANCE


@pytest.mark.parametrize("tile_size", [MIN_TILE_SIZE, 180])
def test_default_weights_tiled_equal_whole_frame(default_runner, tile_size):
    packed = frame(83, 101, seed=2)
    assert tile_size // 2 < max(packed.shape[:2])  # tiled, not the whole-frame path
    expected = whole(default_runner, packed)
    assert np.abs(run_array(default_runner, packed, tile_size) - expected).max() <= TOLERANCE


def test_attention_head_fed_band_by_band_equals_the_whole_frame():
    """OpenVINO's head is summed over blocks of HEAD_SPAN map rows as rows of tiles finish;
    a frame several blocks tall, in many rows of tiles, still equals the whole frame."""
    runner = make_runner(PUBLISHED, seed=4, backend="openvino")
    packed = frame(3 * 3 * HEAD_SPAN + 5, 90, seed=4)
    expected = whole(runner, packed)
    assert np.abs(run_array(runner, packed, MIN_TILE_SIZE) - expected).max() <= TOLERANCE


def test_rows_of_tiles_shorten_on_wide_frames_and_stay_exact(small_runner, monkeypatch):
    """Where a band of the frame's width would map more than STATE_BAND_BYTES, the rows of tiles
    get shorter (down to 2 * halo + 2 packed rows): the result does not change."""
    from microisp_cli import defaults

    packed = frame(97, 131)
    expected = whole(small_runner, packed)
    tiles = []
    monkeypatch.setattr(defaults, "STATE_BAND_BYTES", 1)
    got = run_array(small_runner, packed, 96, progress=lambda done, total: tiles.append(total))
    assert np.abs(got - expected).max() <= TOLERANCE
    assert tiles[0] > small_runner.config.num_segments * 3 * 3  # more rows of tiles than 96 gives


def test_openvino_engine_equals_the_tensorflow_network():
    """The OpenVINO graphs built from the parameters compute TensorFlow's network (float32)."""
    weights = load_weights("default")
    packed = frame(83, 101, seed=6)
    expected = whole(runner_for(weights, "tf"), packed)
    got = run_array(runner_for(weights, "openvino"), packed, MIN_TILE_SIZE)
    # the residual-interpolation base divides by local variances (+ 1e-5): the two engines'
    # float32 roundings differ by up to 2e-5 there (5e-5, test_lmmse_base's engine tolerance)
    assert np.abs(got - expected).max() <= 5e-5


def test_fixed_windows_have_one_shape_and_hold_core_plus_halo():
    for length, core, halo in [(97, 40, 5), (131, 50, 16), (40, 100, 3), (256, 64, 0)]:
        pairs = fixed_windows(length, core, halo)
        assert [c for c, _ in pairs] == split_axis(length, core)
        assert len({b - a for _, (a, b) in pairs}) == 1
        for (c0, c1), (w0, w1) in pairs:
            assert 0 <= w0 <= max(0, c0 - halo) and min(length, c1 + halo) <= w1 <= length


def test_frame_smaller_than_one_tile_equals_whole_frame(published_runner):
    packed = frame(85, 90, seed=3)
    assert np.abs(run_array(published_runner, packed, 1024) - whole(published_runner, packed)).max() \
        <= TOLERANCE


def test_progress_reports_every_tile_of_every_segment(small_runner):
    calls = []
    run_array(small_runner, frame(97, 131), 100, progress=lambda d, t: calls.append((d, t)))
    tiles = len(split_axis(97, 50)) * len(split_axis(131, 50))
    total = small_runner.config.num_segments * tiles
    assert calls == [(i, total) for i in range(1, total + 1)]


def test_unknown_attention_mode_is_rejected(small_runner):
    with pytest.raises(ValueError, match="attention"):
        run_array(small_runner, frame(80, 80), 64, attention="global")


# --- frames smaller than the attention chain ------------------------------------------------------
@pytest.mark.parametrize("shape", [(40, 131), (97, 12), (5, 3), (1, 1)])
def test_small_frames_are_reflect_padded_to_the_minimum_and_cropped(published_runner, shape):
    h, w = shape
    minimum = PUBLISHED.min_packed_size
    packed = frame(h, w, seed=4)
    padded = np.pad(packed, ((0, max(0, minimum - h)), (0, max(0, minimum - w)), (0, 0)), "reflect")
    expected = whole(published_runner, padded)[:2 * h, :2 * w]
    for tile_size in (0, 40, 512):
        got = run_array(published_runner, packed, tile_size)  # 40: several tiles of the padded frame
        assert got.shape == (2 * h, 2 * w, 3)
        assert np.abs(got - expected).max() <= TOLERANCE


def test_small_frame_in_sink_calls_stays_inside_the_frame(published_runner):
    seen = []
    run_tiled(published_runner, ArraySource(frame(30, 20)), lambda y, x, rgb: seen.append(
        (y, x) + rgb.shape[:2]), tile_size=32)
    covered = np.zeros((60, 40), int)
    for y, x, h, w in seen:
        assert y + h <= 60 and x + w <= 40
        covered[y:y + h, x:x + w] += 1
    assert (covered == 1).all()


# --- approximate per-tile attention ---------------------------------------------------------------
def test_tile_attention_blends_to_exact_for_a_model_without_attention():
    """With no attention blocks tiles are independent, so the feathered result must be exact."""
    runner = make_runner(ModelConfig(stages=2, blocks=0), seed=5)
    packed = frame(61, 77, seed=5)
    expected = whole(runner, packed)
    for tile_size in (MIN_TILE_SIZE, 100):
        got = run_array(runner, packed, tile_size, attention="tile")
        assert np.abs(got - expected).max() <= TOLERANCE


def test_tile_attention_covers_the_frame_once_and_equals_exact_with_one_tile(small_runner):
    packed = frame(97, 131)
    seen = np.zeros((194, 262), int)

    def sink(y, x, rgb):
        seen[y:y + rgb.shape[0], x:x + rgb.shape[1]] += 1

    run_tiled(small_runner, ArraySource(packed), sink, 64, attention="tile")
    assert (seen == 1).all()
    one = run_array(small_runner, packed, 1000, attention="tile")
    assert np.abs(one - whole(small_runner, packed)).max() <= TOLERANCE


def test_tile_attention_windows_all_have_one_shape(small_runner):
    """So that a model compiled for one input size can run every window."""
    from microisp_cli.runtimes.base import SegmentRunner
    from microisp_cli.runtimes.tensorflow import TensorFlowRunner

    class Recording(SegmentRunner):
        def __init__(self, runner: TensorFlowRunner):
            self.inner, self.config, self.shapes = runner, runner.config, set()

        def segment(self, index, x, state=None, attention=None):
            self.shapes.add(x.shape)
            return self.inner.segment(index, x, state, attention)

        def head(self, index, samples):
            return self.inner.head(index, samples)

    recording = Recording(small_runner)
    packed = frame(197, 231)
    got = run_array(recording, packed, 100, attention="tile")
    assert len(recording.shapes) == 1 and got.shape == (394, 462, 3)


def test_the_default_tile_size_follows_the_network():
    """A network with attention keeps state between windows: 512; a one-pass network pays only its
    windows' halo: 1024; a size asked for is kept."""
    from microisp_cli import defaults
    from microisp_cli.tile_plans import tile_size_for

    with_attention, one_pass = ModelConfig(stages=2, blocks=1), ModelConfig(stages=2, blocks=1, attention=False)
    assert tile_size_for(with_attention, None) == defaults.TILE_SIZE == 512
    assert tile_size_for(one_pass, None) == defaults.ONE_PASS_TILE_SIZE == 1024
    assert tile_size_for(one_pass, 256) == 256 and tile_size_for(one_pass, 0) == 0
