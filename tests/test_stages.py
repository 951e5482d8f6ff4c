"""stages.py: the develop after decoding as an ordered list of declared stages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from helpers import small_dng
from microisp_cli import stages
from microisp_cli.develop import develop, develop_to_file, make_runner, run_pipeline
from microisp_cli.options import FIELDS, DevelopOptions
from microisp_cli.raw import decode
from microisp_cli.stages import MOSAIC, NETWORK_RGB, PIXELS, STAGES, Stage
from microisp_cli.weights import load_weights


@pytest.fixture(scope="module")
def weights():
    return load_weights("mhc")


@pytest.fixture(scope="module")
def runner(weights):
    return make_runner(weights)


def test_the_stages_fit_one_after_another():
    names = [stage.name for stage in STAGES]
    assert len(set(names)) == len(names)
    assert STAGES[0].takes == MOSAIC and STAGES[-1].gives == PIXELS
    for before, after in zip(STAGES, STAGES[1:]):
        assert before.gives == after.takes, (before.name, after.name)
    for stage in STAGES:
        assert {stage.takes, stage.gives} <= set(stages.KINDS), stage.name
        assert set(stage.reads) <= set(FIELDS), stage.name  # parameters are options' fields
        assert (stage.apply is None) != (stage.per_tile is None), stage.name
    # the pointwise stages run inside the network stage: right after it
    network = names.index("network")
    assert STAGES[network].gives == NETWORK_RGB
    pointwise = [i for i, stage in enumerate(STAGES) if stage.per_tile is not None]
    assert pointwise == list(range(network + 1, network + 1 + len(pointwise)))


@pytest.mark.parametrize("changes, streamed", [
    ({}, True), ({"look": "sigmoid", "wb": "auto", "half_size": True, "exposure": 1.0}, True),
    ({"sharpen": 0.5}, False), ({"width": 100}, False), ({"lens_correction": True}, False),
])
def test_the_image_streams_unless_a_stage_takes_it_whole(changes, streamed):
    assert stages.streams(DevelopOptions(**changes)) is streamed


def test_which_stages_run():
    names = [stage.name for stage in stages.stages_for(DevelopOptions())]
    assert names == ["white balance", "exposure", "network", "render"]
    every = DevelopOptions(cfa="GRBG", size=300, sharpen=1.0, lens_correction=True)
    assert [s.name for s in stages.stages_for(every)] == [s.name for s in STAGES]
    # the embedded preview is pixels already: only the stages on pixels, and no lens correction
    preview = DevelopOptions(thumbnail=True, lens_correction=True, sharpen=1.0, size=300)
    assert [s.name for s in stages.stages_for(preview, PIXELS)] == ["sharpen", "resize"]
    assert stages.render_bits(DevelopOptions(bits=8)) == 8
    assert stages.render_bits(DevelopOptions(bits=8, lens_correction=True)) == 16


def _plugged(monkeypatch, stage: Stage, after: str | None = None) -> None:
    """``stage`` added to the list (after the stage named ``after``, else at the end), nothing
    else changed."""
    at = len(STAGES) if after is None else [s.name for s in STAGES].index(after) + 1
    monkeypatch.setattr(stages, "STAGES", (*STAGES[:at], stage, *STAGES[at:]))


def _inverted(frame, options, context):
    return dataclasses.replace(frame, image=np.iinfo(frame.image.dtype).max - frame.image)


def test_a_whole_image_stage_plugs_in_and_the_encoder_waits_for_it(tmp_path, monkeypatch, weights, runner):
    path = small_dng(tmp_path / "a.dng")
    plain = develop(path, weights, runner=runner, bits=8)
    _plugged(monkeypatch, Stage("invert", (), PIXELS, PIXELS, lambda o: True, apply=_inverted))
    assert not stages.streams(DevelopOptions())
    np.testing.assert_array_equal(develop(path, weights, runner=runner, bits=8), 255 - plain)
    # a PNG is written after the stage (it is not streamed row by row as the network makes them)
    develop_to_file(path, tmp_path / "a.png", weights, runner=runner)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), 255 - plain)


def test_a_pointwise_stage_runs_on_every_tile_and_keeps_the_stream(tmp_path, monkeypatch, weights, runner):
    path = small_dng(tmp_path / "a.dng", h=150, w=170)
    plain = develop(path, weights, runner=runner, bits=8, tile_size=64)
    tiles = []

    def invert(frame, options, context):
        return lambda tile: tiles.append(tile.shape) or 255 - tile

    _plugged(monkeypatch, Stage("invert", (), PIXELS, PIXELS, lambda o: True, per_tile=invert), after="render")
    assert stages.streams(DevelopOptions())
    develop_to_file(path, tmp_path / "a.png", weights, runner=runner, tile_size=64)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), 255 - plain)
    assert len(tiles) > 1  # tile by tile


def test_run_pipeline_takes_the_options_and_times_pack_and_render(tmp_path, weights, runner):
    path = small_dng(tmp_path / "a.dng")
    options = DevelopOptions(bits=16, look="sigmoid", exposure=0.5, tile_size=32)
    timings: dict[str, float] = {}
    image = run_pipeline(decode(path), weights.conditioning, runner, options, timings=timings)
    np.testing.assert_array_equal(image, develop(path, weights, runner=runner, options=options))
    assert timings["pack"] > 0 and timings["render"] > 0
    with pytest.raises(ValueError, match="reads the lens from the RAW file"):
        run_pipeline(decode(path), weights.conditioning, runner, options.replace(lens_correction=True))
