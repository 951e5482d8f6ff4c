"""What many test files need: a small valid DNG and the CLI run in-process."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from microisp_cli.synthetic import random_mosaic
from microisp_cli.training.dng import write_dng

#: The as-shot white balance of the test DNGs (a camera's: no grey-world fallback).
NEUTRAL = (0.5, 1.0, 0.7)


def small_dng(path: Path, h: int = 60, w: int = 84, cfa: str = "GBRG", seed=0, mosaic=None,
              **kwargs) -> Path:
    """A small valid 12-bit DNG at ``path``: ``mosaic`` (default: ``synthetic.random_mosaic(h, w,
    seed)``), black 64, white 4095, as-shot neutral :data:`NEUTRAL`; ``kwargs`` are more
    ``write_dng`` arguments, or replace these."""
    data = random_mosaic(h, w, seed) if mosaic is None else mosaic
    args = {"black_level": 64, "white_level": 4095, "as_shot_neutral": NEUTRAL, **kwargs}
    return write_dng(path, data, cfa, **args)


def run_cli(*args):
    """``microisp ARGS`` in this process (click's runner); it must exit (not raise) and print
    no traceback."""
    from microisp_cli.cli.main import cli

    result = CliRunner().invoke(cli, [*map(str, args)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def output_lines(result) -> list[str]:
    """The non-blank lines a CLI run printed."""
    return [ln for ln in result.output.splitlines() if ln.strip()]


def develop(*args):
    """``microisp develop ARGS`` (:func:`run_cli`)."""
    return run_cli("develop", *args)
