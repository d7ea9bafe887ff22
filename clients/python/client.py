"""`Client`: the synchronous SDK over one pooled httpx.Client (thread-safe: share one per process).

What to send, how to read the answer, when to retry and when to fall back are `protocol`'s, shared with `AsyncClient`;
this module only sends and sleeps."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, TypeVar

import httpx

from croupier.api.wire import (
    AssignResponse,
    ExperimentStatsResponse,
    Exposure,
    ExposureResponse,
    Outcome,
    OutcomeResponse,
    RankResponse,
    RewardResponse,
    StatsResponse,
)

from . import protocol
from .batching import RewardBatcher
from .errors import CroupierError
from .protocol import Attributes, Call, Context, Decision, Rewardable
from .transport import ClientBase

T = TypeVar("T")


class Client(ClientBase[httpx.Client]):
    """Decisions, rewards, experiment assignment and statistics from one runtime.

    ``fallback_arm``: served (``Decision.fallback`` True) when decide gets no answer or a 5xx, instead of raising.
    ``retry``: how idempotent calls are retried (decide never is)."""

    def _open(self, options: dict[str, object]) -> httpx.Client:
        return httpx.Client(**options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def send(self, method: str, path: str, body: bytes | None = None, *, idempotent: bool) -> bytes:
        """One call; an idempotent one is sent again after no answer or a 5xx, per ``retry``. Returns the body of a
        2xx answer or raises the typed error of the last attempt."""
        attempts = protocol.Attempts(self.connection.url, idempotent=idempotent, policy=self.retry)
        while True:
            try:
                sent: httpx.Response | httpx.TransportError = self._http.request(method, path, content=body)
            except httpx.TransportError as exc:
                sent = exc
            step = attempts.after(sent)
            if isinstance(step, bytes):
                return step
            time.sleep(step)

    def _run(self, call: Call[T]) -> T:
        return call.decode(self.send(call.method, call.path, call.body, idempotent=call.idempotent))

    def _rewards(self, calls: Sequence[Call[RewardResponse]]) -> RewardResponse | None:
        return protocol.merge_rewards([self._run(call) for call in calls]) if calls else None

    # ------------------------------------------------------------------ decisions
    def decide(
        self,
        unit_id: str | None = None,
        *,
        context: Context | None = None,
        candidates: Sequence[str] | None = None,
        fallback_arm: str | None = None,
    ) -> Decision:
        """An arm from the policy (sent once, never retried). With a fallback arm (here or on the client), no answer
        or a 5xx gives ``Decision(fallback=True)`` instead of an error."""
        call = protocol.decide_call(unit_id, context, candidates)
        try:
            return self._run(call)
        except CroupierError as exc:
            return protocol.fallback(exc, fallback_arm or self.fallback_arm)

    def rank(
        self,
        unit_id: str | None = None,
        *,
        k: int,
        context: Context | None = None,
        candidates: Sequence[str] | None = None,
    ) -> RankResponse:
        """An ordered slate of ``k`` distinct arms (``POST /v1/rank``), sent once, never retried (each position is
        logged as a decision). Reward a position by its ``decision_id`` (or pass the position to ``reward``). No
        fallback: no answer or a 5xx raises."""
        return self._run(protocol.rank_call(unit_id, k, context, candidates))

    def reward(self, decision: Rewardable, reward: float) -> RewardResponse | None:
        """Reward one decision (a Decision, a ranking's SlatePosition, or a decisionId); retried, since the
        runtime keeps one reward per decision (a resent one is answered ``duplicate``). A fallback decision is not
        sent: None."""
        item = protocol.reward_item(decision, reward)
        return self._rewards(protocol.reward_calls([] if item is None else [item]))

    def rewards(self, rewards: Iterable[tuple[Rewardable, float]]) -> RewardResponse | None:
        """Reward several decisions: requests of up to 1000, each validated as a whole by the runtime. Fallback
        decisions are left out (None when nothing is left)."""
        return self._rewards(protocol.reward_calls(protocol.reward_items(rewards)))

    def batcher(self, **options: Any) -> RewardBatcher:
        """A background reward sender on this client (see RewardBatcher); close it before the client."""
        return RewardBatcher(self, **options)

    def stats(self) -> StatsResponse:
        """The policy's live statistics (``GET /v1/stats``, admin scope)."""
        return self._run(protocol.stats_call())

    # ------------------------------------------------------------------ experiments
    def assign(
        self,
        unit_id: str | None = None,
        *,
        attributes: Attributes | None = None,
        context: Context | None = None,
    ) -> AssignResponse:
        """The unit's variant and target from an experiment runtime (retried: assignment is sticky and the
        exposure is logged once per unit and epoch). Without ``unit_id`` the unit is
        ``attributes[spec.assignment.unitKey]`` (a string), as the runtime resolves it."""
        return self._run(protocol.assign_call(unit_id, attributes, context))

    def expose(self, unit_id: str, variant: str, epoch: str | None = None) -> ExposureResponse:
        """Report that the unit was shown ``variant`` (local assignment)."""
        return self.exposures([protocol.exposure(unit_id, variant, epoch)])

    def exposures(self, exposures: Sequence[Exposure]) -> ExposureResponse:
        return self._run(protocol.exposures_call(exposures))

    def outcome(self, unit_id: str, metric: str, value: float, event_id: str | None = None) -> OutcomeResponse:
        """One observation of a metric; retried only with an ``event_id`` (the runtime's idempotency key)."""
        return self.outcomes([protocol.outcome(unit_id, metric, value, event_id)])

    def outcomes(self, outcomes: Sequence[Outcome]) -> OutcomeResponse:
        return self._run(protocol.outcomes_call(outcomes))

    def experiment_stats(self) -> ExperimentStatsResponse:
        """Per-variant exposures and sums of an experiment runtime (``GET /v1/stats``)."""
        return self._run(protocol.experiment_stats_call())
