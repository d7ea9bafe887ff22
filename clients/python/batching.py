"""Batched reward senders: ``RewardBatcher`` (a background thread, for ``Client``) and ``AsyncRewardBatcher`` (an
asyncio task, for ``AsyncClient``), on one shared bookkeeping core (``RewardQueue``).

- A batch is sent when ``max_batch`` rewards wait or ``flush_interval`` seconds after the oldest arrived, and on
  ``flush()`` and ``close()``.
- The queue is bounded: past ``max_queue`` rewards not yet acknowledged (queued or in flight), ``add`` raises
  ``RewardQueueFull`` and counts it in ``stats.queue_full``: an accepted reward is never dropped.
- A batch that got no answer or a 5xx (or 401/403/413: a configuration to fix, not a bad reward) goes back to the
  front of the queue and is sent again after a backoff: rewards are idempotent by decisionId, so a reward that was
  stored before the failure is answered ``duplicate`` (``stats.duplicates``).
- A batch the runtime rejects for one item (404 UnknownDecision, 409 AttributionWindowExpired, 422: the error names
  ``rewards[i]``) loses that item only: it is recorded in ``rejected`` (and passed to ``on_rejected``), the rest is sent
  again at once.
- ``close(timeout)`` sends everything; what the runtime has not acknowledged by then is raised in
  ``RewardsNotDelivered.pending``.
- Fallback decisions are not queued (``add`` returns False, ``stats.fallback_skipped``): the runtime never logged them.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from croupier.api import wire
from croupier.api.wire import MAX_REWARDS_PER_REQUEST, Reward, RewardOutcome, RewardResponse

from . import protocol
from .errors import ApiError, CroupierError, RewardQueueFull, RewardsNotDelivered, item_index
from .protocol import Rewardable
from .retry import RetryPolicy

if TYPE_CHECKING:
    from .aio import AsyncClient
    from .client import Client

log = logging.getLogger("croupier.client")


@dataclass(frozen=True, slots=True)
class BatcherStats:
    """Counters of a batched sender since it started."""

    queued: int = 0
    """Rewards waiting or in flight now."""
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    """Rewards the runtime refused (in ``rejected`` with their error)."""
    batches: int = 0
    """Requests answered 200."""
    failed_sends: int = 0
    """Requests that got no answer or an error answer (their rewards were kept and sent again)."""
    queue_full: int = 0
    """``add`` calls refused with RewardQueueFull."""
    fallback_skipped: int = 0


@dataclass(frozen=True, slots=True)
class Rejected:
    reward: Reward
    error: ApiError


class RewardQueue:
    """The bookkeeping both senders share (no I/O, no locking: the callers serialise access)."""

    def __init__(self, max_batch: int, flush_interval: float, max_queue: int, retry: RetryPolicy) -> None:
        if not 1 <= max_batch <= MAX_REWARDS_PER_REQUEST:
            raise ValueError(f"max_batch must be within 1..{MAX_REWARDS_PER_REQUEST}, got {max_batch}")
        if flush_interval <= 0:
            raise ValueError(f"flush_interval must be positive, got {flush_interval}")
        if max_queue < max_batch:
            raise ValueError(f"max_queue ({max_queue}) must be at least max_batch ({max_batch})")
        self.max_batch = max_batch
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.retry = retry
        self.waiting: deque[Reward] = deque()
        self.flying: list[Reward] = []
        self.oldest: float | None = None
        self.not_before = 0.0
        self.failures_in_row = 0
        self.last_error: CroupierError | None = None
        self.rejected: list[Rejected] = []
        self.stats = BatcherStats()

    def offer(self, decision: Rewardable, reward: float) -> Reward | None:
        """Queue a reward (None: a fallback decision, not queued); RewardQueueFull past max_queue."""
        item = protocol.reward_item(decision, reward)
        if item is None:
            self.stats = replace(self.stats, fallback_skipped=self.stats.fallback_skipped + 1)
            return None
        if len(self.waiting) + len(self.flying) >= self.max_queue:
            self.stats = replace(self.stats, queue_full=self.stats.queue_full + 1)
            raise RewardQueueFull(self.max_queue)
        if not self.waiting:
            self.oldest = time.monotonic()
        self.waiting.append(item)
        self.stats = replace(self.stats, queued=self.stats.queued + 1)
        return item

    def wakes_sender(self) -> bool:
        """After an offer: the sender must look again (its first reward starts the interval; a full batch is due)."""
        return len(self.waiting) == 1 or len(self.waiting) >= self.max_batch

    @property
    def unsettled(self) -> int:
        return len(self.waiting) + len(self.flying)

    def due_in(self, now: float, draining: bool) -> float | None:
        """Seconds until the next batch is due (0: now); None when nothing waits. A backoff after a failed send
        holds even while draining."""
        if not self.waiting or self.flying:
            return None
        due = 0.0
        if not draining and len(self.waiting) < self.max_batch and self.oldest is not None:
            due = self.oldest + self.flush_interval - now
        return max(0.0, due, self.not_before - now)

    def take(self) -> list[Reward]:
        count = min(self.max_batch, len(self.waiting))
        self.flying = [self.waiting.popleft() for _ in range(count)]
        self.oldest = time.monotonic() if self.waiting else None
        return self.flying

    def settle(self, answer: RewardResponse | CroupierError) -> list[Rejected]:
        """Account for the batch in flight; returns the rewards the runtime refused (taken out of the queue)."""
        batch, self.flying = self.flying, []
        stats = self.stats
        if isinstance(answer, RewardResponse):
            self.failures_in_row = 0
            duplicates = sum(1 for r in answer.results if r.outcome == RewardOutcome.DUPLICATE)
            self.stats = replace(
                stats,
                queued=stats.queued - len(batch),
                accepted=stats.accepted + len(batch) - duplicates,
                duplicates=stats.duplicates + duplicates,
                batches=stats.batches + 1,
            )
            return []
        self.last_error = answer
        stats = replace(stats, failed_sends=stats.failed_sends + 1)
        index = item_index(answer.field) if isinstance(answer, ApiError) and answer.status in (404, 409, 422) else None
        if index is not None and index < len(batch):
            rejected = Rejected(batch.pop(index), answer)  # type: ignore[arg-type]  # index implies ApiError
            self.rejected.append(rejected)
            self.stats = replace(stats, queued=stats.queued - 1, rejected=stats.rejected + 1)
            self._requeue(batch)
            return [rejected]
        self.stats = stats
        self._requeue(batch)
        self.not_before = time.monotonic() + max(self.retry.delay(self.failures_in_row), 0.01)
        self.failures_in_row += 1
        return []

    def _requeue(self, batch: list[Reward]) -> None:
        self.waiting.extendleft(reversed(batch))
        if self.waiting and self.oldest is None:
            self.oldest = time.monotonic()

    def pending(self) -> list[Reward]:
        """Every reward not acknowledged yet: the batch in flight, then the queue."""
        return [*self.flying, *self.waiting]


RejectedHook = Callable[[Rejected], None]


class RewardBatcher:
    """Rewards queued by any thread, sent in batches by one background thread over the client's pool."""

    def __init__(
        self,
        client: Client,
        *,
        max_batch: int = 500,
        flush_interval: float = 0.2,
        max_queue: int = 100_000,
        retry: RetryPolicy | None = None,
        on_rejected: RejectedHook | None = None,
    ) -> None:
        self.client = client
        self.queue = RewardQueue(max_batch, flush_interval, max_queue, retry or RetryPolicy(max_delay=5.0))
        self.on_rejected = on_rejected
        self._cond = threading.Condition()
        self._draining = False
        self._stopped = False
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="croupier-reward-batcher", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    @property
    def stats(self) -> BatcherStats:
        return self.queue.stats

    @property
    def rejected(self) -> list[Rejected]:
        return list(self.queue.rejected)

    def add(self, decision: Rewardable, reward: float) -> bool:
        """Queue a reward; False for a fallback decision (not sent). Raises RewardQueueFull when the queue is full,
        InvalidArgument for a bad reward, and RuntimeError after close."""
        with self._cond:
            if self._stopped:
                raise RuntimeError("the reward batcher is closed")
            queued = self.queue.offer(decision, reward) is not None
            if queued and self.queue.wakes_sender():
                self._cond.notify_all()
            return queued

    def flush(self, timeout: float = 30.0) -> None:
        """Send everything queued now and wait until the runtime acknowledged it (RewardsNotDelivered on timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            self._draining = True
            self._cond.notify_all()
            try:
                while self.queue.unsettled:
                    left = deadline - time.monotonic()
                    if left <= 0 or not self._thread.is_alive():
                        raise RewardsNotDelivered(self.queue.pending(), self.queue.last_error)
                    self._cond.wait(left)
            finally:
                self._draining = self._stopped

    def close(self, timeout: float = 30.0) -> None:
        """Send everything, then stop the thread. RewardsNotDelivered holds what was not acknowledged in time."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = self._draining = True
            self._cond.notify_all()
        atexit.unregister(self._close_at_exit)
        self._thread.join(timeout)
        with self._cond:
            if self._thread.is_alive() or self.queue.unsettled:
                self._abandoned = True
                self._cond.notify_all()
                raise RewardsNotDelivered(self.queue.pending(), self.queue.last_error)

    def _close_at_exit(self) -> None:
        """A batcher left open when the interpreter exits still sends what it holds (for a few seconds), and says
        how many rewards it could not deliver."""
        try:
            self.close(timeout=5.0)
        except RewardsNotDelivered as exc:
            log.error("the reward batcher was not closed: %d rewards not delivered at exit (%s)", len(exc.pending), exc)

    def __enter__(self) -> RewardBatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._abandoned:
                        return
                    due = self.queue.due_in(time.monotonic(), self._draining)
                    if due is None and self._stopped and not self.queue.unsettled:
                        self._cond.notify_all()
                        return
                    if due == 0.0:
                        break
                    self._cond.wait(due)
                self.queue.take()
                batch = self.queue.flying
            answer: RewardResponse | CroupierError
            try:
                body = protocol.rewards_body(batch)
                # Sent once here: the batcher retries itself, keeping the batch in its queue between attempts.
                answer = protocol.parse(
                    RewardResponse, self.client.send("POST", wire.REWARDS_PATH, body, idempotent=False)
                )
            except CroupierError as exc:
                answer = exc
            except Exception as exc:  # e.g. an answer that is not a RewardResponse: keep the batch, retry later
                answer = CroupierError(f"unexpected error sending rewards: {type(exc).__name__}: {exc}")
            with self._cond:
                if self._abandoned:
                    return
                rejected = self.queue.settle(answer)
                self._cond.notify_all()
            if self.on_rejected is not None:
                for item in rejected:
                    self.on_rejected(item)


