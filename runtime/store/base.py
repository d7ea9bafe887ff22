"""The interface between the decision service and a state backend."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from croupier.runtime.core.records import DecisionRecord, Learned, RewardItem, RewardOutcome


class Store(Protocol):
    backend: str

    def log_decision(self, record: DecisionRecord) -> None:
        """Queue a decision record; must not block (the decide hot path calls it)."""
        ...

    async def submit_rewards(self, items: list[RewardItem], received_at: float) -> list[RewardOutcome]:
        """Join, deduplicate and durably store the rewards of one request, all or nothing; raise CroupierError."""
        ...

    def start(
        self, loop: asyncio.AbstractEventLoop, on_learned: Callable[[list[tuple[int, Learned]]], None]
    ) -> None: ...

    async def close(self) -> None: ...

    def health(self) -> str | None:
        """None when healthy, else why not."""
        ...

    def pending_decisions(self) -> int: ...
