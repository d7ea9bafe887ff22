"""`croupier decide` and `croupier reward`: one call to a runtime, for debugging, with the SDK (croupier.client).

The runtime is given by URL (--url, or CROUPIER_URL); in a cluster, reach a policy's Service with
`kubectl port-forward svc/<policy> 8080` first. A bearer token comes from --token or CROUPIER_TOKEN."""

from __future__ import annotations

import sys
from typing import Annotated, Any, NoReturn

import orjson
import typer
from pydantic import BaseModel

from croupier.client import Client, CroupierError, InvalidArgument
from croupier.client.transport import DEFAULT_URL

DECIDE_HELP = "Ask a runtime for a decision (POST /v1/decide) and print the answer as JSON."
REWARD_HELP = "Send the reward of a decision to a runtime (POST /v1/rewards) and print the answer as JSON."

Url = Annotated[str, typer.Option("--url", envvar="CROUPIER_URL", help="The runtime's base URL.")]
Token = Annotated[
    str | None, typer.Option("--token", envvar="CROUPIER_TOKEN", help="Bearer token (decide or rewards scope).")
]
Timeout = Annotated[float, typer.Option(help="Seconds to wait for the runtime.")]


def _fail(error: CroupierError) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(2 if isinstance(error, InvalidArgument) else 1)


def _print(answer: BaseModel) -> None:
    sys.stdout.write(answer.model_dump_json(by_alias=True, exclude_none=True) + "\n")


def _context(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--context") from exc
    if not isinstance(value, dict | list):
        raise typer.BadParameter("a JSON object (by feature) or list (in feature order)", param_hint="--context")
    return value


def decide(
    *,
    url: Url = DEFAULT_URL,
    token: Token = None,
    unit_id: Annotated[str | None, typer.Option("--unit-id", "-u", help="Who the decision is for.")] = None,
    context: Annotated[
        str | None, typer.Option(help='Context as JSON: {"age": 3, "mobile": 1} or [3, 1] (contextual policies).')
    ] = None,
    candidate: Annotated[
        list[str] | None, typer.Option("--candidate", "-c", help="Restrict to this arm (repeat for several).")
    ] = None,
    timeout: Timeout = 5.0,
) -> None:
    try:
        with Client(url, token=token, timeout=timeout) as client:
            _print(client.decide(unit_id, context=_context(context), candidates=candidate))
    except CroupierError as exc:
        _fail(exc)


def reward(
    decision_id: Annotated[str, typer.Argument(help="The decisionId of the decision.")],
    value: Annotated[float, typer.Argument(help="The reward: 0 or 1 for Binary policies, any number otherwise.")],
    *,
    url: Url = DEFAULT_URL,
    token: Token = None,
    timeout: Timeout = 5.0,
) -> None:
    try:
        with Client(url, token=token, timeout=timeout) as client:
            answer = client.reward(decision_id, value)
    except CroupierError as exc:
        _fail(exc)
    assert answer is not None  # only a fallback decision has no answer
    _print(answer)
