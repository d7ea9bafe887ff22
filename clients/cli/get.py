"""`croupier get`: every Croupier resource of a namespace, read from the cluster like kubectl does (KUBECONFIG,
--kubeconfig, --context, the context's namespace), with the per-arm, per-variant and per-version tables of status."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, cast

import typer
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from rich.console import Console
from rich.table import Table

from croupier.api import decisionpolicy, experiment, modeldeployment
from croupier.api.common import GROUP, VERSION

HELP = (
    "Show Croupier's resources (DecisionPolicies, Experiments, ModelDeployments) of a namespace with the per-arm, "
    "per-variant and per-version tables of their status."
)

Row = dict[str, Any]


class Output(StrEnum):
    TABLE = "table"
    JSON = "json"


@dataclass(frozen=True)
class Kind:
    kind: str
    plural: str
    names: tuple[str, ...]
    """What the KIND argument accepts: singular, plural, short name."""
    summary: Callable[[Row], dict[str, str]]
    detail: Callable[[Row], Table | None]


def _cell(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _ready(item: Row) -> str:
    for condition in (item.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            reason = condition.get("reason")
            return f"{condition.get('status')} ({reason})" if reason else str(condition.get("status"))
    return "-"


def _policy_summary(item: Row) -> dict[str, str]:
    status = item.get("status") or {}
    totals = status.get("totals") or {}
    return {
        "Ready": _ready(item),
        "Algorithm": _cell((item.get("spec") or {}).get("algorithm", {}).get("type")),
        "Replicas": f"{_cell(status.get('readyReplicas'))}/{_cell(status.get('replicas'))}",
        "Decisions": _cell(totals.get("decisions")),
        "Rewards": _cell(totals.get("rewards")),
        "Best": _cell(status.get("bestArm")),
    }


def _policy_arms(item: Row) -> Table | None:
    arms = (item.get("status") or {}).get("arms")
    if not arms:
        return None
    table = Table(title=f"DecisionPolicy {item['metadata']['name']}: arms", title_justify="left")
    for column in ("arm", "pulls", "rewards", "reward sum", "mean", "probability"):
        table.add_column(column, justify="left" if column == "arm" else "right")
    for arm in arms:
        table.add_row(
            arm["name"],
            _cell(arm.get("pulls", 0)),
            _cell(arm.get("rewards", 0)),
            _cell(float(arm.get("rewardSum", 0.0))),
            _cell(arm.get("mean")),
            _cell(arm.get("probability")),
        )
    return table


def _experiment_summary(item: Row) -> dict[str, str]:
    status = item.get("status") or {}
    return {
        "Ready": _ready(item),
        "State": _cell((item.get("spec") or {}).get("state", "Running")),
        "Split": _cell(status.get("split")),
        "Exposures": _cell(status.get("totalExposures")),
        "SRM p": _cell(status.get("srmPValue")),
        "Winner": _cell(status.get("winner")),
    }


def _lift(lift: Row | None) -> str:
    if not lift:
        return "-"
    return f"{lift['estimate']:+.2%} [{lift['lower']:+.2%}, {lift['upper']:+.2%}]"


def _experiment_variants(item: Row) -> Table | None:
    variants = (item.get("status") or {}).get("variants")
    if not variants:
        return None
    table = Table(title=f"Experiment {item['metadata']['name']}: variants", title_justify="left")
    for column in ("variant", "exposures", "outcomes", "mean", "lift", "p-value", "P(beat control)", "guardrails"):
        table.add_column(column, justify="left" if column in ("variant", "lift", "guardrails") else "right")
    for variant in variants:
        violated = [g["name"] for g in variant.get("guardrails") or [] if g.get("violated")]
        table.add_row(
            variant["name"],
            _cell(variant.get("exposures", 0)),
            _cell(float(variant.get("outcomes", 0.0))),
            _cell(variant.get("mean")),
            _lift(variant.get("lift")),
            _cell(variant.get("pValue")),
            _cell(variant.get("probabilityToBeatControl")),
            ("violated: " + ", ".join(violated)) if violated else ("ok" if variant.get("guardrails") else "-"),
        )
    return table


def _model_summary(item: Row) -> dict[str, str]:
    spec = item.get("spec") or {}
    status = item.get("status") or {}
    return {
        "Ready": _ready(item),
        "Model": _cell((spec.get("model") or {}).get("name")),
        "Stable": _cell((spec.get("stable") or {}).get("version")),
        "Canary": _cell((spec.get("canary") or {}).get("version")),
        "Canary weight": _cell(status.get("canaryWeight")),
        "Rollout": _cell((status.get("rollout") or {}).get("state")),
    }


def _model_versions(item: Row) -> Table | None:
    versions = (item.get("status") or {}).get("versions")
    if not versions:
        return None
    table = Table(title=f"ModelDeployment {item['metadata']['name']}: versions", title_justify="left")
    for column in ("version", "role", "state", "weight", "message"):
        table.add_column(column, justify="right" if column in ("version", "weight") else "left")
    for version in versions:
        table.add_row(
            _cell(version.get("version")),
            _cell(version.get("role")),
            _cell(version.get("state", "Unknown")),
            f"{version.get('weight', 0)}%",
            _cell(version.get("message")),
        )
    return table


KINDS = (
    Kind(
        decisionpolicy.KIND,
        decisionpolicy.PLURAL,
        ("decisionpolicy", "decisionpolicies", "dp"),
        _policy_summary,
        _policy_arms,
    ),
    Kind(
        experiment.KIND,
        experiment.PLURAL,
        ("experiment", "experiments", "exp"),
        _experiment_summary,
        _experiment_variants,
    ),
    Kind(
        modeldeployment.KIND,
        modeldeployment.PLURAL,
        ("modeldeployment", "modeldeployments", "md"),
        _model_summary,
        _model_versions,
    ),
)


def _api(kubeconfig: str | None, context: str | None) -> tuple[client.ApiClient, str]:
    """An API client as kubectl would build it, and the namespace of the chosen context (else `default`)."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = active
        if context is not None:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                raise typer.BadParameter(
                    f"no context {context!r} in the kubeconfig; known: {[c['name'] for c in contexts]}",
                    param_hint="--context",
                )
        api = config.new_client_from_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise typer.BadParameter(f"cannot load the kubeconfig: {exc}", param_hint="--kubeconfig") from exc
    return api, (chosen.get("context") or {}).get("namespace") or "default"


