"""`croupier ope`: estimate the value of candidate DecisionPolicies on an exported decision log."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

HELP = (
    "Evaluate candidate DecisionPolicy specs off-policy on a decision log (JSON lines, Parquet or the runtime's SQLite "
    "file): IPS, SNIPS, DM, DR, SNDR and Switch-DR with confidence intervals."
)


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


def ope(
    logs: Annotated[
        list[Path],
        typer.Argument(
            help="The decision log: .jsonl, .parquet (croupier export) or .sqlite3; several files (one per Redis "
            "replica) are merged, one row per decision.",
            metavar="LOG...",
        ),
    ],
    *,
    policy: Annotated[
        list[Path], typer.Option("--policy", "-p", help="A candidate DecisionPolicy manifest (repeat for several).")
    ],
    mode: Annotated[
        str, typer.Option(help="frozen: learn the warm-up rows, then evaluate; online: learn every row in time order.")
    ] = "frozen",
    warmup: Annotated[
        float, typer.Option(help="Frozen mode: the fraction of the log (in time order) learned first.")
    ] = 0.5,
    reward_model: Annotated[str, typer.Option(help="ridge or gradient-boosting (per arm, cross-fitted).")] = "ridge",
    folds: Annotated[int, typer.Option(help="Cross-fitting folds of the reward model.", min=2)] = 5,
    level: Annotated[float, typer.Option(help="Confidence level of the intervals.", min=0.5, max=0.999)] = 0.95,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples (DM, Switch-DR).", min=100)] = 1000,
    switch_tau: Annotated[
        float | None, typer.Option(help="Switch-DR's weight threshold (default: chosen from the data).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and the bootstrap.")] = 0,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json.")] = Output.TABLE,
) -> None:
    try:
        from croupier.ope.candidates import CandidateError, Mode, load_candidate  # noqa: PLC0415
        from croupier.ope.evaluate import Options, evaluate  # noqa: PLC0415
        from croupier.ope.log import LogError, read_log  # noqa: PLC0415
        from croupier.ope.reward_model import REWARD_MODELS  # noqa: PLC0415
    except ImportError as exc:
        raise typer.BadParameter(
            f"off-policy evaluation needs the `ope` extra (scikit-learn, pyarrow): {exc}", param_hint="log"
        ) from exc
    if mode not in {m.value for m in Mode}:
        raise typer.BadParameter(f"{mode!r}; expected frozen or online", param_hint="--mode")
    if reward_model not in REWARD_MODELS:
        raise typer.BadParameter(
            f"{reward_model!r}; expected one of {', '.join(REWARD_MODELS)}", param_hint="--reward-model"
        )
    if not 0.0 <= warmup < 1.0:
        raise typer.BadParameter(f"{warmup}; expected a fraction in [0, 1)", param_hint="--warmup")
    options = Options(
        mode=Mode(mode),
        warmup=warmup,
        level=level,
        reward_model=reward_model,  # checked against REWARD_MODELS above
        folds=folds,
        resamples=resamples,
        seed=seed,
        switch_tau=switch_tau,
    )
    try:
        candidates = [load_candidate(path) for path in policy]
        decision_log = read_log(*logs)
        reports = evaluate(decision_log, candidates, options)
    except (CandidateError, LogError, ValueError) as exc:
        typer.echo(f"croupier ope: {exc}", err=True)
        raise typer.Exit(2) from exc
    document: dict[str, Any] = {
        "log": {
            "paths": [str(path) for path in logs],
            "decisions": decision_log.size,
            "rewarded": int(decision_log.rewarded.sum()),
            "arms": list(decision_log.arms),
            "features": None if decision_log.feature_names is None else list(decision_log.feature_names),
        },
        "options": {
            "mode": options.mode.value,
            "warmup": options.warmup if options.mode is Mode.FROZEN else None,
            "level": options.level,
            "rewardModel": options.reward_model,
            "folds": options.folds,
            "resamples": options.resamples,
            "seed": options.seed,
        },
        "candidates": [report.to_json() for report in reports],
    }
    if output is Output.JSON:
        typer.echo(json.dumps(document, indent=2))
        return
    _print_tables(document)


def _print_tables(document: dict[str, Any]) -> None:
    console = Console()
    level = document["options"]["level"]
    for candidate in document["candidates"]:
        table = Table(
            title=f"{candidate['name']} ({candidate['algorithm']}) on {candidate['rows']} rewarded decisions; "
            f"logged value {candidate['loggedValue']:.4f}",
            title_justify="left",
        )
        for column in ("estimator", "value", f"{level:.0%} interval", "std error", "interval method", "ESS"):
            table.add_column(column, justify="left" if column in ("estimator", "interval method") else "right")
        for e in candidate["estimates"]:
            name = e["estimator"] + (f" (tau {e['tau']:.3g})" if "tau" in e else "")
            table.add_row(
                name,
                f"{e['value']:.4f}",
                f"[{e['low']:.4f}, {e['high']:.4f}]",
                f"{e['stdError']:.4f}",
                e["interval"],
                f"{e['effectiveSampleSize']:.0f}",
            )
        console.print(table)
        for warning in candidate["warnings"]:
            console.print(f"[yellow]warning:[/yellow] {warning}")
