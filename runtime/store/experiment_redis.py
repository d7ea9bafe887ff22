"""Shared experiment state in Redis: replicas of one experiment runtime share units, exposures, outcomes and sums.

Keys, under the prefix P (default `croupier:<namespace>:exp:<name>`), for epoch E:

- `P:units` hash: unit -> `variant<TAB>first epoch` (the sticky record).
- `P:x:E` hash: unit -> `timestamp<TAB>counted<TAB>variant`, the unit's exposure in E; `P:n:E` hash: variant ->
  counted exposures. One Lua script writes all three only if the unit has no exposure in E yet (HEXISTS), so an
  exposure counts once whichever replica logs it.
- `P:epochs` hash: epoch -> start time (HSETNX: the first replica to serve it sets it).
- `P:u:E:<unit>` hash: `metric<TAB>kind` -> `total<TAB>events<TAB>value`, the unit's values; `P:s:E` hash:
  `variant<TAB>metric<TAB>kind<TAB>c|s|q` -> count, sum, sum of squares; `P:ev:<eventId>` string: an eventId's claim.

Outcomes are stored in one optimistic transaction per request (WATCH the units' value keys and the eventIds' claim
keys, read, aggregate with `croupier.runtime.experiments.aggregation`, MULTI/EXEC, retried on a conflict): the rule is
the same Python code as the embedded store's. A request is acknowledged after EXEC: durable as far as the Redis
server's persistence goes (run it with `appendonly yes`). Each replica reads the shared totals every
`redis_sync_interval_ms` (default 100 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, WatchError

from croupier.runtime.errors import StoreError
from croupier.runtime.experiments import aggregation
from croupier.runtime.experiments.records import ExposureRow, JoinedOutcome, UnitState
from croupier.runtime.experiments.store import SumsKey, Totals, TotalsSink
from croupier.runtime.metrics import RuntimeMetrics

log = structlog.get_logger("croupier.runtime.redis")

OPERATION_TIMEOUT = 3.0
MAX_RETRIES = 50

# KEYS: units, exposures of the epoch, counts of the epoch; ARGV: unit, variant, first epoch, timestamp, counted.
_EXPOSE = """
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4] .. '\\t' .. ARGV[5] .. '\\t' .. ARGV[2])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\\t' .. ARGV[3])
if ARGV[5] == '1' then redis.call('HINCRBY', KEYS[3], ARGV[2], 1) end
return 1
"""


class RedisExperimentStore:
    backend = "Redis"
    local_units = None
    log_exposure = None

    def __init__(
        self,
        url: str,
        prefix: str,
        *,
        epoch: str,
        kinds: dict[str, str],
        window: float,
        metrics: RuntimeMetrics,
        sync_interval: float = 0.1,
    ) -> None:
        self._redis = Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2, health_check_interval=10)
        self._prefix = prefix
        self._epoch = epoch
        self._kinds = kinds
        self._metrics = metrics
        self._sync_interval = sync_interval
        self._units_key = f"{prefix}:units"
        self._exposures_key = f"{prefix}:x:{epoch}"
        self._counts_key = f"{prefix}:n:{epoch}"
        self._sums_key = f"{prefix}:s:{epoch}"
        self._epochs_key = f"{prefix}:epochs"
        self._expose_script = self._redis.register_script(_EXPOSE)
        self._sink: TotalsSink | None = None
        self._task: asyncio.Task[None] | None = None
        self._synced_at: float | None = None
        self._error: str | None = None
        self._started_at = time.time()
        self._closing = False

    def _unit_key(self, unit_id: str) -> str:
        return f"{self._prefix}:u:{self._epoch}:{unit_id}"

    # ---------------------------------------------------------------- lifecycle
    async def restore(self) -> Totals:
        async with asyncio.timeout(OPERATION_TIMEOUT):
            await self._redis.hsetnx(self._epochs_key, self._epoch, repr(time.time()))
            return await self._totals()

    async def start(self, sink: TotalsSink) -> None:
        self._sink = sink
        self._task = asyncio.get_running_loop().create_task(self._sync_loop(), name="redis-experiment-sync")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            # The loop also ends on `_closing`: Python 3.11's asyncio.timeout can swallow a cancellation that lands
            # as its own deadline expires. asyncio.wait neither raises the task's error nor eats our cancellation.
            self._task.cancel()
            await asyncio.wait({self._task}, timeout=OPERATION_TIMEOUT + 1)
        with contextlib.suppress(RedisError, OSError, TimeoutError):
            async with asyncio.timeout(OPERATION_TIMEOUT):  # a dead server must not hold the shutdown
                await self._redis.aclose()

    def health(self) -> str | None:
        if self._error is not None:
            return self._error
        if self._synced_at is None:
            return "not yet synchronized with Redis"
        age = time.monotonic() - self._synced_at
        if age > 5.0:
            return f"experiment totals not read from Redis for {age:.1f} s"
        return None

    def liveness(self) -> str | None:
        return None

    # ---------------------------------------------------------------- units and exposures
    async def unit(self, unit_id: str) -> UnitState | None:
        return (await self.units([unit_id]))[0]

    async def units(self, unit_ids: list[str]) -> list[UnitState | None]:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                pipe = self._redis.pipeline(transaction=False)
                for unit_id in unit_ids:
                    pipe.hget(self._units_key, unit_id)
                    pipe.hget(self._exposures_key, unit_id)
                replies = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed("read", exc) from None
        return [self._state(replies[2 * i], replies[2 * i + 1]) for i in range(len(unit_ids))]

    def _state(self, record: bytes | None, exposure: bytes | None) -> UnitState | None:
        if record is None:
            return None
        variant, _, first_epoch = record.decode().partition("\t")
        if exposure is None:
            return UnitState(variant, first_epoch, None, 0.0, False)
        ts, counted, exposed_variant = exposure.decode().split("\t")
        return UnitState(exposed_variant, first_epoch, self._epoch, float(ts), counted == "1")

    async def expose(self, row: ExposureRow, *, durable: bool) -> bool:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT):
                stored = await self._expose_script(
                    keys=[self._units_key, self._exposures_key, self._counts_key],
                    args=[row.unit_id, row.variant, row.first_epoch, repr(row.timestamp), int(row.counted)],
                )
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed("expose", exc) from None
        if stored and self._sink is not None:
            self._sink.add_exposures([row])
        return bool(stored)

    # ---------------------------------------------------------------- outcomes
    async def submit_outcomes(self, joined: list[JoinedOutcome]) -> list[bool]:
        try:
            async with asyncio.timeout(OPERATION_TIMEOUT * 2):
                for _ in range(MAX_RETRIES):
                    try:
                        stored, deltas = await self._transaction(joined)
                    except WatchError:
                        continue
                    if self._sink is not None and deltas:
                        self._sink.add_outcomes(deltas)
                    return stored
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._failed("outcomes", exc) from None
        raise StoreError(f"outcomes could not be stored: {MAX_RETRIES} conflicting updates of the same units")

    async def _transaction(
        self, joined: list[JoinedOutcome]
    ) -> tuple[list[bool], list[tuple[str, str, int, float, float]]]:
        unit_keys = sorted({self._unit_key(j.item.unit_id) for j in joined})
        event_keys = sorted({f"{self._prefix}:ev:{j.item.event_id}" for j in joined if j.item.event_id is not None})
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(*unit_keys, *event_keys)
            claimed: set[str] = set()
            for key in event_keys:
                if await pipe.exists(key):
                    claimed.add(key)
            values: dict[tuple[str, str], aggregation.UnitValue | None] = {}
            for j in joined:
                field = f"{j.item.metric}\t{j.kind}"
                if (j.item.unit_id, field) not in values:
                    raw = await pipe.hget(self._unit_key(j.item.unit_id), field)
                    values[(j.item.unit_id, field)] = _unit_value(raw)
            stored: list[bool] = []
            deltas: list[tuple[str, str, int, float, float]] = []
            sums: dict[str, float] = {}
            for j in joined:
                event_key = None if j.item.event_id is None else f"{self._prefix}:ev:{j.item.event_id}"
                if event_key is not None and event_key in claimed:
                    stored.append(False)
                    continue
                if event_key is not None:
                    claimed.add(event_key)
                field = f"{j.item.metric}\t{j.kind}"
                observed, delta = aggregation.observe(j.kind, values[(j.item.unit_id, field)], j.item.value)
                values[(j.item.unit_id, field)] = observed
                base = f"{j.variant}\t{j.item.metric}\t{j.kind}\t"
                for suffix, amount in (("c", float(delta.units)), ("s", delta.sum), ("q", delta.sum_squares)):
                    sums[base + suffix] = sums.get(base + suffix, 0.0) + amount
                deltas.append((j.variant, j.item.metric, delta.units, delta.sum, delta.sum_squares))
                stored.append(True)
            pipe.multi()  # type: ignore[no-untyped-call]
            for (unit_id, field), value in values.items():
                if value is not None:
                    pipe.hset(self._unit_key(unit_id), field, f"{value.total!r}\t{value.events}\t{value.value!r}")
            for key in event_keys:
                if key in claimed:
                    pipe.set(key, "1", nx=True)
            for field, amount in sums.items():
                if amount:
                    pipe.hincrbyfloat(self._sums_key, field, amount)
            await pipe.execute()
        return stored, deltas

    # ---------------------------------------------------------------- shared totals
    async def _totals(self) -> Totals:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hgetall(self._counts_key)
        pipe.hgetall(self._sums_key)
        pipe.hget(self._epochs_key, self._epoch)
        counts_raw, sums_raw, started = await pipe.execute()
        exposures = {k.decode(): int(v) for k, v in counts_raw.items()}
        sums: dict[SumsKey, list[float]] = {}
        for key, value in sums_raw.items():
            variant, metric, kind, part = key.decode().split("\t")
            if self._kinds.get(metric) != kind:
                continue
            entry = sums.setdefault((variant, metric), [0.0, 0.0, 0.0])
            entry["csq".index(part)] = float(value)
        return Totals(exposures, sums, float(started) if started is not None else self._started_at)

    async def _sync_loop(self) -> None:
        while not self._closing:
            try:
                async with asyncio.timeout(OPERATION_TIMEOUT):
                    totals = await self._totals()
                if self._sink is not None:
                    self._sink.adopt(totals)
                self._synced_at = time.monotonic()
                self._error = None
            except (RedisError, OSError, TimeoutError) as exc:
                self._failed("sync", exc)
            await asyncio.sleep(self._sync_interval)

    def _failed(self, operation: str, exc: BaseException) -> StoreError:
        self._error = f"Redis {operation} failed: {exc!r}"
        self._metrics.store_errors.labels(f"redis-{operation}").inc()
        log.warning("redis operation failed", operation=operation, error=repr(exc))
        return StoreError(f"the experiment state in Redis is unavailable: {exc!r}")


def _unit_value(raw: bytes | str | None) -> aggregation.UnitValue | None:
    if raw is None:
        return None
    text = raw.decode() if isinstance(raw, bytes) else raw
    total, events, value = text.split("\t")
    return aggregation.UnitValue(float(total), int(events), float(value))
