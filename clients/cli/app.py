"""The `croupier` command line: `croupier --help` lists the commands; each lives in its own module."""

from __future__ import annotations

import typer

from . import export, ope

app = typer.Typer(
    name="croupier",
    help="Croupier's command line: evaluate candidate policies offline, export decision logs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("ope", help=ope.HELP)(ope.ope)
app.command("export", help=export.HELP)(export.export)


def main() -> None:
    app()
