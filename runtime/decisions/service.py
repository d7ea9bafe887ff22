"""The decision service: decides, logs every decision, joins rewards through its store and learns from them.

Transport-free, on typed values: `decide(DecideRequest) -> Decision`, `rewards(list[RewardItem]) -> RewardsAnswer`.
Adapters (`croupier.runtime.http`) decode and encode bodies. The decide path is synchronous and does no I/O: the
decision goes to the store's queue, and the store commits it within its flush bound. Rewards are answered only after
the store made them durable; the store hands what it stored to `learn` (in store order, before it answers).
"""

from __future__ import annotations

import time
from bisect import bisect_left as _bisect_left
from collections.abc import Iterable
from typing import Any

import numpy as np
import structlog

from croupier.api.decisionpolicy import RewardType
from croupier.runtime.decisions.engine import Engine
from croupier.runtime.decisions.ids import DecisionIds
from croupier.runtime.decisions.join import JoinRules
from croupier.runtime.decisions.records import (
    DecideRequest,
    Decision,
    Distribution,
    Learned,
    RestoredState,
    RewardItem,
    RewardsAnswer,
)
from croupier.runtime.decisions.validation import DecideSchema, check_rewards
from croupier.runtime.errors import AttributionWindowExpired, CroupierError, InvalidField, UnknownDecision
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.errors import PolicyInputError
from croupier.runtime.policies.stats import SufficientStats
from croupier.runtime.policy_file import ServedPolicy
from croupier.runtime.scoring.scorer import ScoredVector, Scorer
from croupier.runtime.store.base import SharedTotals, Store

log = structlog.get_logger("croupier.runtime")

_perf_counter = time.perf_counter
_time = time.time

# Policy error fields, as the request names them.
_POLICY_FIELDS = {"eligible": "candidates", "context": "context"}
_JOIN_MISSES: dict[type[CroupierError], str] = {UnknownDecision: "unknown", AttributionWindowExpired: "late"}


def _draw(probabilities: tuple[float, ...], u: float) -> int:
    """The arm sampled with exactly its probability for a uniform ``u`` in [0, 1); never an arm with probability 0."""
    total = 0.0
    last = 0
    for arm, p in enumerate(probabilities):
        if p > 0.0:
            total += p
            last = arm
            if u < total:
                return arm
    return last  # u at or above a total that rounded below 1: the last arm that can be chosen


class ArmCounters:
    """Per-arm counts for /v1/stats and the DecisionPolicy status (pulls, rewards, reward sums, default rewards)."""

    __slots__ = ("default_rewards", "pulls", "reward_sum", "rewards")

    def __init__(self, arms: int) -> None:
        self.pulls = [0] * arms
        self.rewards = [0] * arms
        self.reward_sum = [0.0] * arms
        self.default_rewards = [0] * arms