def get(
    kind: Annotated[
        str | None,
        typer.Argument(help="Only this kind: dp / decisionpolicies, exp / experiments, md / modeldeployments."),
    ] = None,
    name: Annotated[str | None, typer.Argument(help="Only the resource of this name.")] = None,
    *,
    namespace: Annotated[
        str | None, typer.Option("--namespace", "-n", help="Namespace (default: the context's, else default).")
    ] = None,
    kubeconfig: Annotated[
        str | None, typer.Option(help="Kubeconfig file (default: $KUBECONFIG, else ~/.kube/config).")
    ] = None,
    context: Annotated[str | None, typer.Option(help="Kubeconfig context (default: the current context).")] = None,
    output: Annotated[Output, typer.Option("--output", "-o", help="table or json (the objects as stored).")] = (
        Output.TABLE
    ),
) -> None:
    kinds: tuple[Kind, ...] = KINDS
    if kind is not None:
        kinds = tuple(k for k in KINDS if kind.lower() in k.names)
        if not kinds:
            known = ", ".join(n for k in KINDS for n in k.names)
            raise typer.BadParameter(f"unknown kind {kind!r}; known: {known}", param_hint="KIND")
    elif name is not None:
        raise typer.BadParameter("give a KIND with a NAME, e.g. `croupier get dp homepage-banner`", param_hint="NAME")
    api, default_namespace = _api(kubeconfig, context)
    namespace = namespace or default_namespace
    custom = client.CustomObjectsApi(api)
    found: dict[str, list[Row]] = {}
    try:
        for entry in kinds:
            try:
                items: list[Row]
                if name is None:
                    listed = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, entry.plural)
                    items = cast(Row, listed)["items"]
                else:
                    got = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, entry.plural, name)
                    items = [cast(Row, got)]
            except ApiException as exc:
                if exc.status == 404 and name is not None:
                    typer.echo(f"{entry.kind} {name!r} not found in namespace {namespace}", err=True)
                    raise typer.Exit(1) from exc
                if exc.status == 404:
                    typer.echo(f"{entry.kind}: the CRD is not installed in this cluster", err=True)
                    continue
                raise typer.BadParameter(
                    f"the API server refused to list {entry.plural} in {namespace}: {exc.status} {exc.reason}",
                    param_hint="--namespace",
                ) from exc
            found[entry.kind] = sorted(items, key=lambda i: i["metadata"]["name"])
    except (OSError, ValueError) as exc:  # urllib3 connection errors are OSErrors; bad hosts ValueErrors
        typer.echo(f"cannot reach the API server: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        api.close()  # type: ignore[no-untyped-call]
    if output is Output.JSON:
        json.dump({kind: items for kind, items in found.items()}, sys.stdout, indent=2, default=str)
        sys.stdout.write("\n")
        return
    _print(found, namespace)


def _print(found: dict[str, list[Row]], namespace: str) -> None:
    console = Console(width=None if sys.stdout.isatty() else 200)
    if not any(found.values()):
        console.print(f"No Croupier resources in namespace {namespace}.")
        return
    for entry in KINDS:
        items = found.get(entry.kind)
        if not items:
            continue
        summary = Table(title=f"{entry.names[1]} in {namespace}", title_justify="left")
        columns = list(entry.summary(items[0]))
        summary.add_column("Name")
        for column in columns:
            summary.add_column(column)
        for item in items:
            values = entry.summary(item)
            summary.add_row(item["metadata"]["name"], *(values[c] for c in columns))
        console.print(summary)
        for item in items:
            detail = entry.detail(item)
            if detail is not None:
                console.print(detail)
