"""Redis state: replicas of one DecisionPolicy share learned statistics, reward deduplication and decision records.

The join rules are `croupier.runtime.decisions.join`'s, shared with the SQLite store.

Keys, under the prefix P (default `croupier:<namespace>:<name>`):

- `P:stats:<fingerprint>` hash: the total sufficient statistics, field `i` = element `i` of `SufficientStats.to_flat()`.
  Replicas add deltas with HINCRBYFLOAT and read the total back every `redis_sync_interval_ms` (default 100 ms).
- `P:counters` hash: `pulls:<arm>`, `rewards:<arm>`, `sum:<arm>`, `defaults:<arm>` (what /v1/stats shows).
- `P:d:<decisionId>` string (TTL = attribution window + 10 min): the decision record, a `SharedDecision` (the
  structured decision with the arm and feature names it refers to) in msgspec's JSON, so a reward is joined on
  whichever replica it reaches.
- `P:rw:<decisionId>` string (same TTL): `r` (rewarded) or `d` (default reward); SET NX makes a reward count once.
- `P:pending` sorted set: decisions waiting for a reward, scored by the end of their window (the default-reward sweep).

A reward is acknowledged after one Lua script has, atomically, claimed its decision (SET NX) and added its statistics
delta and counters: durable as far as the Redis server's persistence goes (run it with `appendonly yes`). Decision
records reach Redis within the flush interval (default 50 ms); a reward that arrives at another replica before its
decision record is retried for up to three flush intervals. Every replica also keeps its own SQLite decision log (its
decisions, and the rewards it accepted) for export.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from croupier.runtime.decisions import join as rules
from croupier.runtime.decisions.join import DecisionState, Joinable, JoinRules
from croupier.runtime.decisions.records import (
    Decision,
    Learned,
    RestoredState,
    RewardItem,
    RewardOutcome,
    SharedDecision,
)
from croupier.runtime.errors import StoreError, Unavailable
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.stats import SufficientStats
from croupier.runtime.store.base import Learner, SharedTotals
from croupier.runtime.store.sqlite import SqliteStore

log = structlog.get_logger("croupier.runtime.redis")

TTL_MARGIN_SECONDS = 600
SWEEP_BATCH = 500
MAX_PENDING = 200_000
# No call into Redis may wait longer than this, whatever the client library does on a dead connection: a reward
# is answered 503 (never left hanging) and the background loops retry on their next tick.
OPERATION_TIMEOUT = 3.0

# ARGV: prefix, ttl, n, then n x (id, expires_at, arm, record).
_FLUSH = """
local prefix, ttl, n = ARGV[1], ARGV[2], tonumber(ARGV[3])
local pulls = {}
local pos = 4
for i = 1, n do
  local id, expires, arm, record = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3]
  redis.call('SET', prefix .. ':d:' .. id, record, 'EX', ttl)
  redis.call('ZADD', prefix .. ':pending', expires, id)
  pulls[arm] = (pulls[arm] or 0) + 1
  pos = pos + 4
end
for arm, count in pairs(pulls) do
  redis.call('HINCRBY', prefix .. ':counters', 'pulls:' .. arm, count)
end
return n
"""

# ARGV: prefix, stats key, ttl, n, then n x (id, kind r|d, arm, reward, nfields, field1, value1, ...).
# A default reward ('d') first claims the decision from the pending set, so one sweeper wins; every reward then claims
# the decision with SET NX, so a decision gets one reward, client-sent or default, whichever comes first.
_ACCEPT = """
local prefix, stats, ttl, n = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local counters = prefix .. ':counters'
local out = {}
local pos = 5
for i = 1, n do
  local id, kind, arm, reward, nf = ARGV[pos], ARGV[pos + 1], ARGV[pos + 2], ARGV[pos + 3], tonumber(ARGV[pos + 4])
  pos = pos + 5
  local claimed = 1
  if kind == 'd' then claimed = redis.call('ZREM', prefix .. ':pending', id) end
  local ok = false
  if claimed == 1 then ok = redis.call('SET', prefix .. ':rw:' .. id, kind, 'NX', 'EX', ttl) end
  if ok then
    if kind == 'r' then redis.call('ZREM', prefix .. ':pending', id) end
    for j = 0, nf - 1 do
      redis.call('HINCRBYFLOAT', stats, ARGV[pos + 2 * j], ARGV[pos + 2 * j + 1])
    end
    redis.call('HINCRBY', counters, 'rewards:' .. arm, 1)
    redis.call('HINCRBYFLOAT', counters, 'sum:' .. arm, reward)
    if kind == 'd' then redis.call('HINCRBY', counters, 'defaults:' .. arm, 1) end
    out[i] = 1
  else
    out[i] = 0
  end
  pos = pos + 2 * nf
