"""Retries of idempotent calls: exponential backoff with full jitter (the AWS architecture blog's "full jitter").

Only calls the runtime deduplicates are retried: rewards (by decisionId), outcomes that all carry an eventId,
exposures (one per unit and epoch), assign (sticky and logged once per unit and epoch) and stats. Decide (and rank)
are never sent twice: a decision the runtime logged but whose answer was lost would be a second, unrewarded decision.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``attempts`` sends in all (1: no retry); before send n+1 the client waits a uniformly random time in
    [0, min(max_delay, base_delay * 2**n)] seconds."""

    attempts: int = 4
    base_delay: float = 0.05
    max_delay: float = 2.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("base_delay and max_delay must not be negative")

    def delay(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** min(retry, 32)))
        return self.rng.uniform(0.0, ceiling)


NO_RETRY = RetryPolicy(attempts=1)
