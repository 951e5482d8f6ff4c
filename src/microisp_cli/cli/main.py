"""The ``microisp`` command group. Commands live one per file beside this one.

Only click is imported here: ``microisp --help`` and ``--version`` must answer without loading
TensorFlow, LiteRT or rawpy. Library errors (:class:`MicroISPError`) become a one-line message.
"""

from __future__ import annotations

import importlib
import importlib.util
import os

# numpy's OpenBLAS threads spin after each product; the attention heads' products run beside the
# network (its own threads), where spinning BLAS threads would take the network's cores. Set
# before numpy is first imported; an explicit setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import click  # noqa: E402

from .. import __version__
from ..errors import MissingExtraError

#: command name -> "module:function" below this package, imported only when the command runs.
COMMANDS = {
    "develop": "develop:develop",
    "export": "export:export",
    "bench": "bench:bench",
    "train": "train:train",
    "eval": "evaluate:evaluate",
}


class MissingExtra(click.ClickException):
    """An option or command that needs an extra that is not installed: a usage error (exit 2),
    as docs/cli.md documents, in one line naming the install command."""

    exit_code = 2


class LazyGroup(click.Group):
    """A group whose commands are imported on first use, so --help stays instant."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in COMMANDS if self._spec_available(name)]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS or not self._spec_available(name):
            return None
        module, attr = COMMANDS[name].split(":")
        return getattr(importlib.import_module(f"{__package__}.{module}"), attr)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MissingExtraError as exc:  # wherever a command first needs an optional package
            raise MissingExtra(str(exc)) from None

    @staticmethod
    def _spec_available(name: str) -> bool:
        module = COMMANDS[name].split(":")[0]
        return importlib.util.find_spec(f"{__package__}.{module}") is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="microisp")
def cli() -> None:
    """microisp: develop Bayer RAW photos with MicroISP, a tiny learned ISP."""


def main() -> None:
    cli(prog_name="microisp")