class DecisionService:
    def __init__(
        self,
        served: ServedPolicy,
        engine: Engine,
        store: Store,
        metrics: RuntimeMetrics,
        *,
        ids: DecisionIds | None = None,
        replica: str | None = None,
        debug: bool = False,
        seed: int | None = None,
    ) -> None:
        spec = served.spec
        self.served = served
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.replica = replica
        self.rules = JoinRules.of(spec)
        self.arm_names = spec.arm_names
        self.arm_index = {name: i for i, name in enumerate(self.arm_names)}
        self.counters = ArmCounters(len(self.arm_names))
        self.applied_seq = 0
        self.schema = DecideSchema(
            self.arm_names,
            contextual=served.contextual,
            feature_names=served.feature_names,
            size=served.context_size,
        )
        self.binary = spec.reward.type == RewardType.BINARY
        self._window = self.rules.window
        self._version = served.version
        self._ids = ids or DecisionIds()
        # A stream of its own: the policy's generator may have the same seed.
        self.random = np.random.default_rng(None if seed is None else [seed, 1])
        """The draws the service makes itself, outside the policy (the positions of a ranking)."""
        self._decided = metrics.decision_counts(self.arm_names, served.name)
        self._rewarded = [metrics.rewards.labels(name, "reward") for name in self.arm_names]
        self._defaulted = [metrics.rewards.labels(name, "default") for name in self.arm_names]
        metrics.policy_info.labels(served.name, served.version, spec.algorithm.type).set(1)
        # Per-decision log lines only when asked for (log level debug), decided once: even a disabled structlog
        # call costs on the hot path.
        self._debug = debug
        # The decide path's callees, bound once (the store, the engine and the ids are fixed for the service's life).
        self._contextual = served.contextual
        self._engine_decide = engine.decide
        self._next_id = self._ids.next
        self._log_decision = store.log_decision
        self.scorer: Scorer | None = None
        self._scored_schema = DecideSchema(
            self.arm_names,
            contextual=spec.context is not None,
            feature_names=served.feature_names,
            size=served.context_size,
        )
        self._rng = np.random.default_rng()

    # ------------------------------------------------------------------ decide (hot path)
    def decide(self, request: DecideRequest) -> Decision:
        started = _perf_counter()
        if request.context is None and request.candidates is None and not self._contextual:
            values = eligible = None  # what `schema.check` gives such a request, without the call
            x = None
        else:
            values, eligible = self.schema.check(request)
            x = None if values is None else self.engine.vector(values)
        try:
            arm, probabilities = self._engine_decide(x, eligible)
        except PolicyInputError as exc:
            raise InvalidField(str(exc), field=_POLICY_FIELDS.get(exc.field or "", exc.field)) from None
        now = _time()
        decision = Decision(
            self._next_id(),
            now,
            self.arm_names[arm],
            arm,
            probabilities,
            eligible,
            values,
            request.unit_id,
            self._version,
            now + self._window,
        )
        self._log_decision(decision)
        self.counters.pulls[arm] += 1
        decided = self._decided
        decided.by_arm[arm] += 1
        if probabilities is decided.run_vector:  # DecisionCounts.served, inlined
            decided.run_length += 1
        else:
            decided.start_run(probabilities)
        seconds = _perf_counter() - started
        decided.bucket_counts[_bisect_left(decided.buckets, seconds)] += 1  # DecisionCounts.observe, inlined
        decided.latency_sum += seconds
        if self._debug:
            log.debug("decided", decision_id=decision.decision_id, arm=decision.arm, unit_id=request.unit_id)
        return decision

    # ------------------------------------------------------------------ the vector of one request
    def distribution(self, request: DecideRequest) -> Distribution:
        """The probability vector this request is decided with: the one place it is computed for anything but
        decide's own hot path (which lets the engine choose and return the same vector in one call). Ranking draws
        every position from it (`croupier.runtime.ranking`)."""
        values, eligible = self.schema.check(request)
        x = None if values is None else self.engine.vector(values)
        try:
            probabilities = self.engine.distribution(x, eligible)
        except PolicyInputError as exc:
            raise InvalidField(str(exc), field=_POLICY_FIELDS.get(exc.field or "", exc.field)) from None
        return Distribution(values, eligible, probabilities)

    def next_id(self) -> str:
        """A new id, unique across processes and replicas (decision ids, slate ids)."""
        return self._next_id()

    def record(self, decision: Decision) -> None:
        """Log and count a decision made outside `decide` (a position of a ranking)."""
        self._log_decision(decision)
        self.counters.pulls[decision.arm_index] += 1
        self._decided.by_arm[decision.arm_index] += 1
        self._decided.served(decision.probabilities)
        if self._debug:
            log.debug(
                "decided",
                decision_id=decision.decision_id,
                arm=decision.arm,
                unit_id=decision.unit_id,
                slate_id=decision.slate_id,
                position=decision.position,
            )

    @property
    def window(self) -> float:
        """The attribution window in seconds (a decision's `expires_at` is its time plus this)."""
        return self._window

    # ------------------------------------------------------------------ decide, model-scored (spec.scoring)
    def use_scorer(self, scorer: Scorer, *, seed: int | None = None) -> None:
        """Serve decisions through the model (`decide_scored`); requests carry the context whatever the algorithm."""
        self.scorer = scorer
        self.schema = self._scored_schema
        self._rng = np.random.default_rng(seed)

    async def vector_for(self, request: DecideRequest) -> tuple[list[float] | None, list[int] | None, ScoredVector]:
        """The probability vector for this request (the checked context values and eligible arms with it): the
        model's scores explored, or the fallback's. Decide draws one arm from it; a ranking calls the same."""
        scorer = self.scorer
        assert scorer is not None
        values, eligible = self._scored_schema.check(request)

        def policy_vector() -> tuple[float, ...]:
            x = None if values is None or not self._contextual else self.engine.vector(values)
            try:
                return self._engine_decide(x, eligible)[1]
            except PolicyInputError as exc:
                raise InvalidField(str(exc), field=_POLICY_FIELDS.get(exc.field or "", exc.field)) from None

        return values, eligible, await scorer.vector(values, eligible, policy_vector)

    async def decide_scored(self, request: DecideRequest) -> Decision:
        started = _perf_counter()
        values, eligible, scored = await self.vector_for(request)
        probabilities = scored.probabilities
        arm = _draw(probabilities, float(self._rng.random()))
        now = _time()
        decision = Decision(
            self._next_id(),
            now,
            self.arm_names[arm],
            arm,
            probabilities,
            eligible,
            values,
            request.unit_id,
            self._version,
            now + self._window,
            scored.scores,
            scored.model_version,
            None if scored.fallback is None else scored.fallback.value,
        )
        self._log_decision(decision)
        self.counters.pulls[arm] += 1
        decided = self._decided
        decided.by_arm[arm] += 1
        decided.served(probabilities)
        decided.observe(_perf_counter() - started)
        if self._debug:
            log.debug(
                "decided",
                decision_id=decision.decision_id,
                arm=decision.arm,
                unit_id=request.unit_id,
                model_version=scored.model_version,
                fallback=decision.fallback,
            )
        return decision

    # ------------------------------------------------------------------ rewards
    async def rewards(self, items: list[RewardItem], *, received_at: float | None = None) -> RewardsAnswer:
        """Join, store and learn the rewards of one request, all or nothing; answered once they are durable."""
        received_at = time.time() if received_at is None else received_at
        check_rewards(items, binary=self.binary)
        try:
            outcomes = await self.store.submit_rewards(items, received_at)
        except CroupierError as exc:
            miss = _JOIN_MISSES.get(type(exc))
            if miss is not None:
                self.metrics.join_misses.labels(miss).inc()
            log.info(
                "rewards rejected",
                error=exc.code,
                field=exc.field,
                decision_ids=[item.decision_id for item in items[:10]],
                count=len(items),
                reason=exc.message,
            )
            raise
        if self._debug:
            for outcome in outcomes:
                log.debug("reward", decision_id=outcome.decision_id, accepted=outcome.accepted)
        accepted = sum(1 for o in outcomes if o.accepted)
        duplicates = len(outcomes) - accepted
        if duplicates:
            self.metrics.reward_duplicates.inc(duplicates)
        self.metrics.reward_latency.observe(time.time() - received_at)
        return RewardsAnswer(accepted, duplicates, outcomes)

    # ------------------------------------------------------------------ what the store hands back
    def learn(self, learned: Iterable[tuple[int, Learned]]) -> None:
        """Apply durable rewards in store order (called by the store on the event loop, before it acknowledges)."""
        engine, counters, index = self.engine, self.counters, self.arm_index
        changed = False
        for seq, item in learned:
            arm = index.get(item.arm)
            if arm is None:  # an arm removed from the spec since the decision
                continue
            if item.learn:
                try:
                    engine.learn(arm, item.reward, item.features)
                    changed = True
                except PolicyInputError as exc:  # stored already; the policy cannot use it (e.g. overflowing values)
                    log.warning("reward not learned", arm=item.arm, reward=item.reward, error=str(exc))
            counters.rewards[arm] += 1
            counters.reward_sum[arm] += item.reward
            if item.is_default:
                counters.default_rewards[arm] += 1
                self._defaulted[arm].inc()
            else:
                self._rewarded[arm].inc()
            self.applied_seq = max(self.applied_seq, seq)
        if changed:
            # Once per batch, on the reward path: decisions then reuse the vector (Thompson sampling's quadrature
            # would otherwise run on the first decision after every reward).
            engine.prepare()

    def adopt_shared(self, shared: SharedTotals) -> None:
        """Redis mode: the replicas' shared totals replace this replica's view (paused too: decide with the shared
        state; the rewards stored while paused added nothing to it)."""
        self.engine.adopt_total(shared.stats)
        c = self.counters
        c.pulls, c.rewards, c.reward_sum, c.default_rewards = shared.pulls, shared.rewards, shared.sums, shared.defaults

    def restore(self, restored: RestoredState) -> int:
        """Adopt the store's checkpoint and replay the rewards after it; returns how many were learned again."""
        if restored.stats is not None:
            self.engine.replace_stats(SufficientStats.from_bytes(restored.stats))
            self.applied_seq = restored.seq
        count = 0
        for seq, item in restored.tail:
            arm = self.arm_index.get(item.arm)
            if (
                item.learn
                and arm is not None
                and (item.features is None or item.features.shape[0] == self.served.context_size)
            ):
                try:
                    self.engine.learn(arm, item.reward, item.features)
                except PolicyInputError:
                    continue
                count += 1
            self.applied_seq = max(self.applied_seq, seq)
        c = self.counters
        for name, (pulls, rewards, reward_sum, defaults) in restored.counters.items():
            arm = self.arm_index.get(name)
            if arm is not None:
                c.pulls[arm], c.rewards[arm], c.reward_sum[arm], c.default_rewards[arm] = (
                    pulls,
                    rewards,
                    reward_sum,
                    defaults,
                )
        return count

    # ------------------------------------------------------------------ stats
    def stats(self) -> dict[str, Any]:
        c = self.counters
        probabilities = self.engine.probabilities()
        posteriors = self.engine.posteriors()
        arms = []
        best: tuple[float, str] | None = None
        for i, name in enumerate(self.arm_names):
            mean = c.reward_sum[i] / c.rewards[i] if c.rewards[i] else None
            if mean is not None and (best is None or mean > best[0]):
                best = (mean, name)
            arms.append(
                {
                    "name": name,
                    "pulls": c.pulls[i],
                    "rewards": c.rewards[i],
                    "rewardSum": c.reward_sum[i],
                    "mean": mean,
                    "probability": None if probabilities is None else float(probabilities[i]),
                    "posterior": posteriors[i] if i < len(posteriors) else {},
                }
            )
        served = self.served
        return {
            "policy": {"name": served.name, "namespace": served.namespace},
            "generation": served.generation,
            "policyVersion": served.version,
            "algorithm": served.spec.algorithm.type,
            "paused": not self.rules.learn,
            "backend": self.store.backend,
            "replica": self.replica,
            "arms": arms,
            "totals": {
                "decisions": sum(c.pulls),
                "rewards": sum(c.rewards),
                "defaultRewards": sum(c.default_rewards),
            },
            "bestArm": None if best is None else best[1],
            **({"scoring": self.scorer.stats()} if self.scorer is not None else {}),
        }

    def health(self) -> str | None:
        return self.store.health()
