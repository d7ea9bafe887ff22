"""The `croupier` command line: `croupier --help` lists the commands; each lives in its own module."""

from __future__ import annotations

import typer

from . import export, get, ope, runtime_calls

app = typer.Typer(
    name="croupier",
    help=(
        "Croupier's command line: show resources, ask a runtime for decisions and send rewards, evaluate candidate "
        "policies offline, export decision logs. Also a kubectl plugin: `kubectl croupier ...`."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("get", help=get.HELP)(get.get)
app.command("decide", help=runtime_calls.DECIDE_HELP)(runtime_calls.decide)
app.command("reward", help=runtime_calls.REWARD_HELP)(runtime_calls.reward)
app.command("ope", help=ope.HELP)(ope.ope)
app.command("export", help=export.HELP)(export.export)


def main() -> None:
    app()
