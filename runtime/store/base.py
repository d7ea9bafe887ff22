"""What a state backend provides to a data-plane service, and what it hands back (`Learner`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple, Protocol

from croupier.runtime.decisions.records import Decision, Learned, RestoredState, RewardItem, RewardOutcome
from croupier.runtime.policies.stats import SufficientStats


class SharedTotals(NamedTuple):
    """Redis mode: what every replica learned together, per arm in the policy's arm order."""

    stats: SufficientStats
    pulls: list[int]
    rewards: list[int]
    sums: list[float]
    defaults: list[int]


class Learner(Protocol):
    """Where a store delivers what it made durable (on the event loop, in store order)."""

    def learn(self, learned: Iterable[tuple[int, Learned]]) -> None:
        """Rewards stored (client-sent or default), with their sequence number in the store (0: none)."""
        ...

    def adopt_shared(self, shared: SharedTotals) -> None:
        """Totals shared between replicas, replacing the local view."""
        ...


class Store(Protocol):
    """A state backend: the decision log, the reward join, learned state and its checkpoints."""

    backend: str
    """The `spec.state.backend` it implements, as /v1/stats reports it."""

    async def restore(self, fingerprint: str) -> RestoredState:
        """Before `start`: the last checkpoint of the statistics with this fingerprint and what was learned after it."""
        ...

    async def start(self, learner: Learner) -> None:
        """Start background work (writers, sweeps, syncs) on the running event loop; returns once it can serve."""
        ...

    async def close(self) -> None:
        """Commit everything queued (the last checkpoint included), then stop."""
        ...

    def log_decision(self, decision: Decision) -> None:
        """Queue a decision record; must not block (the decide hot path calls it)."""
        ...

    async def submit_rewards(self, items: list[RewardItem], received_at: float) -> list[RewardOutcome]:
        """Join (`croupier.runtime.decisions.join`), deduplicate and durably store the rewards of one request, all or
        nothing; delivers what it stored to the learner before returning. Raises CroupierError."""
        ...

    def checkpoint(self, fingerprint: str, seq: int, stats: bytes) -> None:
        """Save the learned statistics up to store sequence `seq` (with its next commit)."""
        ...

    def health(self) -> str | None:
        """None when it can serve, else why not (readiness)."""
        ...

    def liveness(self) -> str | None:
        """None unless the process needs a restart (a dead writer), else why."""
        ...