class AsyncRewardBatcher:
    """Rewards queued by coroutines, sent in batches by one asyncio task over the async client's pool. Create it
    inside a running loop; ``await close()`` before the loop ends."""

    def __init__(
        self,
        client: AsyncClient,
        *,
        max_batch: int = 500,
        flush_interval: float = 0.2,
        max_queue: int = 100_000,
        retry: RetryPolicy | None = None,
        on_rejected: RejectedHook | None = None,
    ) -> None:
        self.client = client
        self.queue = RewardQueue(max_batch, flush_interval, max_queue, retry or RetryPolicy(max_delay=5.0))
        self.on_rejected = on_rejected
        self._wake = asyncio.Event()
        self._settled = asyncio.Event()
        self._draining = False
        self._stopped = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="croupier-reward-batcher")

    @property
    def stats(self) -> BatcherStats:
        return self.queue.stats

    @property
    def rejected(self) -> list[Rejected]:
        return list(self.queue.rejected)

    def add(self, decision: Rewardable, reward: float) -> bool:
        """Queue a reward (no await); same rules as RewardBatcher.add."""
        if self._stopped:
            raise RuntimeError("the reward batcher is closed")
        queued = self.queue.offer(decision, reward) is not None
        if queued and self.queue.wakes_sender():
            self._wake.set()
        return queued

    async def flush(self, timeout: float = 30.0) -> None:
        self._draining = True
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while self.queue.unsettled:
                    if self._task.done():
                        break
                    self._settled.clear()
                    await self._settled.wait()
        except TimeoutError:
            pass
        finally:
            self._draining = self._stopped
        if self.queue.unsettled:
            raise RewardsNotDelivered(self.queue.pending(), self.queue.last_error)

    async def close(self, timeout: float = 30.0) -> None:
        if self._stopped:
            return
        try:
            await self.flush(timeout)
        finally:
            self._stopped = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def __aenter__(self) -> AsyncRewardBatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            due = self.queue.due_in(time.monotonic(), self._draining)
            if due != 0.0:
                self._wake.clear()
                try:
                    async with asyncio.timeout(due):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                continue
            batch = self.queue.take()
            answer: RewardResponse | CroupierError
            try:
                body = protocol.rewards_body(batch)
                answer = protocol.parse(
                    RewardResponse, await self.client.send("POST", wire.REWARDS_PATH, body, idempotent=False)
                )
            except CroupierError as exc:
                answer = exc
            except Exception as exc:  # e.g. an answer that is not a RewardResponse: keep the batch, retry later
                answer = CroupierError(f"unexpected error sending rewards: {type(exc).__name__}: {exc}")
            rejected = self.queue.settle(answer)
            self._settled.set()
            if self.on_rejected is not None:
                for item in rejected:
                    self.on_rejected(item)
