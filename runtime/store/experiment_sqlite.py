"""Embedded experiment state: units, exposures, outcomes and their sums in SQLite (WAL) on the pod's volume.

The same writer as the decision log (`croupier.runtime.store.sqlite.GroupCommitWriter`): one thread owns the write
connection and commits in groups.

- Exposures logged by `POST /v1/assign` are queued without I/O and committed within the flush interval (default
  50 ms), like decision records: a crash loses at most the exposures of the last interval plus the commit in flight.
- `POST /v1/exposures` and `POST /v1/outcomes` wake the writer at once; every request waiting then is committed in one
  transaction (group commit, `synchronous=FULL` with `reward_sync=full`) and answered only after COMMIT returned.
  Queued exposures go first in that transaction, so an outcome's exposure is never committed after it.
- An outcome's eventId is claimed in `events` (primary key) inside the transaction that stores it, so an
  acknowledged outcome is counted once, across restarts and retries. Per-unit values (`unit_metrics`) and the
  per-variant sums (`sums`) change in the same transaction, by `croupier.runtime.experiments.aggregation`.

Every unit the experiment assigned is kept in memory (its variant and exposure in the current epoch: about 200 bytes
a unit), restored from `exposures` at start (a unit's latest exposure holds its variant and first epoch).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from croupier.runtime.errors import StoreError
from croupier.runtime.experiments import aggregation
from croupier.runtime.experiments.records import ExposureRow, JoinedOutcome, UnitState
from croupier.runtime.experiments.store import SumsKey, Totals, TotalsSink
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.store.sqlite import ROWS_PER_INSERT, GroupCommitWriter, WriterStore, _drain, connect

log = structlog.get_logger("croupier.runtime.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS epochs (
    epoch TEXT PRIMARY KEY,
    started_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exposures (
    epoch TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    ts REAL NOT NULL,
    counted INTEGER NOT NULL,
    first_epoch TEXT NOT NULL,
    PRIMARY KEY (epoch, unit_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    event_id TEXT PRIMARY KEY,
    ts REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outcomes (
    seq INTEGER PRIMARY KEY,
    epoch TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    metric TEXT NOT NULL,
    value REAL NOT NULL,
    event_id TEXT,
    ts REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS unit_metrics (
    epoch TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    kind TEXT NOT NULL,
    total REAL NOT NULL,
    events INTEGER NOT NULL,
    value REAL NOT NULL,
    PRIMARY KEY (epoch, unit_id, metric, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sums (
    epoch TEXT NOT NULL,
    variant TEXT NOT NULL,
    metric TEXT NOT NULL,
    kind TEXT NOT NULL,
    count INTEGER NOT NULL,
    sum REAL NOT NULL,
    sum_squares REAL NOT NULL,
    PRIMARY KEY (epoch, variant, metric, kind)
) WITHOUT ROWID;
"""
_SUM = (
    "INSERT INTO sums (epoch, variant, metric, kind, count, sum, sum_squares) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (epoch, variant, metric, kind) DO UPDATE SET count = count + excluded.count, "
    "sum = sum + excluded.sum, sum_squares = sum_squares + excluded.sum_squares"
)
MAX_EXPOSURES_PER_COMMIT = 16384
_ROW = "(?, ?, ?, ?, ?, ?)"
_INSERT_EXPOSURES = {
    rows: "INSERT OR IGNORE INTO exposures (epoch, unit_id, variant, ts, counted, first_epoch) VALUES "
    + ", ".join([_ROW] * rows)
    for rows in (2**i for i in range(ROWS_PER_INSERT.bit_length()))
}


def experiment_database_path(state_dir: Path, namespace: str | None, name: str) -> Path:
    return state_dir / f"{namespace or 'default'}.{name}.experiment.sqlite3"


@dataclass(slots=True, eq=False)
class _Job:
    """A request waiting for its commit: exposures to record durably, or joined outcomes to store."""

    future: asyncio.Future[list[bool]]
    exposures: list[ExposureRow] = field(default_factory=list)
    outcomes: list[JoinedOutcome] = field(default_factory=list)
    stored: list[bool] = field(default_factory=list)
    deltas: list[tuple[str, str, int, float, float]] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Round:
    """One transaction: exposures queued by assign, and the requests waiting for their commit."""

    rows: list[ExposureRow]
    jobs: list[_Job]


