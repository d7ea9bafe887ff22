"""The ranking service: `rank(RankRequest) -> Slate`, transport-free, on the decision service's vector and log.

A slate is `k` positions drawn by sequential sampling without replacement (`croupier.runtime.ranking.slate`) from
the vector the decision service decides this request with (`DecisionService.distribution`: the policy's own, or a
model-scored one), so it works for every algorithm. Every position is a decision of its own: its id, its conditional
vector (0 for arms placed above and for arms outside the candidates), the arms it was drawn from as its candidates,
the request's context, the slate id and the position. It is logged and counted like a decide answer, so a reward for
a position (a click at position 2) goes to `POST /v1/rewards` with that position's decisionId, joins like any other
reward and reaches the learner, and the export carries the conditional propensity beside slateId and position.
"""

from __future__ import annotations

import time
from typing import Annotated, NamedTuple

import msgspec

from croupier.api.decisionpolicy import MAX_ARMS
from croupier.runtime.decisions.records import DecideRequest, Decision, Distribution
from croupier.runtime.decisions.service import DecisionService
from croupier.runtime.errors import InvalidField
from croupier.runtime.ranking.slate import sample_slate
from croupier.runtime.scoring.scorer import ScoredVector


class RankRequest(DecideRequest, kw_only=True):
    """Ask for a slate of `k` arms (the rules of `croupier.api.wire.RankRequest`; the JSON decoder checks them)."""

    k: Annotated[int, msgspec.Meta(ge=1, le=MAX_ARMS)] | Annotated[float, msgspec.Meta(ge=1, le=MAX_ARMS)]
    """A JSON integer; a number with no fraction (`2.0`) is the same integer, as in JSON Schema."""


def slate_size(k: float) -> int:
    """`k` as an int: a whole number (`3` or `3.0`), else an error naming `k`."""
    if type(k) is int:
        return k
    if not float(k).is_integer():
        raise InvalidField(f"k must be a whole number, got {k}", field="k")
    return int(k)


class Slate(NamedTuple):
    """A ranking as answered: its id and one logged decision per position, top first."""

    slate_id: str
    positions: list[Decision]
    """`positions[j]` is position `j + 1`: `eligible` holds the arms it was drawn from, `probabilities` its
    conditional vector."""


class RankingService:
    """Ranks with one decision service's policy (its vector, its ids, its log and counters)."""

    def __init__(self, decisions: DecisionService) -> None:
        self.decisions = decisions
        self.arm_names = decisions.arm_names
        self.floor = decisions.served.spec.exploration.min_probability
        self._all = list(range(len(self.arm_names)))
        self._version = decisions.served.version

    def rank(self, request: RankRequest) -> Slate:
        """A slate from the policy's own vector for this request."""
        return self._slate(request, self.decisions.distribution(request), None)

    async def rank_scored(self, request: RankRequest) -> Slate:
        """A slate of a model-scored policy (spec.scoring): one Predict, every position drawn from the explored
        scores (or the fallback's vector), each position logged with the model's scores and version."""
        values, eligible, scored = await self.decisions.vector_for(request)
        return self._slate(request, Distribution(values, eligible, scored.probabilities), scored)

    def _slate(self, request: RankRequest, distribution: Distribution, scored: ScoredVector | None) -> Slate:
        decisions = self.decisions
        eligible = self._all if distribution.eligible is None else sorted(distribution.eligible)
        k = slate_size(request.k)
        if not 1 <= k <= len(eligible):
            raise InvalidField(
                f"k must be between 1 and the number of eligible arms ({len(eligible)}), got {k}", field="k"
            )
        uniforms: list[float] = decisions.random.random(k).tolist()
        placements = sample_slate(distribution.probabilities, eligible, k, self.floor, uniforms)
        slate_id = decisions.next_id()
        now = time.time()
        expires_at = now + decisions.window
        n = len(self.arm_names)
        scores = model_version = fallback = None
        if scored is not None:
            scores, model_version = scored.scores, scored.model_version
            fallback = None if scored.fallback is None else scored.fallback.value
        positions = []
        for position, placed in enumerate(placements, start=1):
            decision = Decision(
                decisions.next_id(),
                now,
                self.arm_names[placed.arm],
                placed.arm,
                placed.probabilities,
                None if len(placed.remaining) == n else placed.remaining,
                distribution.features,
                request.unit_id,
                self._version,
                expires_at,
                scores=scores,
                model_version=model_version,
                fallback=fallback,
                slate_id=slate_id,
                position=position,
            )
            decisions.record(decision)
            positions.append(decision)
        return Slate(slate_id, positions)
