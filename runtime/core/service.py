"""The decision service: validates requests, decides, logs every decision, joins rewards and learns from them.

Transport-free: it takes request bodies (bytes) and returns response bodies (bytes) or raises a CroupierError. The
decide path is synchronous and does no I/O: the decision record goes to the store's queue, and the store commits it
within its flush bound. Rewards are answered only after the store made them durable.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson
import structlog

from croupier.api.decisionpolicy import RewardType
from croupier.runtime.core.engine import Engine
from croupier.runtime.core.ids import DecisionIds
from croupier.runtime.core.records import DecisionRecord, Learned
from croupier.runtime.core.validation import DecideSchema, parse_rewards
from croupier.runtime.errors import CroupierError, InvalidField
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.errors import PolicyInputError
from croupier.runtime.policy_file import ServedPolicy
from croupier.runtime.store.base import Store

log = structlog.get_logger("croupier.runtime")

# Policy error fields, as the request names them.
_POLICY_FIELDS = {"eligible": "candidates", "context": "context"}

_HEAD = b'{"decisionId":"'
_ARM = b'","arm":'
_PROBABILITIES = b',"probabilities":'

# Encoded probability vectors kept for reuse (see decide).
_SHOWN_MEMO = 256

# A decision record keeps the request as received; a padded body is re-encoded compactly first.
_MAX_LOGGED_REQUEST = 8192


class ArmCounters:
    """Per-arm counts for /v1/stats and the DecisionPolicy status (pulls, rewards, reward sums, default rewards)."""

    __slots__ = ("default_rewards", "pulls", "reward_sum", "rewards")

    def __init__(self, arms: int) -> None:
        self.pulls = [0] * arms
        self.rewards = [0] * arms
        self.reward_sum = [0.0] * arms
        self.default_rewards = [0] * arms

    def replace(self, pulls: list[int], rewards: list[int], reward_sum: list[float], defaults: list[int]) -> None:
        self.pulls, self.rewards, self.reward_sum, self.default_rewards = pulls, rewards, reward_sum, defaults


class DecisionService:
    def __init__(
        self,
        served: ServedPolicy,
        engine: Engine,
        store: Store,
        metrics: RuntimeMetrics,
        *,
        replica: str | None = None,
        debug: bool = False,
    ) -> None:
        spec = served.spec
        self.served = served
        self.engine = engine
        self.store = store
        self.metrics = metrics
        self.replica = replica
        self.arm_names = spec.arm_names
        self.arm_index = {name: i for i, name in enumerate(self.arm_names)}
        self.counters = ArmCounters(len(self.arm_names))
        self.paused = spec.paused
        self.applied_seq = 0
        self._schema = DecideSchema(
            self.arm_names,
            contextual=served.contextual,
            feature_names=served.feature_names,
            size=served.context_size,
        )
        self._binary = spec.reward.type == RewardType.BINARY
        self._window = float(spec.reward.attribution_window_seconds)
        self._version = served.version
        self._arm_json = [orjson.dumps(name) for name in self.arm_names]
        self._tail = b',"policyVersion":' + orjson.dumps(served.version) + b"}"
        self._shown: dict[tuple[float, ...], bytes] = {}
        self._ids = DecisionIds()
        self.id_prefix = self._ids.prefix
        self._decided = metrics.decision_counts(self.arm_names)
        self._rewarded = [metrics.rewards.labels(name, "reward") for name in self.arm_names]
        self._defaulted = [metrics.rewards.labels(name, "default") for name in self.arm_names]
        metrics.policy_info.labels(served.name, served.version, spec.algorithm.type).set(1)
        # Per-decision log lines only when asked for (log level debug), decided once: even a disabled structlog
        # call costs on the hot path.
        self._debug = debug

    # ------------------------------------------------------------------ decide (hot path)
    def decide(self, body: bytes) -> bytes:
        started = time.perf_counter()
        _unit_id, values, eligible = self._schema.parse(body)
        x = None if values is None else self.engine.vector(values)
        try:
            arm, probabilities = self.engine.decide(x, eligible)
        except PolicyInputError as exc:
            raise InvalidField(str(exc), field=_POLICY_FIELDS.get(exc.field or "", exc.field)) from None
        names = self.arm_names
        name = names[arm]
        decision_id = self._ids.next()
        if eligible is None:
            # Vectors repeat: a non-contextual policy's until its state changes, LinUCB's and ε-greedy's are one of a
            # few (the floored one-hot vector of each arm). Encode each once; the memo is bounded.
            shown = self._shown.get(probabilities)
            if shown is None:
                shown = orjson.dumps(dict(zip(names, probabilities, strict=True)))
                if len(self._shown) >= _SHOWN_MEMO:
                    self._shown.clear()
                self._shown[probabilities] = shown
        else:
            shown = orjson.dumps({names[i]: probabilities[i] for i in eligible})
        # Assembled from pre-encoded parts: an exact-size object (orjson's own output sits in a 4 KiB buffer, which
        # a queued decision record would hold until its commit), and cheaper than encoding the whole dict.
        response = b"".join((_HEAD, decision_id.encode(), _ARM, self._arm_json[arm], _PROBABILITIES, shown, self._tail))
        if len(body) > _MAX_LOGGED_REQUEST:
            body = orjson.dumps(orjson.loads(body))
        now = time.time()
        self.store.log_decision(
            DecisionRecord(
                decision_id,
                now,
                name,
                now + self._window,
                values,
                body,
                response,
            )
        )
        self.counters.pulls[arm] += 1
        decided = self._decided
        decided.by_arm[arm] += 1
        decided.observe(time.perf_counter() - started)
        if self._debug:
            log.debug("decided", decision_id=decision_id, arm=name, unit_id=_unit_id)
        return response

    # ------------------------------------------------------------------ rewards
    async def reward(self, body: bytes) -> bytes:
        received_at = time.time()
        items = parse_rewards(body, binary=self._binary)
        try:
            outcomes = await self.store.submit_rewards(items, received_at)
        except CroupierError as exc:
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
        return orjson.dumps(
            {
                "accepted": accepted,
                "duplicates": duplicates,
                "results": [
                    {"decisionId": o.decision_id, "outcome": "accepted" if o.accepted else "duplicate"}
                    for o in outcomes
                ],
            }
        )

    def learn(self, learned: Iterable[tuple[int, Learned]]) -> None:
        """Apply durable rewards in store order (called by the store on the event loop, before it acknowledges)."""
        engine, counters, index = self.engine, self.counters, self.arm_index
        changed = False
        for seq, item in learned:
            arm = index.get(item.arm)
            if arm is None:  # an arm removed from the spec since the decision
                continue
            if not self.paused:
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

    def replay(self, learned: Iterable[tuple[int, Learned]]) -> int:
        """Learn rewards again at start (after a checkpoint); counters are restored separately."""
        count = 0
        for seq, item in learned:
            arm = self.arm_index.get(item.arm)
            if arm is not None and (item.features is None or item.features.shape[0] == self.served.context_size):
                try:
                    self.engine.learn(arm, item.reward, item.features)
                except PolicyInputError:
                    continue
                count += 1
            self.applied_seq = max(self.applied_seq, seq)
        return count

    def restore_counters(self, counters: dict[str, tuple[int, int, float, int]]) -> None:
        c = self.counters
        for name, (pulls, rewards, reward_sum, defaults) in counters.items():
            arm = self.arm_index.get(name)
            if arm is not None:
                c.pulls[arm], c.rewards[arm], c.reward_sum[arm], c.default_rewards[arm] = (
                    pulls,
                    rewards,
                    reward_sum,
                    defaults,
                )

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
            "paused": self.paused,
            "backend": self.store.backend,
            "replica": self.replica,
            "arms": arms,
            "totals": {
                "decisions": sum(c.pulls),
                "rewards": sum(c.rewards),
                "defaultRewards": sum(c.default_rewards),
            },
            "bestArm": None if best is None else best[1],
        }

    def health(self) -> str | None:
        return self.store.health()
