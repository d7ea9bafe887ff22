"""Redis state: replicas of one DecisionPolicy share learned statistics, reward deduplication and decision records.

Keys, under the prefix P (default `croupier:<namespace>:<name>`):

- `P:stats:<fingerprint>` hash: the total sufficient statistics, field `i` = element `i` of `SufficientStats.to_flat()`.
  Replicas add deltas with HINCRBYFLOAT and read the total back every `redis_sync_interval_ms` (default 100 ms).
- `P:counters` hash: `pulls:<arm>`, `rewards:<arm>`, `sum:<arm>`, `defaults:<arm>` (what /v1/stats shows).
- `P:d:<decisionId>` string (TTL = attribution window + 10 min): the decision record (arm, time, window end, context,
  request, response), so a reward is joined on whichever replica it reaches.
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

import numpy as np
import orjson
import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from croupier.runtime.core.engine import Engine
from croupier.runtime.core.records import DecisionRecord, Learned, RewardItem, RewardOutcome
from croupier.runtime.core.service import ArmCounters
from croupier.runtime.errors import AttributionWindowExpired, StoreError, Unavailable, UnknownDecision
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.stats import SufficientStats
from croupier.runtime.policy_file import ServedPolicy
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


def _record(record: DecisionRecord) -> bytes:
    """The shared decision record: request and response are JSON already and are embedded as they are."""
    features = orjson.dumps(record.features)  # null for non-contextual policies
    head = orjson.dumps({"arm": record.arm, "ts": record.timestamp, "expires": record.expires_at})
    return (
        head[:-1]
        + b',"features":'
        + features
        + b',"request":'
        + record.request
        + b',"response":'
        + record.response
        + b"}"
    )


def _sparse(delta: SufficientStats) -> list[str | float]:
    flat = delta.to_flat()
    fields: list[str | float] = []
    for i in np.flatnonzero(flat).tolist():
        fields += [str(i), repr(float(flat[i]))]
    return fields


class RedisStore:
    backend = "Redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        served: ServedPolicy,
        log: SqliteStore,
        metrics: RuntimeMetrics,
        engine: Engine,
        counters: ArmCounters,
        local_prefix: str,
        sync_interval: float = 0.1,
        flush_interval: float = 0.05,
        sweep_interval: float = 1.0,
    ) -> None:
        self._redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._stats_key = f"{prefix}:stats:{served.fingerprint}"
        self._served = served
        self._log = log
        self._metrics = metrics
        self._engine = engine
        self._counters = counters
        self._arm_names = served.spec.arm_names
        self._arm_index = {name: i for i, name in enumerate(self._arm_names)}
        self._local_prefix = local_prefix
        self._learn = not served.spec.paused
        self._default = served.spec.reward.default_reward
        self._ttl = served.spec.reward.attribution_window_seconds + TTL_MARGIN_SECONDS
        self._sync_interval = sync_interval
        self._flush_interval = flush_interval
        self._sweep_interval = sweep_interval
        self._queue: collections.deque[DecisionRecord] = collections.deque()
        self._flush_now = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._on_learned: Callable[[list[tuple[int, Learned]]], None] | None = None
        self._synced_at: float | None = None
        self._synced = asyncio.Event()
        self._error: str | None = None
        self._flush_script = self._redis.register_script(_FLUSH)
        self._accept_script = self._redis.register_script(_ACCEPT)
        k = len(self._arm_names)
        self._flat_size = SufficientStats.flat_size(k, engine.stats.dimension)
        self._dimension = engine.stats.dimension

    # ---------------------------------------------------------------- lifecycle
    def start(self, loop: asyncio.AbstractEventLoop, on_learned: Callable[[list[tuple[int, Learned]]], None]) -> None:
        self._on_learned = on_learned
        self._tasks = [
            loop.create_task(self._sync_loop(), name="redis-sync"),
            loop.create_task(self._flush_loop(), name="redis-flush"),
            loop.create_task(self._sweep_loop(), name="redis-sweep"),
        ]

    async def wait_synced(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._synced.wait(), timeout)

    async def close(self) -> None:
        flush = self._tasks[1] if len(self._tasks) > 1 else None
        for task in self._tasks:
            if task is not flush:
                task.cancel()
        if flush is not None:
            flush.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        with contextlib.suppress(RedisError, OSError):
            async with asyncio.timeout(OPERATION_TIMEOUT):
                await self._flush_once()
        await self._redis.aclose()

    def health(self) -> str | None:
        if self._error is not None:
            return self._error
        if self._synced_at is None:
            return "not yet synchronized with Redis"
        age = time.monotonic() - self._synced_at
        if age > 5.0:
            return f"learned totals not read from Redis for {age:.1f} s"
        return self._log.health()

    def pending_decisions(self) -> int:
        return len(self._queue)

    # ---------------------------------------------------------------- decisions
    def log_decision(self, record: DecisionRecord) -> None:
        queue = self._queue
        if len(queue) >= MAX_PENDING:
            raise Unavailable("decision records cannot reach Redis; retry shortly")
        queue.append(record)
        self._log.log_decision(record)

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
        while queue:
            batch = [queue.popleft() for _ in range(min(len(queue), 2000))]
            args: list[Any] = [self._prefix, self._ttl, len(batch)]
            for record in batch:
                args += [record.decision_id, repr(record.expires_at), record.arm, _record(record)]
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
        records, rewarded = await self._lookup(ids)
        for attempt in range(3):
            missing = [i for i, record in enumerate(records) if record is None]
            if not missing:
                break
            # The decision may be on its way from another replica (decision records flush every interval).
            await asyncio.sleep(self._flush_interval * (attempt + 1))
            again, again_rewarded = await self._lookup([ids[i] for i in missing])
            for j, i in enumerate(missing):
                records[i], rewarded[i] = again[j], again_rewarded[j]
        decisions: list[dict[str, Any] | None] = []
        seen: set[str] = set()
        for item, record, mark in zip(items, records, rewarded, strict=True):
            if record is None:
                self._metrics.join_misses.labels("unknown").inc()
                raise UnknownDecision(
                    f"no decision {item.decision_id!r} (never made, or its attribution window closed long ago)",
                    field=item.field + "decisionId",
                )
            decision = orjson.loads(record)
            if mark == b"r" or item.decision_id in seen:
                decisions.append(None)
                continue
            if mark == b"d" or received_at > decision["expires"]:
                self._metrics.join_misses.labels("late").inc()
                raise AttributionWindowExpired(
                    f"the attribution window of decision {item.decision_id!r} closed "
                    f"{received_at - decision['expires']:.3f} s before this reward arrived"
                    + ("; it got the default reward" if mark == b"d" else ""),
                    field=item.field + "decisionId",
                )
            seen.add(item.decision_id)
            decisions.append(decision)
        candidates = [(item, d, record) for item, d, record in zip(items, decisions, records, strict=True) if d]
        accepted = (
            await self._accept([(item.decision_id, "r", d, item.reward) for item, d, _ in candidates])
            if candidates
            else []
        )
        taken = {item.decision_id for (item, _, _), ok in zip(candidates, accepted, strict=True) if ok}
        learned = []
        rows = []
        for (item, decision, record), ok in zip(candidates, accepted, strict=True):
            if ok and record is not None:
                learned.append((0, self._learned(decision, item.reward, False)))
                rows.append(
                    self._row(item.decision_id, received_at, decision, item.reward, is_default=False, record=record)
                )
        if learned and self._on_learned is not None:
            self._on_learned(learned)
        if rows:
            self._log.record_rewards(rows)
        outcomes = []
        answered: set[str] = set()
        for item in items:  # a decisionId repeated in one request counts once, at its first occurrence
            outcomes.append(
                RewardOutcome(item.decision_id, item.decision_id in taken and item.decision_id not in answered)
            )
            answered.add(item.decision_id)
        return outcomes

    async def _lookup(self, ids: list[str]) -> tuple[list[bytes | None], list[bytes | None]]:
        keys = [f"{self._prefix}:d:{i}" for i in ids] + [f"{self._prefix}:rw:{i}" for i in ids]
        values = [v if v is None or isinstance(v, bytes) else str(v).encode() for v in await self._redis.mget(keys)]
        return values[: len(ids)], values[len(ids) :]

    def _features(self, decision: dict[str, Any]) -> np.ndarray | None:
        features = decision.get("features")
        return None if features is None else np.asarray(features, dtype=np.float64)

    def _learned(self, decision: dict[str, Any], reward: float, is_default: bool) -> Learned:
        return Learned(decision["arm"], reward, self._features(decision), is_default)

    def _row(
        self, decision_id: str, ts: float, decision: dict[str, Any], reward: float, *, is_default: bool, record: bytes
    ) -> tuple[str, float, str, float, int, int, bytes | None, bytes | None]:
        features = self._features(decision)
        local = decision_id.startswith(self._local_prefix)
        return (
            decision_id,
            ts,
            decision["arm"],
            reward,
            int(is_default),
            int(self._learn),
            None if features is None else features.tobytes(),
            None if local else record,
        )

    async def _accept(self, rewards: list[tuple[str, str, dict[str, Any], float]]) -> list[bool]:
        """Run the accept script: claim each decision once and add its statistics delta and counters."""
        args: list[Any] = [self._prefix, self._stats_key, self._ttl, len(rewards)]
        for decision_id, kind, decision, reward in rewards:
            arm = self._arm_index.get(decision["arm"])
            fields: list[str | float] = []
            features = self._features(decision)
            if self._learn and arm is not None and (features is None or features.shape[0] == self._served.context_size):
                fields = _sparse(self._engine.delta_of(arm, reward, features))
            args += [decision_id, kind, decision["arm"], repr(float(reward)), len(fields) // 2, *fields]
        flags = await self._accept_script(args=args)
        return [bool(flag) for flag in flags]

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
        self._engine.adopt_total(total)  # paused too: decide with the shared state, learn nothing new
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
        for record in self._queue:
            queued = self._arm_index.get(record.arm)
            if queued is not None:
                pulls[queued] += 1
        self._counters.replace(pulls, rewards, sums, defaults)
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
        due = await self._redis.zrangebyscore(f"{self._prefix}:pending", "-inf", now, start=0, num=SWEEP_BATCH)
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in due]
        if not ids:
            return 0
        records, _ = await self._lookup(ids)
        if self._default is None:
            await self._redis.zrem(f"{self._prefix}:pending", *ids)
            return len(ids)
        claims = []
        gone = []
        for decision_id, record in zip(ids, records, strict=True):
            if record is None:
                gone.append(decision_id)
            else:
                claims.append((decision_id, "d", orjson.loads(record), self._default, record))
        if gone:
            await self._redis.zrem(f"{self._prefix}:pending", *gone)
        if not claims:
            return len(ids)
        accepted = await self._accept([(i, k, d, r) for i, k, d, r, _ in claims])
        learned, rows = [], []
        for (decision_id, _, decision, reward, record), ok in zip(claims, accepted, strict=True):
            if ok:
                learned.append((0, self._learned(decision, reward, True)))
                rows.append(self._row(decision_id, now, decision, reward, is_default=True, record=record))
        if learned and self._on_learned is not None:
            self._on_learned(learned)
        if rows:
            self._log.record_rewards(rows)
            log.info("default rewards assigned", count=len(rows), reward=self._default)
        return len(ids)

    def _failed(self, operation: str, exc: BaseException) -> None:
        self._error = f"Redis {operation} failed: {exc}"
        self._metrics.store_errors.labels(f"redis_{operation}").inc()
        log.warning("redis operation failed", operation=operation, error=str(exc))
