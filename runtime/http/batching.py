"""Decisions of requests that arrive together, run back to back in one event-loop callback.

Under load the event loop makes several requests ready in the same turn. Run as they come, each decide call sits
between the HTTP stack's work for its own request and the next one's, and starts with the CPU caches full of that
work; run back to back, the decide path's code and data stay hot from one decision to the next (the time inside the
decide call and the CPU per request before and after are in docs/benchmarks/http.md). A request that arrives alone
waits one turn of the loop.

Every request still gets its own decision, made in arrival order by the same synchronous decode,
`DecisionService.decide` and encode; a failure reaches only the request that caused it, and a request whose task was
cancelled (client gone, shutdown) before its turn is not decided. A request's outcome goes to its `Sink`: a future
(`submit`, the ASGI route) or the connection's own answer (`enqueue`, `server.DirectCycle`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol


class Sink(Protocol):
    """Where one request's outcome goes (an `asyncio.Future[bytes]` is one)."""

    def cancelled(self) -> bool: ...

    def set_result(self, result: bytes, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...


class DecideBatcher:
    """Queues decide bodies and runs them all in one `call_soon` callback per loop turn."""

    __slots__ = ("_decide", "_pending")

    def __init__(self, decide: Callable[[bytes], bytes]) -> None:
        self._decide = decide
        self._pending: list[tuple[bytes, Sink]] = []

    def submit(self, body: bytes) -> asyncio.Future[bytes]:
        """The response body of this request's decision, or its CroupierError, once its turn comes."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((body, future))
        return future

    def enqueue(self, body: bytes, sink: Sink, loop: asyncio.AbstractEventLoop) -> None:
        """Decide `body` in this loop turn's batch and hand the outcome to `sink` (unless it is cancelled by then)."""
        if not self._pending:
            loop.call_soon(self._run)
        self._pending.append((body, sink))

    def _run(self) -> None:
        batch, self._pending = self._pending, []
        decide = self._decide
        for body, sink in batch:
            if sink.cancelled():
                continue
            try:
                result = decide(body)
            except Exception as exc:  # delivered to the one request that caused it
                sink.set_exception(exc)
            else:
                sink.set_result(result)