end
return out
"""


_encode_shared = msgspec.json.Encoder().encode
_decode_shared = msgspec.json.Decoder(SharedDecision).decode
_MARKS = {b"r": DecisionState.REWARDED, b"d": DecisionState.DEFAULTED}

StatisticsDelta = Callable[[int, float, np.ndarray | None], SufficientStats]
"""The statistics one observation (arm index, reward, context as recorded) adds to the policy's."""


def _sparse(delta: SufficientStats) -> list[str | float]:
    flat = delta.to_flat()
    fields: list[str | float] = []
    for i in np.flatnonzero(flat).tolist():
        fields += [str(i), repr(float(flat[i]))]
    return fields


def _joinable(record: bytes, state: DecisionState) -> Joinable:
    """A shared decision record as the join reads it. Also reads the records of runtimes that logged request and
    response JSON (a JSON object, where a `SharedDecision` is an array), which a rolling upgrade leaves in Redis for
    one attribution window."""
    if record[:1] == b"{":
        legacy = orjson.loads(record)
        arm, ts, expires, features = legacy["arm"], legacy["ts"], legacy["expires"], legacy.get("features")
    else:
        d = _decode_shared(record).decision
        arm, ts, expires, features = d.arm, d.timestamp, d.expires_at, d.features
    return Joinable(arm, ts, expires, state, None if features is None else np.asarray(features, dtype=np.float64))


