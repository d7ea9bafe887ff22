"""What the sync and async clients share: every call as a value (`Call`: method, path, a body built from the wire
models of ``croupier.api.wire`` and checked before it leaves the process, whether it may be sent again, and how its
answer is decoded), the mapping of answers to typed results or errors, the retry decision and the decide fallback.
No I/O here: each client only sends a `Call` and sleeps between attempts its own way."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from croupier.api import wire
from croupier.api.wire import (
    MAX_EXPOSURES_PER_REQUEST,
    MAX_OUTCOMES_PER_REQUEST,
    MAX_REWARDS_PER_REQUEST,
    AssignRequest,
    AssignResponse,
    DecideRequest,
    DecideResponse,
    ExperimentStatsResponse,
    Exposure,
    ExposureBatch,
    ExposureResponse,
    Outcome,
    OutcomeBatch,
    OutcomeResponse,
    RankRequest,
    RankResponse,
    Reward,
    RewardBatch,
    RewardResponse,
    SlatePosition,
    StatsResponse,
)

from .errors import CroupierError, InvalidArgument, RuntimeUnreachable, api_error, retryable
from .retry import RetryPolicy

Context = Mapping[str, float] | Sequence[float]
Attributes = Mapping[str, str | bool | float | None]

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


class Decision(DecideResponse):
    """A decision of the runtime (``fallback`` False), or the configured fallback arm when the runtime could not be
    reached (``fallback`` True: ``decisionId`` and ``policyVersion`` are empty, ``probabilities`` is {arm: 1}; the
    runtime logged nothing, so the SDK sends no reward for it)."""

    fallback: bool = False
    fallback_reason: str | None = None


def fallback_decision(arm: str, reason: BaseException) -> Decision:
    return Decision(
        decision_id="",
        arm=arm,
        probabilities={arm: 1.0},
        policy_version="",
        fallback=True,
        fallback_reason=str(reason),
    )


_UNION_TAGS = frozenset(
    {
        "str",
        "int",
        "float",
        "bool",
        "none",
        "list",
        "dict",
        "Reward",
        "RewardBatch",
        "Exposure",
        "ExposureBatch",
        "Outcome",
    }
    | {"OutcomeBatch"}
)


def _is_union_tag(part: str) -> bool:
    """pydantic names union branches in error locations (``dict[str,float]``, ``constrained-float``)."""
    return "[" in part or part in _UNION_TAGS or part.startswith(("function-", "constrained-"))


def _field(error: ValidationError, prefix: str = "") -> str:
    parts = [prefix] if prefix else []
    for part in error.errors()[0]["loc"]:
        if isinstance(part, int):
            parts[-1:] = [f"{parts[-1] if parts else ''}[{part}]"]
        elif not _is_union_tag(part):
            parts.append(part)
    return ".".join(parts)


def build(model: type[M], prefix: str = "", **values: Any) -> M:
    """A wire model from keyword values, or InvalidArgument naming the field the runtime would name."""
    try:
        return model.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise InvalidArgument(first["msg"], _field(exc, prefix)) from None


def encode(model: BaseModel) -> bytes:
    return model.model_dump_json(by_alias=True, exclude_none=True).encode()


def decide_body(unit_id: str | None, context: Context | None, candidates: Sequence[str] | None) -> bytes:
    return encode(
        build(
            DecideRequest,
            unitId=unit_id,
            context=None if context is None else (dict(context) if isinstance(context, Mapping) else list(context)),
            candidates=None if candidates is None else list(candidates),
        )
    )


Rewardable = Decision | SlatePosition | str
"""What a reward is for: a decision, a position of a ranking (its own decision), or a decisionId."""


def rank_body(unit_id: str | None, k: int, context: Context | None, candidates: Sequence[str] | None) -> bytes:
    return encode(
        build(
            RankRequest,
            unitId=unit_id,
            k=k,
            context=None if context is None else (dict(context) if isinstance(context, Mapping) else list(context)),
            candidates=None if candidates is None else list(candidates),
        )
    )


def reward_item(decision: Rewardable, reward: float, prefix: str = "") -> Reward | None:
    """The reward for a decision (or its id); None for a fallback decision, which the runtime never logged."""
    if isinstance(decision, Decision):
        if decision.fallback:
            return None
        decision = decision.decision_id
    elif isinstance(decision, SlatePosition):
        decision = decision.decision_id
    return build(Reward, prefix, decisionId=decision, reward=reward)


def reward_items(rewards: Iterable[tuple[Rewardable, float]]) -> list[Reward]:
    items = []
    for i, (decision, value) in enumerate(rewards):
        item = reward_item(decision, value, f"rewards[{i}]")
        if item is not None:
            items.append(item)
    return items


def rewards_body(items: Sequence[Reward]) -> bytes:
    if len(items) == 1:
        return encode(items[0])
    return encode(RewardBatch(rewards=list(items)))


def chunks(items: Sequence[Any], size: int = MAX_REWARDS_PER_REQUEST) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def merge_rewards(answers: Sequence[RewardResponse]) -> RewardResponse:
    if len(answers) == 1:
        return answers[0]
    return RewardResponse(
        accepted=sum(a.accepted for a in answers),
        duplicates=sum(a.duplicates for a in answers),
        results=[r for a in answers for r in a.results],
    )


def assign_body(unit_id: str | None, attributes: Attributes | None, context: Context | None) -> bytes:
    """Without ``unit_id`` the runtime takes the unit from ``attributes[spec.assignment.unitKey]``; unitId is then
    left out of the body (never sent as null)."""
    if unit_id is None and not attributes:
        raise InvalidArgument("unit_id or attributes holding the experiment's unitKey is required", "unitId")
    return encode(
        build(
            AssignRequest,
            unitId=unit_id,
            attributes=None if attributes is None else dict(attributes),
            context=None if context is None else (dict(context) if isinstance(context, Mapping) else list(context)),
        )
    )


def _check_count(items: Sequence[Any], name: str, limit: int) -> None:
    if not items:
        raise InvalidArgument(f"at least one {name[:-1]} is required", name)
    if len(items) > limit:
        raise InvalidArgument(f"at most {limit} {name} per request, got {len(items)}", name)


def exposures_body(exposures: Sequence[Exposure]) -> bytes:
    _check_count(exposures, "exposures", MAX_EXPOSURES_PER_REQUEST)
    return encode(exposures[0] if len(exposures) == 1 else ExposureBatch(exposures=list(exposures)))


def outcomes_body(outcomes: Sequence[Outcome]) -> bytes:
    _check_count(outcomes, "outcomes", MAX_OUTCOMES_PER_REQUEST)
    return encode(outcomes[0] if len(outcomes) == 1 else OutcomeBatch(outcomes=list(outcomes)))


def outcomes_idempotent(outcomes: Sequence[Outcome]) -> bool:
    """Outcomes are deduplicated by eventId only: a request is retried only when every outcome carries one."""
    return all(o.event_id is not None for o in outcomes)


def parse(model: type[M], body: bytes) -> M:
    return model.model_validate_json(body)


# ---------------------------------------------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to read its answer; ``idempotent``: the runtime deduplicates it, so it may be sent again."""

    method: str
    path: str
    body: bytes | None
    idempotent: bool
    decode: Callable[[bytes], T]


