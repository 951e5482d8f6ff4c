"""Shared test helpers: the path to ../shared (skipping cleanly without it) and quiet TensorFlow."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[2] / "shared"


def shared_file(*parts: str) -> Path:
    """A file under ../shared, or skip the test saying it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/{'/'.join(parts)} (not present in this checkout)")
    return path


@pytest.fixture
def upstream_checkpoint() -> Path:
    shared_file("reference", "upstream-microisp", "MicroISP.ckpt.index")
    return SHARED / "reference" / "upstream-microisp" / "MicroISP.ckpt"