class RedisStore:
    backend = "Redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        log: SqliteStore,
        metrics: RuntimeMetrics,
        rules: JoinRules,
        fingerprint: str,
        arm_names: list[str],
        feature_names: list[str] | None,
        context_size: int,
        dimension: int,
        delta_of: StatisticsDelta,
        local_prefix: str,
        sync_interval: float = 0.1,
        flush_interval: float = 0.05,
        sweep_interval: float = 1.0,
    ) -> None:
        self._redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._stats_key = f"{prefix}:stats:{fingerprint}"
        self._log = log
        self._metrics = metrics
        self._rules = rules
        self._delta_of = delta_of
        self._arm_names = arm_names
        self._feature_names = feature_names
        self._context_size = context_size
        self._arm_index = {name: i for i, name in enumerate(arm_names)}
        self._local_prefix = local_prefix
        self._ttl = int(rules.window) + TTL_MARGIN_SECONDS
        self._sync_interval = sync_interval
        self._flush_interval = flush_interval
        self._sweep_interval = sweep_interval
        self._queue: collections.deque[Decision] = collections.deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._learner: Learner | None = None
        self._synced_at: float | None = None
        self._synced = asyncio.Event()
        self._error: str | None = None
        self._flush_script = self._redis.register_script(_FLUSH)
        self._accept_script = self._redis.register_script(_ACCEPT)
        self._dimension = dimension
        self._flat_size = SufficientStats.flat_size(len(arm_names), dimension)

    # ---------------------------------------------------------------- lifecycle
    async def restore(self, fingerprint: str) -> RestoredState:
        """The shared totals come from Redis once started; the local log only needs its schema."""
        await self._log.restore(fingerprint)
        return RestoredState(stats=None, seq=0, tail=[], counters={})

    async def start(self, learner: Learner) -> None:
        self._learner = learner
        await self._log.start(learner)  # a decision log only: it joins and learns nothing itself
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._sync_loop(), name="redis-sync"),
            loop.create_task(self._flush_loop(), name="redis-flush"),
            loop.create_task(self._sweep_loop(), name="redis-sweep"),
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), 5.0)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(RedisError, OSError):
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await self._flush_once()
        await self._redis.aclose()
        await self._log.close()

    def checkpoint(self, fingerprint: str, seq: int, stats: bytes) -> None:
        """Nothing to save: the learned state is the shared total in Redis."""

    def health(self) -> str | None:
        if self._error is not None:
            return self._error
        if self._synced_at is None:
            return "not yet synchronized with Redis"
        age = time.monotonic() - self._synced_at
        if age > 5.0:
            return f"learned totals not read from Redis for {age:.1f} s"
        return self._log.health()

    def liveness(self) -> str | None:
        return self._log.liveness()

    # ---------------------------------------------------------------- decisions
    def log_decision(self, decision: Decision) -> None:
        queue = self._queue
        if len(queue) >= MAX_PENDING:
            raise Unavailable("decision records cannot reach Redis; retry shortly")
        queue.append(decision)
        self._log.log_decision(decision)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_interval)
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    await self._flush_once()
            except (RedisError, OSError) as exc:
                self._failed("flush", exc)

    async def _flush_once(self) -> None:
        queue = self._queue
        arms, features = self._arm_names, self._feature_names
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), 2000))]
            args: list[Any] = [self._prefix, self._ttl, len(batch)]
            for decision in batch:
                record = _encode_shared(SharedDecision(decision, arms, features))
                args += [decision.decision_id, repr(decision.expires_at), decision.arm, record]
            try:
                await self._flush_script(args=args)
            except BaseException:
                queue.extendleft(reversed(batch))
                raise
            self._metrics.commit_records.labels("decision").inc(len(batch))

    # ---------------------------------------------------------------- rewards
    async def submit_rewards(self, items: list[RewardItem], received_at: float) -> list[RewardOutcome]:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                return await self._submit(items, received_at)
        except (RedisError, OSError) as exc:  # OSError includes TimeoutError
            self._failed("reward", exc)
            raise StoreError(f"the reward could not be stored in Redis: {exc}") from None

    async def _submit(self, items: list[RewardItem], received_at: float) -> list[RewardOutcome]:
        ids = [item.decision_id for item in items]
        records, marks = await self._lookup(ids)
        for attempt in range(3):
            missing = [i for i, record in enumerate(records) if record is None]
            if not missing:
                break
            # The decision may be on its way from another replica (decision records flush every interval).
            await asyncio.sleep(self._flush_interval * (attempt + 1))
            again, again_marks = await self._lookup([ids[i] for i in missing])
            for j, i in enumerate(missing):
                records[i], marks[i] = again[j], again_marks[j]
        found = [
            None if record is None else _joinable(record, _MARKS.get(mark or b"", DecisionState.WAITING))
            for record, mark in zip(records, marks, strict=True)
        ]
        joined = rules.join(items, found, received_at)
        records_by_id = {item.decision_id: record for item, record in zip(items, records, strict=True)}
        accepted = (
            await self._accept([(item.decision_id, "r", d, item.reward) for item, d in joined.accepted])
            if joined.accepted
            else []
        )
        taken: set[str] = set()
        learned: list[tuple[int, Learned]] = []
        rows = []
        for (item, _decision), (ok, reward) in zip(joined.accepted, accepted, strict=True):
            if ok:
                taken.add(item.decision_id)
                learned.append((0, reward))
                rows.append(self._row(item.decision_id, received_at, reward, records_by_id[item.decision_id]))
        if learned and self._learner is not None:
            self._learner.learn(learned)
        if rows:
            self._log.record_rewards(rows)
        # A decision another replica rewarded between the lookup and the claim is a duplicate too.
        return [RewardOutcome(o.decision_id, o.accepted and o.decision_id in taken) for o in joined.outcomes]

    async def _lookup(self, ids: list[str]) -> tuple[list[bytes | None], list[bytes | None]]:
        keys = [f"{self._prefix}:d:{i}" for i in ids] + [f"{self._prefix}:rw:{i}" for i in ids]
        values = [v if v is None or isinstance(v, bytes) else str(v).encode() for v in await self._redis.mget(keys)]
        return values[: len(ids)], values[len(ids) :]

    def _row(
        self, decision_id: str, ts: float, reward: Learned, record: bytes | None
    ) -> tuple[str, float, str, float, int, int, bytes | None, bytes | None]:
        local = decision_id.startswith(self._local_prefix)
        return (
            decision_id,
            ts,
            reward.arm,
            reward.reward,
            int(reward.is_default),
            int(reward.learn),
            None if reward.features is None else reward.features.tobytes(),
            None if local else record,
        )

    async def _accept(self, rewards: list[tuple[str, str, Joinable, float]]) -> list[tuple[bool, Learned]]:
        """Run the accept script: claim each decision once and add its statistics delta and counters."""
        args: list[Any] = [self._prefix, self._stats_key, self._ttl, len(rewards)]
        learned: list[Learned] = []
        for decision_id, kind, decision, value in rewards:
            reward = rules.learned(self._rules, decision.arm, value, decision.features, default=kind == "d")
            learned.append(reward)
            arm = self._arm_index.get(decision.arm)
            fields: list[str | float] = []
            features = decision.features
            if reward.learn and arm is not None and (features is None or features.shape[0] == self._context_size):
                fields = _sparse(self._delta_of(arm, value, features))
            args += [decision_id, kind, decision.arm, repr(float(value)), len(fields) // 2, *fields]
        flags = await self._accept_script(args=args)
        return [(bool(flag), reward) for flag, reward in zip(flags, learned, strict=True)]

    # ---------------------------------------------------------------- shared totals
    async def _sync_loop(self) -> None:
        while True:
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    await self._sync_once()
            except (RedisError, OSError) as exc:
                self._failed("sync", exc)
            self._metrics.redis_sync_age.set(-1.0 if self._synced_at is None else time.monotonic() - self._synced_at)
            await asyncio.sleep(self._sync_interval)

    async def _sync_once(self) -> None:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._stats_key)
        pipe.hgetall(f"{self._prefix}:counters")
        stats_raw, counters_raw = await pipe.execute()
        flat = np.zeros(self._flat_size)
        for key, value in stats_raw.items():
            position = int(key)
            if 0 <= position < self._flat_size:
                flat[position] = float(value)
        total = SufficientStats.from_flat(len(self._arm_names), self._dimension, flat)
        k = len(self._arm_names)
        pulls, rewards, sums, defaults = [0] * k, [0] * k, [0.0] * k, [0] * k
        for key, value in counters_raw.items():
            kind, _, arm = key.decode().partition(":")
            index = self._arm_index.get(arm)
            if index is None:
                continue
            if kind == "pulls":
                pulls[index] = int(value)
            elif kind == "rewards":
                rewards[index] = int(value)
            elif kind == "sum":
                sums[index] = float(value)
            elif kind == "defaults":
                defaults[index] = int(value)
        # Decisions not yet flushed count locally until Redis has them.
        for decision in self._queue:
            pulls[decision.arm_index] += 1
        if self._learner is not None:
            self._learner.adopt_shared(SharedTotals(total, pulls, rewards, sums, defaults))
        self._synced_at = time.monotonic()
        self._synced.set()
        self._error = None

    # ---------------------------------------------------------------- default rewards
    async def _sweep_loop(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_interval)
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    while await self._sweep_once() >= SWEEP_BATCH:
                        pass
            except (RedisError, OSError) as exc:
                self._failed("sweep", exc)

    async def _sweep_once(self) -> int:
        now = time.time()
        # Exclusive bound: a window closes once `now` is past its end (`croupier.runtime.decisions.join`).
        due = await self._redis.zrangebyscore(f"{self._prefix}:pending", "-inf", f"({now!r}", start=0, num=SWEEP_BATCH)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in due]
        if not ids:
            return 0
        records, _ = await self._lookup(ids)
        _, default = rules.settle(self._rules)
        if default is None:
            await self._redis.zrem(f"{self._prefix}:pending", *ids)
            return len(ids)
        claims: list[tuple[str, Joinable, bytes]] = []
        gone = []
        for decision_id, record in zip(ids, records, strict=True):
            if record is None:
                gone.append(decision_id)
            else:
                claims.append((decision_id, _joinable(record, DecisionState.WAITING), record))
        if gone:
            await self._redis.zrem(f"{self._prefix}:pending", *gone)
        if not claims:
            return len(ids)
        accepted = await self._accept([(i, "d", d, default) for i, d, _ in claims])
        learned: list[tuple[int, Learned]] = []
        rows = []
        for (decision_id, _, record), (ok, reward) in zip(claims, accepted, strict=True):
            if ok:
                learned.append((0, reward))
                rows.append(self._row(decision_id, now, reward, record))
        if learned and self._learner is not None:
            self._learner.learn(learned)
        if rows:
            self._log.record_rewards(rows)
            log.info("default rewards assigned", count=len(rows), reward=default)
        return len(ids)

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._error = f"Redis {operation} failed: {exc}"
        self._metrics.store_errors.labels(f"redis_{operation}").inc()
        log.warning("redis operation failed", operation=operation, error=str(exc))
