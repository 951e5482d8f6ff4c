"""white_balance.py: the one white-balance policy (choose) and the develop's stage (apply)."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from microisp_cli.bayer import mosaic_rggb
from microisp_cli.colour import Kelvin
from microisp_cli.errors import WhiteBalanceFallback
from microisp_cli.mosaic import Mosaic, grey_world
from microisp_cli.white_balance import AS_SHOT, DAYLIGHT, GREY_WORLD, USER, apply, choose

AS_SHOT_GAINS = np.array([2.0, 1.0, 1.5], np.float32)
DAYLIGHT_GAINS = np.array([1.8, 1.0, 1.4], np.float32)
GREY = np.array([1.2, 1.0, 1.1], np.float32)
#: A camera -> sRGB matrix (rows summing to 1), as a DNG ColorMatrix gives it.
MATRIX = np.array([[1.8, -0.9, 0.1], [-0.2, 1.7, -0.5], [0.0, -0.5, 1.5]], np.float32)


def _choose(wanted, as_shot=AS_SHOT_GAINS, problem=None, daylight=DAYLIGHT_GAINS, matrix=MATRIX):
    measured = []

    def grey():
        measured.append(True)
        return GREY

    choice = choose(wanted, as_shot=as_shot, problem=problem, daylight=daylight, matrix=matrix, grey=grey)
    return choice, bool(measured)


def test_camera_takes_the_as_shot_gains_without_a_word():
    choice, measured = _choose("camera")
    assert choice.gains is AS_SHOT_GAINS and choice.source == AS_SHOT and choice.fallback is None
    assert not measured  # grey world is measured only when it is used


@pytest.mark.parametrize("daylight, gains, source", [(DAYLIGHT_GAINS, DAYLIGHT_GAINS, DAYLIGHT),
                                                     (None, GREY, GREY_WORLD)])
def test_camera_falls_back_to_daylight_then_grey_world_saying_why(daylight, gains, source):
    choice, _ = _choose("camera", as_shot=None, problem="the file has no as-shot white balance",
                        daylight=daylight)
    np.testing.assert_array_equal(choice.gains, gains)
    assert choice.source == source
    assert choice.fallback == f"the file has no as-shot white balance; using {source} gains instead"


def test_an_input_without_metadata_is_measured_without_a_word():
    choice, measured = _choose("camera", as_shot=None, problem=None, daylight=None, matrix=None)
    assert measured and choice.source == GREY_WORLD and choice.fallback is None


def test_auto_daylight_and_gains():
    auto, _ = _choose("auto")
    assert auto.source == GREY_WORLD and auto.fallback is None
    daylight, measured = _choose("daylight")
    assert daylight.gains is DAYLIGHT_GAINS and daylight.source == DAYLIGHT and not measured
    missing, _ = _choose("daylight", daylight=None)
    assert missing.source == GREY_WORLD and "no daylight white balance is known" in missing.fallback
    user, _ = _choose((2.5, 1.0, 1.25))
    np.testing.assert_array_equal(user.gains, [2.5, 1.0, 1.25])
    assert user.source == USER and user.fallback is None


def test_a_colour_temperature_needs_the_camera_matrices():
    kelvin, measured = _choose(Kelvin(5000, 2))
    assert kelvin.source == "5000K,+2 (colour temperature)" and kelvin.fallback is None and not measured
    assert kelvin.gains[1] == pytest.approx(1.0) and np.all(kelvin.gains > 0)
    for missing in ({"matrix": None}, {"daylight": None}):
        choice, measured = _choose(Kelvin(5000), **missing)
        assert measured and choice.source == GREY_WORLD
        assert choice.fallback.startswith("5000K needs the camera's colour matrix and daylight white balance")
    unusable, _ = _choose(Kelvin(5000), daylight=np.array([200.0, 1.0, 200.0], np.float32))
    assert unusable.source == GREY_WORLD and "gives unusable gains for this camera" in unusable.fallback


def _mosaic(cfa="RGGB", **fields) -> Mosaic:
    rgb = np.zeros((32, 48, 3))
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 0.2, 0.5, 0.35  # a cast grey world undoes
    data = np.round(mosaic_rggb(rgb, cfa) * 3000 + 64).astype(np.uint16)
    return Mosaic(data, cfa, 64, 4095, **fields)


def _applied(mosaic: Mosaic, wanted):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = apply(mosaic, wanted)
    return out, [str(w.message) for w in caught if w.category is WhiteBalanceFallback]


def test_apply_keeps_the_decoded_gains_and_says_the_fallback_once():
    as_shot = _mosaic(wb=AS_SHOT_GAINS, wb_source=AS_SHOT)
    out, lines = _applied(as_shot, "camera")
    assert out is as_shot and lines == []
    fallback = _mosaic(wb=[1.0, 1.0, 1.0], wb_source=GREY_WORLD, wb_problem="the file has no as-shot white balance")
    out, lines = _applied(fallback, "camera")
    np.testing.assert_array_equal(out.wb, grey_world(out.data, out.cfa, out.black, out.white))
    assert lines == ["the file has no as-shot white balance; using grey world gains instead"]
    out, lines = _applied(fallback, "auto")  # the file's gains are not used: nothing to say about them
    assert out.wb_source == GREY_WORLD and lines == []


def test_apply_measures_grey_world_for_the_order_the_mosaic_is_read_with():
    """After --force-cfa, grey world is measured for the new order (the gains differ)."""
    decoded = _mosaic("RGGB", wb_source=GREY_WORLD)
    decoded = dataclasses.replace(decoded, wb=grey_world(decoded.data, "RGGB", decoded.black, decoded.white))
    forced = dataclasses.replace(decoded, cfa="GRBG")
    out, _ = _applied(forced, "camera")
    np.testing.assert_array_equal(out.wb, grey_world(forced.data, "GRBG", forced.black, forced.white))
    assert not np.allclose(out.wb, decoded.wb)


def test_apply_to_a_mosaic_made_by_hand_keeps_its_gains():
    mosaic = _mosaic(wb=[2.0, 1.0, 1.5])
    assert _applied(mosaic, "camera")[0] is mosaic
    identity = _mosaic(wb=[2.0, 1.0, 1.5], daylight_wb=DAYLIGHT_GAINS)  # matrix_source "identity"
    out, lines = _applied(identity, Kelvin(5500))
    assert out.wb_source == GREY_WORLD and len(lines) == 1 and "needs the camera's colour matrix" in lines[0]
