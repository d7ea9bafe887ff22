"""`AsyncClient`: the asyncio SDK over one pooled httpx.AsyncClient (share one per event loop).

What to send, how to read the answer, when to retry and when to fall back are `protocol`'s, shared with `Client`;
this module only sends and sleeps."""

from __future__ import annotations

import asyncio
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
from .batching import AsyncRewardBatcher
from .errors import CroupierError
from .protocol import Attributes, Call, Context, Decision, Rewardable
from .transport import ClientBase

T = TypeVar("T")


class AsyncClient(ClientBase[httpx.AsyncClient]):
    """Decisions, rewards, experiment assignment and statistics from one runtime: `Client`'s calls as coroutines, with
    the same arguments, results, errors, retries and fallback."""

    def _open(self, options: dict[str, object]) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ plumbing
    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def send(self, method: str, path: str, body: bytes | None = None, *, idempotent: bool) -> bytes:
        """`Client.send` as a coroutine."""
        attempts = protocol.Attempts(self.connection.url, idempotent=idempotent, policy=self.retry)
        while True:
            try:
                sent: httpx.Response | httpx.TransportError = await self._http.request(method, path, content=body)
            except httpx.TransportError as exc:
                sent = exc
            step = attempts.after(sent)
            if isinstance(step, bytes):
                return step
            await asyncio.sleep(step)

    async def _run(self, call: Call[T]) -> T:
        return call.decode(await self.send(call.method, call.path, call.body, idempotent=call.idempotent))

    async def _rewards(self, calls: Sequence[Call[RewardResponse]]) -> RewardResponse | None:
        return protocol.merge_rewards([await self._run(call) for call in calls]) if calls else None

    # ------------------------------------------------------------------ decisions
    async def decide(
        self,
        unit_id: str | None = None,
        *,
        context: Context | None = None,
        candidates: Sequence[str] | None = None,
        fallback_arm: str | None = None,
    ) -> Decision:
        """`Client.decide` as a coroutine."""
        call = protocol.decide_call(unit_id, context, candidates)
        try:
            return await self._run(call)
        except CroupierError as exc:
            return protocol.fallback(exc, fallback_arm or self.fallback_arm)

    async def rank(
        self,
        unit_id: str | None = None,
        *,
        k: int,
        context: Context | None = None,
        candidates: Sequence[str] | None = None,
    ) -> RankResponse:
        """`Client.rank` as a coroutine."""
        return await self._run(protocol.rank_call(unit_id, k, context, candidates))

    async def reward(self, decision: Rewardable, reward: float) -> RewardResponse | None:
        """`Client.reward` as a coroutine."""
        item = protocol.reward_item(decision, reward)
        return await self._rewards(protocol.reward_calls([] if item is None else [item]))

    async def rewards(self, rewards: Iterable[tuple[Rewardable, float]]) -> RewardResponse | None:
        """`Client.rewards` as a coroutine."""
        return await self._rewards(protocol.reward_calls(protocol.reward_items(rewards)))

    def batcher(self, **options: Any) -> AsyncRewardBatcher:
        """A background reward sender on this client, as a task of the running loop (see AsyncRewardBatcher);
        ``await close()`` it before the client."""
        return AsyncRewardBatcher(self, **options)

    async def stats(self) -> StatsResponse:
        """`Client.stats` as a coroutine."""
        return await self._run(protocol.stats_call())

    # ------------------------------------------------------------------ experiments
    async def assign(
        self,
        unit_id: str | None = None,
        *,
        attributes: Attributes | None = None,
        context: Context | None = None,
    ) -> AssignResponse:
        """`Client.assign` as a coroutine."""
        return await self._run(protocol.assign_call(unit_id, attributes, context))

    async def expose(self, unit_id: str, variant: str, epoch: str | None = None) -> ExposureResponse:
        """`Client.expose` as a coroutine."""
        return await self.exposures([protocol.exposure(unit_id, variant, epoch)])

    async def exposures(self, exposures: Sequence[Exposure]) -> ExposureResponse:
        return await self._run(protocol.exposures_call(exposures))

    async def outcome(self, unit_id: str, metric: str, value: float, event_id: str | None = None) -> OutcomeResponse:
        """`Client.outcome` as a coroutine."""
        return await self.outcomes([protocol.outcome(unit_id, metric, value, event_id)])

    async def outcomes(self, outcomes: Sequence[Outcome]) -> OutcomeResponse:
        return await self._run(protocol.outcomes_call(outcomes))

    async def experiment_stats(self) -> ExperimentStatsResponse:
        """`Client.experiment_stats` as a coroutine."""
        return await self._run(protocol.experiment_stats_call())
