"""The option tables of docs/cli.md, generated from the commands' own Click help, so they cannot drift.

    python -m microisp_cli.cli.docs docs/cli.md          # rewrite the generated part
    python -m microisp_cli.cli.docs docs/cli.md --check  # exit 1 if it is out of date (tests do this)

The generated part lies between :data:`BEGIN` and :data:`END`; everything else in the file is
written by hand.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from .main import COMMANDS, cli

BEGIN = "<!-- BEGIN GENERATED OPTION TABLES: python -m microisp_cli.cli.docs docs/cli.md -->"
END = "<!-- END GENERATED OPTION TABLES -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip()


def _context(command: click.Command, name: str) -> click.Context:
    """``command``'s context as ``microisp NAME`` makes it (the group's settings, then its own)."""
    group = click.Context(cli, info_name="microisp", **cli.context_settings)
    return click.Context(command, info_name=name, parent=group, **command.context_settings)


def options_table(command: click.Command, name: str) -> str:
    """A Markdown table of ``command``'s options: names and value, default, help."""
    ctx = _context(command, name)
    rows = ["| option | default | what it does |", "|---|---|---|"]
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None:
            continue
        names, text = record
        default, extras = "", []
        found = re.search(r"  \[([^\[\]]*)\]$", text)  # what Click appends: default, range, required
        if found:
            text = text[:found.start()]
            for extra in found.group(1).split("; "):
                if extra.startswith("default: "):
                    default = f"`{_cell(extra[9:])}`"
                elif extra == "required":
                    default = "required"
                else:
                    extras.append(extra)
        names = f"`{_cell(names)}`" + (f" ({_cell(', '.join(extras))})" if extras else "")
        rows.append(f"| {names} | {default} | {_cell(text)} |")
    return "\n".join(rows)


def generated() -> str:
    """The generated part: one section per command, with its usage line and options."""
    parts = [BEGIN, ""]
    ctx = click.Context(cli, info_name="microisp")
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        if command is None:
            continue
        usage = " ".join(command.collect_usage_pieces(_context(command, name)))
        summary = (command.help or "").split("\n\n")[0].replace("\n", " ").strip()
        parts += [f"### `microisp {name}`", "", summary, "", f"`microisp {name} {usage}`", "",
                  options_table(command, name), ""]
    return "\n".join(parts + [END])


def update(path: Path, check: bool = False) -> bool:
    """Write the generated part into ``path`` (between the markers); with ``check``, only say
    whether it is current. Returns True when the file is (now) current."""
    text = path.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + generated() + text[stop:]
    if check:
        return new == text
    path.write_text(new)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md")
    current = update(target, check="--check" in sys.argv)
    if not current:
        print(f"{target} is out of date: run python -m microisp_cli.cli.docs {target}", file=sys.stderr)
    sys.exit(0 if current else 1)
