"""`croupier export`: a runtime's decision log, joined with rewards, as JSON lines or Parquet."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.policy_file import load_policy
from croupier.runtime.store.export import ExportError, export_jsonl, export_parquet
from croupier.runtime.store.sqlite import database_path

HELP = "Export a runtime's decision log (every decision with its full probability vector and joined reward)."


class Format(StrEnum):
    JSONL = "jsonl"
    PARQUET = "parquet"


def export(
    *,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Output file (standard output when left out; JSON lines only)."),
    ] = None,
    policy: Annotated[
        Path | None, typer.Option(help="The DecisionPolicy manifest the runtime serves (finds its log in --state-dir).")
    ] = None,
    state_dir: Annotated[Path, typer.Option(help="The runtime's state directory.")] = Path("state"),
    database: Annotated[
        Path | None, typer.Option(help="The SQLite decision log itself (instead of --policy and --state-dir).")
    ] = None,
    format: Annotated[
        Format | None, typer.Option("--format", "-f", help="jsonl or parquet (default: from the output's suffix).")
    ] = None,
    after: Annotated[str | None, typer.Option(help="Only decisions with an id after this one (incremental).")] = None,
) -> None:
    if database is None:
        if policy is None:
            raise typer.BadParameter("give --policy (with --state-dir) or --database", param_hint="--policy")
        try:
            served = load_policy(policy)
        except PolicyConfigError as exc:
            raise typer.BadParameter(str(exc), param_hint="--policy") from exc
        database = database_path(state_dir, served.namespace, served.name)
    if not database.is_file():
        raise typer.BadParameter(f"no decision log at {database}", param_hint="--database")
    chosen = format or (Format.PARQUET if output is not None and output.suffix == ".parquet" else Format.JSONL)
    try:
        if chosen is Format.PARQUET:
            if output is None:
                raise typer.BadParameter("Parquet needs a file: give --output", param_hint="--output")
            count = export_parquet(database, output, after=after)
        elif output is None:
            count = export_jsonl(database, sys.stdout.buffer, after=after)
            sys.stdout.flush()
        else:
            with output.open("wb") as out:
                count = export_jsonl(database, out, after=after)
    except ExportError as exc:
        raise typer.BadParameter(str(exc), param_hint="--format") from exc
    typer.echo(f"exported {count} decisions from {database}", err=True)