class _NoSink:
    def add_exposures(self, rows: list[ExposureRow]) -> None:
        pass

    def add_outcomes(self, deltas: list[tuple[str, str, int, float, float]]) -> None:
        pass

    def adopt(self, totals: Totals) -> None:
        pass


class SqliteExperimentStore(WriterStore):
    backend = "Embedded"

    def __init__(
        self,
        path: Path,
        *,
        epoch: str,
        kinds: dict[str, str],
        metrics: RuntimeMetrics,
        flush_interval: float = 0.05,
        max_pending: int = 200_000,
        full_sync: bool = True,
    ) -> None:
        self.path = path
        self._epoch = epoch
        self._kinds = kinds
        """metric name -> aggregation kind: the sums the service reads back."""
        self._metrics = metrics
        self._max_pending = max_pending
        self.local_units: dict[str, UnitState] = {}
        self._queue: collections.deque[ExposureRow] = collections.deque()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._sink: TotalsSink = _NoSink()
        self._writer = GroupCommitWriter[_Round](
            path, self, "croupier-experiment-writer", metrics, flush_interval=flush_interval, full_sync=full_sync
        )
        self._wake = self._writer.wake

    # ---------------------------------------------------------------- start and restore
    async def restore(self) -> Totals:
        return await asyncio.to_thread(self._restore)

    def _restore(self) -> Totals:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        try:
            conn.executescript(SCHEMA)
            conn.execute("INSERT OR IGNORE INTO epochs (epoch, started_at) VALUES (?, ?)", (self._epoch, time.time()))
            started = conn.execute("SELECT started_at FROM epochs WHERE epoch = ?", (self._epoch,)).fetchone()[0]
            # A unit's latest exposure holds its remembered variant and where it came from (the sticky record).
            units: dict[str, UnitState] = {}
            exposures: collections.Counter[str] = collections.Counter()
            for unit_id, epoch, variant, ts, counted, first_epoch in conn.execute(
                "SELECT unit_id, epoch, variant, ts, counted, first_epoch FROM exposures ORDER BY ts"
            ):
                current = epoch == self._epoch
                units[unit_id] = UnitState(variant, first_epoch, epoch if current else None, ts, bool(counted))
                if current and counted:
                    exposures[variant] += 1
            sums: dict[SumsKey, list[float]] = {}
            for variant, metric, kind, count, total, squares in conn.execute(
                "SELECT variant, metric, kind, count, sum, sum_squares FROM sums WHERE epoch = ?", (self._epoch,)
            ):
                if self._kinds.get(metric) == kind:
                    sums[(variant, metric)] = [count, total, squares]
        finally:
            conn.close()
        self.local_units.clear()
        self.local_units.update(units)
        return Totals(dict(exposures), sums, started)

    async def start(self, sink: TotalsSink) -> None:
        self._sink = sink
        self._writer.start()

    # ---------------------------------------------------------------- on the event loop
    async def unit(self, unit_id: str) -> UnitState | None:
        return self.local_units.get(unit_id)

    async def units(self, unit_ids: list[str]) -> list[UnitState | None]:
        get = self.local_units.get
        return [get(u) for u in unit_ids]

    def log_exposure(self, row: ExposureRow) -> bool:
        """Remember the unit and queue its exposure (committed within the flush interval); False if it has one in
        this epoch already. No I/O: the assign path calls it."""
        units = self.local_units
        before = units.get(row.unit_id)
        if before is not None and before.exposed_epoch == row.epoch:
            return False
        queue = self._queue
        if len(queue) >= self._max_pending:
            raise StoreError("the exposure log is behind; retry shortly")
        units[row.unit_id] = UnitState(row.variant, row.first_epoch, row.epoch, row.timestamp, row.counted)
        queue.append(row)
        if len(queue) >= 4096:
            self._wake()
        return True

    async def expose(self, row: ExposureRow, *, durable: bool) -> bool:
        if not durable:
            return self.log_exposure(row)
        units = self.local_units
        before = units.get(row.unit_id)
        if before is not None and before.exposed_epoch == row.epoch:
            return False
        units[row.unit_id] = UnitState(row.variant, row.first_epoch, row.epoch, row.timestamp, row.counted)
        job = _Job(asyncio.get_running_loop().create_future(), exposures=[row])
        self._jobs.append(job)
        self._wake()
        try:
            await job.future
        except BaseException:
            self._forget(row.unit_id, before)
            raise
        return True

    def _forget(self, unit_id: str, before: UnitState | None) -> None:
        if before is None:
            self.local_units.pop(unit_id, None)
        else:
            self.local_units[unit_id] = before

    async def submit_outcomes(self, joined: list[JoinedOutcome]) -> list[bool]:
        job = _Job(asyncio.get_running_loop().create_future(), outcomes=joined)
        self._jobs.append(job)
        self._wake()
        return await job.future

    # ---------------------------------------------------------------- `Rounds`, for the writer thread
    def take(self, now: float) -> _Round | None:
        jobs = _drain(self._jobs)
        rows = _drain(self._queue, None if jobs else MAX_EXPOSURES_PER_COMMIT)
        return _Round(rows, jobs) if rows or jobs else None

    def waiting(self) -> bool:
        return bool(self._queue or self._jobs)

    def full_sync(self, round_: _Round, /) -> bool:
        return bool(round_.jobs)

    def write(self, conn: sqlite3.Connection, round_: _Round, /) -> None:
        # Queued exposures first: an outcome's exposure is never committed after it.
        _insert_exposures(conn, round_.rows)
        for job in round_.jobs:
            job.stored, job.deltas = [], []
            if job.exposures:
                _insert_exposures(conn, job.exposures)
                job.stored = [True] * len(job.exposures)
            for joined in job.outcomes:
                job.stored.append(self._store_outcome(conn, joined, job.deltas))

    def committed(self, round_: _Round, /) -> None:
        self._writer.post(self._deliver, round_.rows, round_.jobs)

    def failed(self, round_: _Round, error: Exception, /) -> None:
        log.error("experiment commit failed", error=str(error), exposures=len(round_.rows), jobs=len(round_.jobs))
        self._queue.extendleft(reversed(round_.rows))
        self._writer.post(self._fail, round_.jobs, str(error))

    def _store_outcome(
        self, conn: sqlite3.Connection, joined: JoinedOutcome, deltas: list[tuple[str, str, int, float, float]]
    ) -> bool:
        item = joined.item
        if item.event_id is not None:
            claimed = conn.execute(
                "INSERT OR IGNORE INTO events (event_id, ts) VALUES (?, ?)", (item.event_id, joined.timestamp)
            ).rowcount
            if not claimed:
                return False
        key = (self._epoch, item.unit_id, item.metric, joined.kind)
        row = conn.execute(
            "SELECT total, events, value FROM unit_metrics WHERE epoch = ? AND unit_id = ? AND metric = ? AND kind = ?",
            key,
        ).fetchone()
        prior = None if row is None else aggregation.UnitValue(row[0], row[1], row[2])
        value, delta = aggregation.observe(joined.kind, prior, item.value)
        conn.execute(
            "INSERT OR REPLACE INTO unit_metrics (epoch, unit_id, metric, kind, total, events, value) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*key, value.total, value.events, value.value),
        )
        conn.execute(
            _SUM, (self._epoch, joined.variant, item.metric, joined.kind, delta.units, delta.sum, delta.sum_squares)
        )
        conn.execute(
            "INSERT INTO outcomes (epoch, unit_id, variant, metric, value, event_id, ts) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._epoch, item.unit_id, joined.variant, item.metric, item.value, item.event_id, joined.timestamp),
        )
        deltas.append((joined.variant, item.metric, delta.units, delta.sum, delta.sum_squares))
        return True

    # ---------------------------------------------------------------- back on the event loop
    def _deliver(self, rows: list[ExposureRow], jobs: list[_Job]) -> None:
        sink = self._sink
        exposed = rows + [row for job in jobs for row in job.exposures]
        if exposed:
            sink.add_exposures(exposed)
        for job in jobs:
            if job.deltas:
                sink.add_outcomes(job.deltas)
            if not job.future.done():
                job.future.set_result(job.stored)

    def _fail(self, jobs: list[_Job], reason: str) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(StoreError(f"could not be stored: {reason}"))


def _insert_exposures(conn: sqlite3.Connection, rows: list[ExposureRow]) -> None:
    """Multi-row INSERTs, largest first, as the decision log writes decisions: few statements per commit."""
    flat = [
        value for r in rows for value in (r.epoch, r.unit_id, r.variant, r.timestamp, int(r.counted), r.first_epoch)
    ]
    start, left = 0, len(rows)
    while left:
        count = min(ROWS_PER_INSERT, 1 << (left.bit_length() - 1))
        end = start + count * 6
        conn.execute(_INSERT_EXPOSURES[count], flat[start:end])
        start = end
        left -= count