class Attempts:
    """The sends of one call, for a client's send loop: `after` takes what a send gave (an answer, or the transport's
    error) and returns the answer's body, or the seconds to wait before sending again, or raises the typed error to
    give up with. Only idempotent calls are sent again, after no answer or a 5xx, within the policy's attempts."""

    def __init__(self, url: str, *, idempotent: bool, policy: RetryPolicy) -> None:
        self.url = url
        self.idempotent = idempotent
        self.policy = policy
        self.retry = 0  # retries so far

    def after(self, sent: httpx.Response | httpx.TransportError) -> bytes | float:
        if isinstance(sent, httpx.TransportError):
            error: CroupierError = RuntimeUnreachable(self.url, sent)
        elif sent.status_code < 400:
            return sent.content
        else:
            error = api_error(sent.status_code, sent.content)
        if not self.idempotent or not retryable(error) or self.retry + 1 >= self.policy.attempts:
            raise error
        delay = self.policy.delay(self.retry)
        self.retry += 1
        return delay


def fallback(error: CroupierError, arm: str | None) -> Decision:
    """What decide returns after ``error``: the fallback arm after no answer or a 5xx, when there is one; otherwise
    the error is raised."""
    if arm is None or not retryable(error):
        raise error
    return fallback_decision(arm, error)


def decide_call(unit_id: str | None, context: Context | None, candidates: Sequence[str] | None) -> Call[Decision]:
    body = decide_body(unit_id, context, candidates)
    return Call("POST", wire.DECIDE_PATH, body, idempotent=False, decode=partial(parse, Decision))


def rank_call(
    unit_id: str | None, k: int, context: Context | None, candidates: Sequence[str] | None
) -> Call[RankResponse]:
    body = rank_body(unit_id, k, context, candidates)
    return Call("POST", wire.RANK_PATH, body, idempotent=False, decode=partial(parse, RankResponse))


def reward_calls(items: Sequence[Reward]) -> list[Call[RewardResponse]]:
    """Requests of up to MAX_REWARDS_PER_REQUEST; none when there is nothing to send. Merge the answers with
    `merge_rewards`."""
    decode = partial(parse, RewardResponse)
    return [Call("POST", wire.REWARDS_PATH, rewards_body(c), idempotent=True, decode=decode) for c in chunks(items)]


def stats_call() -> Call[StatsResponse]:
    return Call("GET", wire.STATS_PATH, None, idempotent=True, decode=partial(parse, StatsResponse))


def assign_call(unit_id: str | None, attributes: Attributes | None, context: Context | None) -> Call[AssignResponse]:
    body = assign_body(unit_id, attributes, context)
    return Call("POST", wire.ASSIGN_PATH, body, idempotent=True, decode=partial(parse, AssignResponse))


def exposure(unit_id: str, variant: str, epoch: str | None) -> Exposure:
    return build(Exposure, unitId=unit_id, variant=variant, epoch=epoch)


def exposures_call(exposures: Sequence[Exposure]) -> Call[ExposureResponse]:
    body = exposures_body(exposures)
    return Call("POST", wire.EXPOSURES_PATH, body, idempotent=True, decode=partial(parse, ExposureResponse))


def outcome(unit_id: str, metric: str, value: float, event_id: str | None) -> Outcome:
    return build(Outcome, unitId=unit_id, metric=metric, value=value, eventId=event_id)


def outcomes_call(outcomes: Sequence[Outcome]) -> Call[OutcomeResponse]:
    body = outcomes_body(outcomes)
    idempotent = outcomes_idempotent(outcomes)
    return Call("POST", wire.OUTCOMES_PATH, body, idempotent=idempotent, decode=partial(parse, OutcomeResponse))


def experiment_stats_call() -> Call[ExperimentStatsResponse]:
    return Call("GET", wire.STATS_PATH, None, idempotent=True, decode=partial(parse, ExperimentStatsResponse))
