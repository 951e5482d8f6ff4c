"""docs/cli.md: the option tables are the commands' own help (regenerate them when options change)."""

from __future__ import annotations

from pathlib import Path

from microisp_cli.cli.docs import BEGIN, END, generated, update

CLI_MD = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def test_option_tables_are_current():
    assert update(CLI_MD, check=True), "run: python -m microisp_cli.cli.docs docs/cli.md"


def test_every_develop_option_is_in_the_reference():
    from microisp_cli.cli.develop import develop

    text = generated()
    assert text.startswith(BEGIN) and text.endswith(END)
    for param in develop.params:
        for name in getattr(param, "opts", []):
            if name.startswith("--"):
                assert name in text, name
