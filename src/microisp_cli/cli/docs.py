"""The option tables of docs/cli.md, generated from the commands' own Click help, so they cannot drift.

    python -m microisp_cli.cli.docs docs/cli.md          # rewrite the generated part
    python -m microisp_cli.cli.docs docs/cli.md --check  # exit 1 if it is out of date (tests do this)

The generated part lies between :data:`BEGIN` and :data:`END`; everything else in the file is
written by hand.
"""

from __future__ import annotations

import os
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


def between(text: str, start: str, end: str, body: str, heading: str | None = None) -> str:
    """``text`` with what lies between the markers ``start`` and ``end`` replaced by ``body``
    (the markers kept, on lines of their own). Without both markers, a lone one is dropped and the
    block goes right after ``heading`` (appended with it when absent), or at the end. The one
    helper every generated section of docs/ is written with."""
    block = f"{start}\n{body}\n{end}"
    if start in text and end in text.split(start, 1)[1]:
        head, rest = text.split(start, 1)
        return head + block + rest.split(end, 1)[1]
    text = "\n".join(line for line in text.split("\n") if line.strip() not in (start, end))
    if heading and heading in text:
        at = text.index(heading) + len(heading)
        return text[:at] + "\n\n" + block + "\n\n" + text[at:].lstrip("\n")
    return text.rstrip("\n") + "\n\n" + (f"{heading}\n\n" if heading else "") + block + "\n"


def write_between(path: Path, start: str, end: str, body: str, heading: str | None = None) -> None:
    """:func:`between` applied to the file at ``path`` (created if missing), written atomically."""
    path = Path(path)
    text = between(path.read_text() if path.exists() else "", start, end, body, heading)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def update(path: Path, check: bool = False) -> bool:
    """Write the generated part into ``path`` (between the markers); with ``check``, only say
    whether it is current. Returns True when the file is (now) current."""
    text = Path(path).read_text()
    body = generated()[len(BEGIN) + 1:-len(END) - 1]
    if check:
        return between(text, BEGIN, END, body) == text
    write_between(path, BEGIN, END, body)
    return True


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/cli.md")
    current = update(target, check="--check" in sys.argv)
    if not current:
        print(f"{target} is out of date: run python -m microisp_cli.cli.docs {target}", file=sys.stderr)
    sys.exit(0 if current else 1)
