"""Embedded state: the decision log, rewards and learned statistics in SQLite (WAL mode) on the pod's volume.

One writer thread owns the write connection and commits in groups (`GroupCommitWriter`, the one writer of every
embedded store: the experiment store's exposures and outcomes go through it too):

- Decision records (`croupier.runtime.decisions.records.Decision`, structured: columns and float64 blobs, no JSON)
  are appended to an in-memory queue by the decide path (no I/O, no lock) and committed by the
  writer at least every `decision_flush_interval_ms` (default 50 ms), sooner once `decision_flush_max_records` wait.
  A crash loses at most the decisions of the last interval plus the commit in flight; a decision's reward is accepted
  as soon as the reward's own commit includes the decision (the queue is drained in order, decisions first).
- Reward requests wake the writer at once. Every request waiting at that moment is joined, deduplicated and
  committed in one transaction (group commit); each request's future resolves only after COMMIT returned, so an
  acknowledged reward is on disk. With `reward_sync=full` (default) commits that carry rewards run with
  `synchronous=FULL`, which fsyncs the WAL: the reward survives a power loss, not only `kill -9`. Commits of decision
  records alone run with `synchronous=NORMAL` (WAL): durable against a process crash, fsynced at WAL checkpoints.
- The writer also assigns default rewards to decisions whose attribution window closed without one (exactly once:
  `rewards.decision_id` is UNIQUE and both paths run in this one thread), saves learned-statistics checkpoints, and
  prunes records past the retention.

The join rules (window, duplicates, default and late rewards, pause) are `croupier.runtime.decisions.join`'s, shared
with the Redis store. Learned statistics are restored at start from the last checkpoint plus the rewards committed
after it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import operator
import sqlite3
import threading
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import orjson
import structlog

from croupier.runtime.decisions import join as rules
from croupier.runtime.decisions.join import DecisionState, Joinable, JoinRules
from croupier.runtime.decisions.records import (
    Decision,
    Learned,
    RestoredState,
    RewardItem,
    RewardOutcome,
)
from croupier.runtime.errors import CroupierError, StoreError, Unavailable
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.store.base import Learner

log = structlog.get_logger("croupier.runtime.store")

SCHEMA = """
CREATE TABLE IF NOT EXISTS policy_versions (
    id INTEGER PRIMARY KEY,
    version TEXT NOT NULL UNIQUE,
    arms BLOB NOT NULL,
    features BLOB
);
CREATE TABLE IF NOT EXISTS decisions (
    id TEXT PRIMARY KEY,
    ts REAL NOT NULL,
    arm TEXT NOT NULL,
    expires_at REAL NOT NULL,
    state INTEGER NOT NULL DEFAULT 0,
    version INTEGER NOT NULL,
    unit_id TEXT,
    features BLOB,
    candidates BLOB,
    probabilities BLOB NOT NULL,
    slate_id TEXT,
    position INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decision_scores (
    id TEXT PRIMARY KEY,
    scores BLOB,
    model_version INTEGER,
    fallback TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rewards (
    seq INTEGER PRIMARY KEY,
    decision_id TEXT NOT NULL UNIQUE,
    ts REAL NOT NULL,
    arm TEXT NOT NULL,
    reward REAL NOT NULL,
    is_default INTEGER NOT NULL,
    learned INTEGER NOT NULL,
    features BLOB,
    decision BLOB
);
CREATE TABLE IF NOT EXISTS arm_counters (
    arm TEXT PRIMARY KEY,
    pulls INTEGER NOT NULL DEFAULT 0,
    rewards INTEGER NOT NULL DEFAULT 0,
    reward_sum REAL NOT NULL DEFAULT 0,
    default_rewards INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoint (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint TEXT NOT NULL,
    seq INTEGER NOT NULL,
    stats BLOB NOT NULL,
    ts REAL NOT NULL
);
"""
# The decision log's layout (`decisions`): one row per decision, no JSON. `version` refers to `policy_versions`, whose
# `arms` (a JSON list) name the indexes of `candidates` (uint16, NULL: every arm) and `probabilities` (float64, every
# arm of that version, 0 outside the candidates); `features` (float64) are the context values the policy saw, in the
# order of `policy_versions.features` (a JSON list, NULL without feature names); `slate_id` and `position` (from 1)
# place a ranking's decisions in their slate (NULL for decide answers; added to a log of layout 2 that lacks them, as
# NULL for its rows). Layout 1 kept the request and response bodies as JSON; a log of that layout is renamed
# `decisions_layout1` at start and no longer joined. A model-scored decision (spec.scoring) also has a row in
# `decision_scores`: the model's scores (float64 per arm, NaN outside the candidates; NULL when the fallback decided),
# the model version that produced them, and the fallback's reason.
LAYOUT = 2

_INSERT_DECISION = "INSERT OR IGNORE INTO decisions "
_INSERT_DECISION += (
    "(id, ts, arm, expires_at, version, unit_id, features, candidates, probabilities, slate_id, position) "
)
_INSERT_DECISION += "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_SCORES = "INSERT OR IGNORE INTO decision_scores (id, scores, model_version, fallback) VALUES (?, ?, ?, ?)"


def _score_row(d: Decision) -> tuple[str, bytes | None, int | None, str | None]:
    return d.decision_id, None if d.scores is None else array("d", d.scores).tobytes(), d.model_version, d.fallback


_INSERT_REWARD = (
    "INSERT INTO rewards (decision_id, ts, arm, reward, is_default, learned, features, decision) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Multi-row INSERTs of 2**i rows, largest first: n records take n // ROWS_PER_INSERT statements plus at most 9 more.
ROWS_PER_INSERT = 512
_ROW = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_COLUMNS = _ROW.count("?")
_INSERT_DECISIONS = {
    rows: _INSERT_DECISION.replace(f"VALUES {_ROW}", "VALUES " + ", ".join([_ROW] * rows))
    for rows in (2**i for i in range(ROWS_PER_INSERT.bit_length()))
}
_COUNT = (
    "INSERT INTO arm_counters (arm, pulls, rewards, reward_sum, default_rewards) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (arm) DO UPDATE SET pulls = pulls + excluded.pulls, rewards = rewards + excluded.rewards, "
    "reward_sum = reward_sum + excluded.reward_sum, default_rewards = default_rewards + excluded.default_rewards"
)
_T = TypeVar("_T")
_ARM_OF = operator.attrgetter("arm")
SWEEP_BATCH = 5000
# Bounds one transaction, so a reward request waiting behind a burst of decisions is acknowledged soon.
MAX_DECISIONS_PER_COMMIT = 16384
PRUNE_INTERVAL_SECONDS = 600.0


def database_path(state_dir: Path, namespace: str | None, name: str) -> Path:
    return state_dir / f"{namespace or 'default'}.{name}.sqlite3"


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


_R = TypeVar("_R")


class Rounds(Protocol[_R]):
    """What a store gives its `GroupCommitWriter`: one round is what one transaction commits."""

    def take(self, now: float) -> _R | None:
        """On the writer thread, after each wake (at least every flush interval): what waits, drained from the
        store's queues, as the next transaction's round (`now`: `time.monotonic()`); None when nothing is due."""
        ...

    def waiting(self) -> bool:
        """Whether anything is still queued: the writer commits again at once, and does not stop before it has."""
        ...

    def full_sync(self, round_: _R, /) -> bool:
        """Whether the round holds writes acknowledged as durable (rewards, outcomes): committed with
        `synchronous=FULL` when the store's `full_sync` is on, else with `NORMAL`."""
        ...

    def write(self, conn: sqlite3.Connection, round_: _R, /) -> None:
        """The round's statements, inside the writer's transaction (BEGIN IMMEDIATE ... COMMIT)."""
        ...

    def committed(self, round_: _R, /) -> None:
        """On the writer thread after COMMIT returned: hand the results to the event loop (`GroupCommitWriter.post`)."""
        ...

    def failed(self, round_: _R, error: Exception, /) -> None:
        """On the writer thread after the transaction was rolled back (the writer counted the failure and reports it
        in `last_error`): log it, queue again what can wait, fail the requests that wait for this commit (`post`)."""
        ...


@dataclass(eq=False)
class GroupCommitWriter(Generic[_R]):
    """The one writer of an embedded store: a thread that owns the write connection and commits what the event loop
    queued in groups, one transaction per round (`Rounds`), at least every `flush_interval` and at once when woken.
    A failed commit is rolled back, counted and reported (`last_error`, the store's readiness) and the writer keeps
    going; a store's requests are answered from the event loop once their commit returned (`post`).

    Used by the decision log (`SqliteStore`) and the experiment store (`SqliteExperimentStore`)."""

    path: Path
    rounds: Rounds[_R]
    name: str
    metrics: RuntimeMetrics
    flush_interval: float
    full_sync: bool
    """Commit rounds that hold acknowledged writes (`Rounds.full_sync`) with `synchronous=FULL`."""
    loop: asyncio.AbstractEventLoop | None = field(default=None, init=False)
    last_error: str | None = field(default=None, init=False)
    _wake: threading.Event = field(default_factory=threading.Event, init=False)
    _stopping: bool = field(default=False, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)

    def wake(self) -> None:
        """Commit what waits now instead of at the end of the flush interval."""
        self._wake.set()

    def start(self) -> None:
        """Start the thread; on the event loop that gets the results."""
        self.loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Commit everything queued, then stop the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    def health(self) -> str | None:
        return self.liveness() or self.last_error

    def liveness(self) -> str | None:
        """None while the writer thread runs (a dead writer needs a process restart, not a retry)."""
        if self._thread is None:
            return "the SQLite writer is not running"
        if not self._thread.is_alive() and not self._stopping:
            return "the SQLite writer thread died"
        return None

    def post(self, callback: Callable[..., None], *args: object) -> None:
        """Run `callback(*args)` on the event loop (from the writer thread)."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(callback, *args)

    def _run(self) -> None:
        rounds = self.rounds
        conn = connect(self.path)
        full_now = False
        try:
            while True:
                self._wake.wait(self.flush_interval)
                self._wake.clear()
                stopping = self._stopping
                round_ = rounds.take(time.monotonic())
                if rounds.waiting():
                    self._wake.set()  # more waiting: commit it right after this one
                if round_ is None:
                    if stopping:
                        break
                    continue
                want_full = self.full_sync and rounds.full_sync(round_)
                if want_full != full_now:
                    conn.execute(f"PRAGMA synchronous = {'FULL' if want_full else 'NORMAL'}")
                    full_now = want_full
                started = time.perf_counter()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    try:
                        rounds.write(conn, round_)
                        conn.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(sqlite3.Error):
                            conn.execute("ROLLBACK")
                        raise
                except Exception as exc:  # the writer must outlive any one bad commit
                    self.last_error = f"SQLite commit failed: {exc}"
                    self.metrics.store_errors.labels("commit").inc()
                    rounds.failed(round_, exc)
                    if stopping:
                        break
                    time.sleep(min(self.flush_interval, 0.1))
                    continue
                self.last_error = None
                self.metrics.commit_latency.observe(time.perf_counter() - started)
                rounds.committed(round_)
                if stopping and not rounds.waiting():
                    break
        finally:
            conn.close()


class WriterStore:
    """What a store whose writes go through a `GroupCommitWriter` (`self._writer`) hands to it: stopping, health."""

    _writer: GroupCommitWriter[Any]

    async def close(self) -> None:
        """Commit everything queued, then stop the writer."""
        await self._writer.close()

    @property
    def last_error(self) -> str | None:
        """Why the last commit failed; None once one succeeded."""
        return self._writer.last_error

    def health(self) -> str | None:
        return self._writer.health()

    def liveness(self) -> str | None:
        """None while the writer thread runs (a dead writer needs a process restart, not a retry)."""
        return self._writer.liveness()


@dataclass(slots=True, eq=False)
class _RewardJob:
    items: list[RewardItem]
    received_at: float
    future: asyncio.Future[list[RewardOutcome]]
    outcomes: list[RewardOutcome] = field(default_factory=list)
    error: CroupierError | None = None


@dataclass(slots=True, eq=False)
class _LoggedRewards:
    """Redis mode: rewards accepted through Redis, recorded in this replica's log (no join, no future)."""

    rows: list[tuple[str, float, str, float, int, int, bytes | None, bytes | None]]


@dataclass(slots=True)
class _Checkpoint:
    fingerprint: str
    seq: int
    stats: bytes


@dataclass(slots=True, eq=False)
class _Round:
    """One transaction of the decision log: what it commits, and (written by `write`) what it learned."""

    now: float
    decisions: list[Decision]
    jobs: list[_RewardJob | _LoggedRewards]
    checkpoint: _Checkpoint | None
    sweep: bool
    prune: bool
    learned: list[tuple[int, Learned]] = field(default_factory=list)
    swept: int = 0


def _vector(blob: bytes | None) -> np.ndarray | None:
    return None if blob is None else np.frombuffer(blob, dtype=np.float64)


class _NoLearner:
    def learn(self, learned: object) -> None:
        pass

    def adopt_shared(self, shared: object) -> None:
        pass


class SqliteStore(WriterStore):
    """Embedded state (join=True) or a replica's decision log in Redis mode (join=False)."""

    backend = "Embedded"

    def __init__(
        self,
        path: Path,
        *,
        metrics: RuntimeMetrics,
        rules: JoinRules,
        version: str,
        arm_names: list[str],
        feature_names: list[str] | None,
        flush_interval: float = 0.05,
        flush_max_records: int = 4096,
        max_pending: int = 200_000,
        full_sync: bool = True,
        sweep_interval: float = 1.0,
        retention_seconds: float = 7 * 86400.0,
        join: bool = True,
    ) -> None:
        self.path = path
        self._metrics = metrics
        self._rules = rules
        self._version = version
        self._version_row: tuple[str, bytes, bytes | None] = (
            version,
            orjson.dumps(arm_names),
            None if feature_names is None else orjson.dumps(feature_names),
        )
        self._version_id = 0
        self._probabilities: dict[tuple[float, ...], bytes] = {}
        self._flush_max = flush_max_records
        self._max_pending = max_pending
        self._sweep_interval = sweep_interval
        self._retention = retention_seconds
        self._join = join
        self._decisions: collections.deque[Decision] = collections.deque()
        self._jobs: collections.deque[_RewardJob | _LoggedRewards] = collections.deque()
        self._checkpoint: _Checkpoint | None = None
        self._learner: Learner = _NoLearner()
        self._sweep_cursor = ""
        self._pending_cursor: str | None = None
        self._next_sweep = self._next_prune = 0.0
        self._writer = GroupCommitWriter[_Round](
            path, self, "croupier-sqlite-writer", metrics, flush_interval=flush_interval, full_sync=full_sync
        )
        self._wake = self._writer.wake
        metrics.track_backlog(lambda: len(self._decisions))

    # ---------------------------------------------------------------- start and restore (before serving)
    async def restore(self, fingerprint: str) -> RestoredState:
        return await asyncio.to_thread(self._restore, fingerprint)

    def _restore(self, fingerprint: str) -> RestoredState:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = connect(self.path)
        try:
            columns = {row[1] for row in conn.execute("PRAGMA table_info(decisions)")}
            if "request" in columns:
                conn.execute("ALTER TABLE decisions RENAME TO decisions_layout1")
                log.warning("decision log of layout 1 kept as decisions_layout1; its decisions are no longer joined")
            elif columns and "slate_id" not in columns:
                conn.executescript(
                    "ALTER TABLE decisions ADD COLUMN slate_id TEXT; ALTER TABLE decisions ADD COLUMN position INTEGER;"
                )
            conn.executescript(SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO policy_versions (version, arms, features) VALUES (?, ?, ?)", self._version_row
            )
            self._version_id = conn.execute(
                "SELECT id FROM policy_versions WHERE version = ?", (self._version,)
            ).fetchone()[0]
            row = conn.execute("SELECT fingerprint, seq, stats FROM checkpoint WHERE id = 1").fetchone()
            stats, seq = (row[2], row[1]) if row is not None and row[0] == fingerprint else (None, 0)
            tail = [
                # learned = 1: the policy learned it when it was stored (the pause decided then)
                (s, Learned(arm, reward, _vector(features), bool(is_default), True))
                for s, arm, reward, features, is_default in conn.execute(
                    "SELECT seq, arm, reward, features, is_default FROM rewards WHERE seq > ? AND learned = 1 "
                    "ORDER BY seq",
                    (seq,),
                )
            ]
            cursor = conn.execute("SELECT value FROM meta WHERE key = 'sweep_cursor'").fetchone()
            self._sweep_cursor = cursor[0] if cursor else ""
            counters = {
                arm: (pulls, rewards, reward_sum, defaults)
                for arm, pulls, rewards, reward_sum, defaults in conn.execute(
                    "SELECT arm, pulls, rewards, reward_sum, default_rewards FROM arm_counters"
                )
            }
        finally:
            conn.close()
        return RestoredState(stats=stats, seq=seq, tail=tail, counters=counters)

    async def start(self, learner: Learner) -> None:
        self._learner = learner
        now = time.monotonic()
        self._next_sweep, self._next_prune = now + self._sweep_interval, now + 60.0
        self._writer.start()

    # ---------------------------------------------------------------- called on the event loop
    def log_decision(self, decision: Decision) -> None:
        """Queue a decision record (hot path: no I/O). Refuses when the writer is far behind (bounded memory)."""
        queue = self._decisions
        size = len(queue)
        if size >= self._flush_max:
            if size >= self._max_pending:
                raise Unavailable("the decision log is behind; retry shortly")
            self._wake()
        queue.append(decision)

    async def submit_rewards(self, items: list[RewardItem], received_at: float) -> list[RewardOutcome]:
        """Join, deduplicate and durably store rewards; all or nothing. Returns after COMMIT."""
        job = _RewardJob(items, received_at, asyncio.get_running_loop().create_future())
        self._jobs.append(job)
        self._wake()
        return await job.future

    def record_rewards(self, rows: list[tuple[str, float, str, float, int, int, bytes | None, bytes | None]]) -> None:
        """Redis mode: log rewards that Redis accepted (decision_id, ts, arm, reward, default, learned, x, record)."""
        self._jobs.append(_LoggedRewards(rows))
        self._wake()

    def checkpoint(self, fingerprint: str, seq: int, stats: bytes) -> None:
        self._checkpoint = _Checkpoint(fingerprint, seq, stats)
        self._wake()

    # ---------------------------------------------------------------- the writer thread
    def _rows(self, decisions: list[Decision]) -> list[object]:
        """The decisions as the log's rows, flattened into one parameter list (`_COLUMNS` values per decision), built on
        the writer thread, off the decide path: one list extended per decision, no tuple per row."""
        flat: list[object] = []
        add = flat.extend
        version = self._version_id
        memo = self._probabilities
        for d in decisions:
            probabilities = d.probabilities
            packed = memo.get(probabilities)
            if packed is None:  # vectors repeat (see DecideCodec.encode): pack each once; the memo is bounded
                packed = array("d", probabilities).tobytes()
                if len(memo) >= 256:
                    memo.clear()
                memo[probabilities] = packed
            features, eligible = d.features, d.eligible
            add(
                (
                    d.decision_id,
                    d.timestamp,
                    d.arm,
                    d.expires_at,
                    version,
                    d.unit_id,
                    None if features is None else array("d", features).tobytes(),
                    None if eligible is None else array("H", eligible).tobytes(),
                    packed,
                    d.slate_id,
                    d.position,
                )
            )
        return flat

    # `Rounds`, for the writer: decisions, reward requests, a checkpoint, the sweep and the prune in one transaction.
    def take(self, now: float) -> _Round | None:
        # Jobs first, then decisions: a reward's decision was queued before the reward, so it is in this transaction
        # or an earlier one. With rewards waiting, take every queued decision.
        jobs = _drain(self._jobs)
        decisions = _drain(self._decisions, None if jobs else MAX_DECISIONS_PER_COMMIT)
        checkpoint, self._checkpoint = self._checkpoint, None
        sweep = self._join and now >= self._next_sweep
        prune = now >= self._next_prune
        if not (decisions or jobs or checkpoint or sweep or prune):
            return None
        return _Round(now, decisions, jobs, checkpoint, sweep, prune)

    def waiting(self) -> bool:
        return bool(self._decisions or self._jobs)

    def full_sync(self, round_: _Round, /) -> bool:
        return any(isinstance(j, _RewardJob) for j in round_.jobs)

    def write(self, conn: sqlite3.Connection, round_: _Round, /) -> None:
        round_.learned, round_.swept = [], 0
        if round_.decisions:
            decisions = round_.decisions
            _insert_decisions(conn, self._rows(decisions))
            scored = [d for d in decisions if d.scores is not None or d.fallback is not None]
            if scored:
                conn.executemany(_INSERT_SCORES, [_score_row(d) for d in scored])
            pulls = collections.Counter(map(_ARM_OF, decisions))
            conn.executemany(_COUNT, [(arm, n, 0, 0.0, 0) for arm, n in pulls.items()])
        for job in round_.jobs:
            if isinstance(job, _RewardJob):
                self._join_rewards(conn, job, round_.learned)
            else:
                self._log_rewards(conn, job)
        if round_.sweep:
            round_.swept = self._sweep(conn, round_.learned)
        checkpoint = round_.checkpoint
        if checkpoint is not None:
            conn.execute(
                "INSERT OR REPLACE INTO checkpoint (id, fingerprint, seq, stats, ts) VALUES (1, ?, ?, ?, ?)",
                (checkpoint.fingerprint, checkpoint.seq, checkpoint.stats, time.time()),
            )
        if round_.prune:
            self._prune(conn)

    def committed(self, round_: _Round, /) -> None:
        if self._pending_cursor is not None:
            self._sweep_cursor, self._pending_cursor = self._pending_cursor, None
        if round_.decisions:
            self._metrics.commit_records.labels("decision").inc(len(round_.decisions))
        now = round_.now
        if round_.sweep:
            self._next_sweep = now if round_.swept >= SWEEP_BATCH else now + self._sweep_interval
        if round_.prune:
            self._next_prune = now + PRUNE_INTERVAL_SECONDS
        reward_jobs = [j for j in round_.jobs if isinstance(j, _RewardJob)]
        if round_.learned or reward_jobs:
            self._writer.post(self._deliver, round_.learned, reward_jobs)

    def failed(self, round_: _Round, error: Exception, /) -> None:
        self._pending_cursor = None
        for job in round_.jobs:
            if isinstance(job, _RewardJob):
                job.outcomes = []
        log.error("commit failed", error=str(error), decisions=len(round_.decisions), jobs=len(round_.jobs))
        # Decisions go back to the front of the queue (bounded by max_pending); reward requests fail with 503.
        self._decisions.extendleft(reversed(round_.decisions))
        failed = [j for j in round_.jobs if isinstance(j, _RewardJob)]
        self._jobs.extendleft(reversed([j for j in round_.jobs if isinstance(j, _LoggedRewards)]))
        if failed:
            self._writer.post(self._fail_jobs, failed, str(error))

    def _join_rewards(self, conn: sqlite3.Connection, job: _RewardJob, learned: list[tuple[int, Learned]]) -> None:
        """Join every reward of the request first (no writes), then write them all: all or nothing."""
        found: list[Joinable | None] = []
        for item in job.items:
            row = conn.execute(
                "SELECT arm, ts, expires_at, state, features FROM decisions WHERE id = ?", (item.decision_id,)
            ).fetchone()
            found.append(
                None if row is None else Joinable(row[0], row[1], row[2], DecisionState(row[3]), _vector(row[4]))
            )
            if row is None:
                break  # the join refuses the request at this item
        try:
            joined = rules.join(job.items[: len(found)], found, job.received_at)
        except CroupierError as exc:
            job.error = exc
            return
        counts: dict[str, list[float]] = {}
        for item, decision in joined.accepted:
            reward = rules.learned(self._rules, decision.arm, item.reward, decision.features, default=False)
            cursor = conn.execute(
                _INSERT_REWARD,
                (
                    item.decision_id,
                    job.received_at,
                    decision.arm,
                    item.reward,
                    0,
                    int(reward.learn),
                    None if decision.features is None else decision.features.tobytes(),
                    None,
                ),
            )
            conn.execute("UPDATE decisions SET state = ? WHERE id = ?", (DecisionState.REWARDED, item.decision_id))
            assert cursor.lastrowid is not None
            learned.append((cursor.lastrowid, reward))
            c = counts.setdefault(decision.arm, [0, 0.0])
            c[0] += 1
            c[1] += item.reward
        conn.executemany(_COUNT, [(arm, 0, int(n), s, 0) for arm, (n, s) in counts.items()])
        job.outcomes = joined.outcomes

    def _log_rewards(self, conn: sqlite3.Connection, job: _LoggedRewards) -> None:
        conn.executemany(_INSERT_REWARD.replace("INSERT", "INSERT OR IGNORE", 1), job.rows)
        conn.executemany(
            "UPDATE decisions SET state = ? WHERE id = ? AND state = 0",
            [(DecisionState.DEFAULTED if row[4] else DecisionState.REWARDED, row[0]) for row in job.rows],
        )

    def _sweep(self, conn: sqlite3.Connection, learned: list[tuple[int, Learned]]) -> int:
        """Settle decisions whose window closed without a reward; returns how many rows it went through.

        No index on the window's end: ids grow with time and one process uses one window, so waiting decisions
        expire in id order. A cursor (kept in `meta`) marks where every earlier decision is settled; the sweep walks
        from there and stops at the first decision still inside its window. (After a restart with a longer window
        than before, decisions behind a long-window one get their default reward when it does: late, never twice.)
        Saves one index insert per decision on the hot write path.
        """
        now = time.time()
        # Read row by row: the walk usually stops at its first row (a decision still inside its window), and reading
        # the whole batch every sweep would cost the writer (and the event loop, on the same core) thousands of rows
        # converted to Python objects per second for nothing.
        rows = conn.execute(
            "SELECT id, arm, features, state, expires_at FROM decisions WHERE id > ? ORDER BY id LIMIT ?",
            (self._sweep_cursor, SWEEP_BATCH),
        )
        cursor = self._sweep_cursor
        due: list[tuple[str, str, bytes | None]] = []
        walked = 0
        for decision_id, arm, features, state, expires_at in rows:
            if state == DecisionState.WAITING and not rules.window_closed(expires_at, now):
                break
            if state == DecisionState.WAITING:
                due.append((decision_id, arm, features))
            cursor = decision_id
            walked += 1
        rows.close()
        if cursor == self._sweep_cursor:
            return 0
        scanned = SWEEP_BATCH if walked == SWEEP_BATCH else 0
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('sweep_cursor', ?)", (cursor,))
        self._pending_cursor = cursor
        if not due:
            return scanned
        state, default = rules.settle(self._rules)
        if default is None:
            conn.executemany("UPDATE decisions SET state = ? WHERE id = ?", [(state, d[0]) for d in due])
            return scanned
        counts: collections.Counter[str] = collections.Counter()
        for decision_id, arm, features in due:
            reward = rules.learned(self._rules, arm, default, _vector(features), default=True)
            row = conn.execute(_INSERT_REWARD, (decision_id, now, arm, default, 1, int(reward.learn), features, None))
            assert row.lastrowid is not None
            learned.append((row.lastrowid, reward))
            counts[arm] += 1
        conn.executemany("UPDATE decisions SET state = ? WHERE id = ?", [(state, d[0]) for d in due])
        conn.executemany(_COUNT, [(arm, 0, n, n * default, n) for arm, n in counts.items()])
        log.info("default rewards assigned", count=len(due), reward=default)
        return scanned

    def _prune(self, conn: sqlite3.Connection) -> None:
        horizon = time.time() - self._retention
        deleted = conn.execute(
            "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE ts < ? AND state != 0 LIMIT 50000)",
            (horizon,),
        ).rowcount
        conn.execute("DELETE FROM decision_scores WHERE id NOT IN (SELECT id FROM decisions)")
        kept = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM checkpoint").fetchone()[0]
        deleted += conn.execute("DELETE FROM rewards WHERE seq <= ? AND ts < ?", (kept, horizon)).rowcount
        if deleted:
            log.info("old records pruned", count=deleted, older_than=horizon)

    # ---------------------------------------------------------------- back on the event loop
    def _deliver(self, learned: list[tuple[int, Learned]], jobs: list[_RewardJob]) -> None:
        if learned:
            try:
                self._learner.learn(learned)
            except Exception:  # the rewards are durable; answer the requests whatever learning did
                log.exception("learning committed rewards failed", rewards=len(learned))
        for job in jobs:
            if job.future.done():
                continue
            if job.error is not None:
                job.future.set_exception(job.error)
            else:
                job.future.set_result(job.outcomes)

    def _fail_jobs(self, jobs: list[_RewardJob], reason: str) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(StoreError(f"the reward could not be stored: {reason}"))


def _insert_decisions(conn: sqlite3.Connection, flat: list[object]) -> None:
    # Few statements per batch, each a multi-row INSERT: the sqlite3 module releases and retakes the GIL around every
    # statement step, and the writer shares the server's core with the event loop, so a step per record (executemany)
    # costs the decide path a GIL hand-over per decision.
    start, left = 0, len(flat) // _COLUMNS
    while left:
        rows = min(ROWS_PER_INSERT, 1 << (left.bit_length() - 1))
        end = start + rows * _COLUMNS
        conn.execute(_INSERT_DECISIONS[rows], flat[start:end])
        start = end
        left -= rows


def _drain(queue: collections.deque[_T], limit: int | None = None) -> list[_T]:
    popleft = queue.popleft
    count = len(queue) if limit is None else min(len(queue), limit)
    return [popleft() for _ in range(count)]
