"""`Client`: the synchronous SDK over one pooled httpx.Client (thread-safe: share one per process)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any

import httpx

from croupier.api import wire
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
from .errors import CroupierError, RuntimeUnreachable, api_error, retryable
from .protocol import Attributes, Context, Decision, Rewardable
from .retry import RetryPolicy
from .transport import DEFAULT_URL, Connection


class Client:
    """Decisions, rewards, experiment assignment and statistics from one runtime.

    ``fallback_arm``: served (``Decision.fallback`` True) when decide gets no answer or a 5xx, instead of raising.
    ``retry``: how idempotent calls are retried (decide never is)."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        connect_timeout: float | None = 0.5,
        retry: RetryPolicy | None = None,
        fallback_arm: str | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
    ) -> None:
        self.connection = Connection(
            url,
            token=token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
        )
        self.retry = retry or RetryPolicy()
        self.fallback_arm = fallback_arm
        self._http = httpx.Client(**self.connection.options())  # type: ignore[arg-type]

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
        retry = 0
        while True:
            error: CroupierError
            try:
                response = self._http.request(method, path, content=body)
            except httpx.TransportError as exc:
                error = RuntimeUnreachable(self.connection.url, exc)
            else:
                if response.status_code < 400:
                    return response.content
                error = api_error(response.status_code, response.content)
            if not idempotent or not retryable(error) or retry + 1 >= self.retry.attempts:
                raise error
            time.sleep(self.retry.delay(retry))
            retry += 1

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
        body = protocol.decide_body(unit_id, context, candidates)
        try:
            return protocol.parse(Decision, self.send("POST", wire.DECIDE_PATH, body, idempotent=False))
        except CroupierError as exc:
            arm = fallback_arm or self.fallback_arm
            if arm is None or not retryable(exc):
                raise
            return protocol.fallback_decision(arm, exc)

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
        body = protocol.rank_body(unit_id, k, context, candidates)
        return protocol.parse(RankResponse, self.send("POST", wire.RANK_PATH, body, idempotent=False))

    def reward(self, decision: Rewardable, reward: float) -> RewardResponse | None:
        """Reward one decision (a Decision, a ranking's SlatePosition, or a decisionId); retried, since the
        runtime keeps one reward per decision (a resent one is answered ``duplicate``). A fallback decision is not
        sent: None."""
        item = protocol.reward_item(decision, reward)
        if item is None:
            return None
        return self._send_rewards([item])

    def rewards(self, rewards: Iterable[tuple[Rewardable, float]]) -> RewardResponse | None:
        """Reward several decisions: requests of up to 1000, each validated as a whole by the runtime. Fallback
        decisions are left out (None when nothing is left)."""
        items = protocol.reward_items(rewards)
        return self._send_rewards(items) if items else None

    def _send_rewards(self, items: Sequence[wire.Reward]) -> RewardResponse:
        answers = [
            protocol.parse(
                RewardResponse,
                self.send("POST", wire.REWARDS_PATH, protocol.rewards_body(chunk), idempotent=True),
            )
            for chunk in protocol.chunks(items)
        ]
        return protocol.merge_rewards(answers)

    def batcher(self, **options: Any) -> RewardBatcher:
        """A background reward sender on this client (see RewardBatcher); close it before the client."""
        return RewardBatcher(self, **options)

    def stats(self) -> StatsResponse:
        """The policy's live statistics (``GET /v1/stats``, admin scope)."""
        return protocol.parse(StatsResponse, self.send("GET", wire.STATS_PATH, idempotent=True))

    # ------------------------------------------------------------------ experiments
    def assign(
        self, unit_id: str, *, attributes: Attributes | None = None, context: Context | None = None
    ) -> AssignResponse:
        """The unit's variant and target from an experiment runtime (retried: assignment is sticky and the
        exposure is logged once per unit and epoch)."""
        body = protocol.assign_body(unit_id, attributes, context)
        return protocol.parse(AssignResponse, self.send("POST", wire.ASSIGN_PATH, body, idempotent=True))

    def expose(self, unit_id: str, variant: str, epoch: str | None = None) -> ExposureResponse:
        """Report that the unit was shown ``variant`` (local assignment)."""
        exposure = protocol.build(Exposure, unitId=unit_id, variant=variant, epoch=epoch)
        return self.exposures([exposure])

    def exposures(self, exposures: Sequence[Exposure]) -> ExposureResponse:
        body = protocol.exposures_body(exposures)
        return protocol.parse(ExposureResponse, self.send("POST", wire.EXPOSURES_PATH, body, idempotent=True))

    def outcome(self, unit_id: str, metric: str, value: float, event_id: str | None = None) -> OutcomeResponse:
        """One observation of a metric; retried only with an ``event_id`` (the runtime's idempotency key)."""
        outcome = protocol.build(Outcome, unitId=unit_id, metric=metric, value=value, eventId=event_id)
        return self.outcomes([outcome])

    def outcomes(self, outcomes: Sequence[Outcome]) -> OutcomeResponse:
        body = protocol.outcomes_body(outcomes)
        idempotent = protocol.outcomes_idempotent(outcomes)
        return protocol.parse(OutcomeResponse, self.send("POST", wire.OUTCOMES_PATH, body, idempotent=idempotent))

    def experiment_stats(self) -> ExperimentStatsResponse:
        """Per-variant exposures and sums of an experiment runtime (``GET /v1/stats``)."""
        return protocol.parse(ExperimentStatsResponse, self.send("GET", wire.STATS_PATH, idempotent=True))
