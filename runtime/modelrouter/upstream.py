"""The REST adapter's side towards the model server: a small pool of persistent HTTP/1.1 connections.

A request leaves as one write of bytes the adapter built (request line, the few headers it forwards, the body); the
answer is parsed with httptools and handed on as it arrives (``Answer``: its head, then its body in pieces, then its
end), so the adapter streams it to its client without holding a whole large answer. A connection goes back to the
pool after a complete answer that allows keep-alive, and is closed otherwise.

A keep-alive connection can be closed by the model server while it sits idle in the pool (its idle timeout), and the
close may cross a request the router just wrote on it. Such a request never reached the model server's handler, so
when a reused connection closes before a single byte of the answer arrived, the request is sent again, once, on a
new connection. A fresh connection that fails, or one that closes after part of the answer, is an error
(``upstream_unavailable``): the model server may have acted on the request.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Protocol, cast
from urllib.parse import urlsplit

import httptools

from croupier.runtime.modelrouter.errors import RouterError, upstream_deadline, upstream_unavailable


class Answer(Protocol):
    """Where an upstream answer goes, in order: ``head`` once, ``body`` zero or more times, then ``end``; or ``fail``
    (at any point; after ``head`` the client has seen part of the answer)."""

    def head(
        self, status: int, content_type: bytes | None, length: int | None, source: asyncio.Transport | None
    ) -> None: ...
    def body(self, data: bytes) -> None: ...
    def end(self) -> None: ...
    def fail(self, error: RouterError) -> None: ...


class UpstreamConfigError(ValueError):
    """The upstream URL cannot be used; the message names the problem."""


class Upstream:
    """Where the model server's REST API is: scheme, host, port and an optional path prefix."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UpstreamConfigError(f"upstream REST URL must be http(s)://host[:port][/prefix], got {url!r}")
        if parts.query or parts.fragment:
            raise UpstreamConfigError(f"upstream REST URL may not carry a query or fragment, got {url!r}")
        self.url = url.rstrip("/")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self.prefix = parts.path.encode()
        self.host_header = parts.netloc.rpartition("@")[2].encode("idna")


class _Exchange:
    """One request on its way: the bytes to send, where the answer goes, and whether it may be sent again."""

    __slots__ = ("answer", "data", "deadline", "head_only", "retried")

    def __init__(self, data: bytes, answer: Answer, head_only: bool, deadline: float) -> None:
        self.data = data
        self.answer = answer
        self.head_only = head_only
        self.deadline = deadline
        self.retried = False


class UpstreamConnection(asyncio.Protocol):
    """One HTTP/1.1 connection to the model server; at most one request at a time (no pipelining)."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: _Exchange | None = None
        self.reused = False  # it answered a request before
        self.received = False  # a byte of the current answer arrived
        self.closed = False
        self._content_type: bytes | None = None
        self._length: int | None = None

    # ------------------------------------------------------------------ the pool's side
    def send(self, exchange: _Exchange) -> None:
        assert self.transport is not None
        self.exchange = exchange
        self.received = False
        self.transport.write(exchange.data)

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.exchange is None:
            self.close()  # bytes nobody asked for: the connection's framing cannot be trusted
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(upstream_unavailable(self.pool.upstream.url, f"malformed HTTP answer: {error}"))

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        exchange = self.exchange
        if exchange is None:
            return
        self.exchange = None
        if self.reused and not self.received and not exchange.retried:
            exchange.retried = True  # closed while idle, crossing our request: it never reached the model server
            self.pool.submit(exchange)
            return
        detail = f"connection closed before the answer was complete{f': {exc}' if exc else ''}"
        exchange.answer.fail(upstream_unavailable(self.pool.upstream.url, detail))

    def pause_writing(self) -> None:  # a large request body: the kernel's buffer fills, the transport keeps the rest
        pass

    def resume_writing(self) -> None:
        pass

    # ------------------------------------------------------------------ httptools callbacks
    def on_message_begin(self) -> None:
        self._content_type = None
        self._length = None

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-type":
            self._content_type = value
        elif lowered == b"content-length":
            self._length = int(value)  # the parser accepted it: digits

    def on_headers_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            return  # an interim answer (we send no Expect): the real one follows
        chunked = self._length is None and status not in (204, 304) and not exchange.head_only
        length = None if chunked else (self._length or 0)
        exchange.answer.head(status, self._content_type, length, None if exchange.head_only else self.transport)
        if exchange.head_only:
            # The parser does not know the request was HEAD and would wait for a body that never comes.
            self.exchange = None
            exchange.answer.end()
            self.close()

    def on_body(self, data: bytes) -> None:
        if self.exchange is not None:
            self.exchange.answer.body(data)

    def on_message_complete(self) -> None:
        exchange = self.exchange
        if exchange is None:
            return
        if 100 <= self.parser.get_status_code() < 200:
            return
        self.exchange = None
        if self.parser.should_keep_alive() and not self.closed:
            self.reused = True
            self.pool.release(self)  # first: the answer's end may start the client's next request
        else:
            self.close()
        exchange.answer.end()

    # ------------------------------------------------------------------ failures
    def _fail(self, error: RouterError) -> None:
        exchange = self.exchange
        self.exchange = None
        self.close()
        if exchange is not None:
            exchange.answer.fail(error)

    def expire(self, now: float) -> None:
        """Fail the exchange if its deadline passed (called by the pool's sweep)."""
        exchange = self.exchange
        if exchange is not None and exchange.deadline <= now:
            self._fail(upstream_deadline(self.pool.upstream.url, self.pool.timeout))


class UpstreamPool:
    """Persistent connections to the model server: an idle one is reused at once (no task, no await), a new one is
    opened when none is idle, up to ``max_connections``; beyond that requests wait in order."""

    def __init__(self, upstream: Upstream, *, timeout_seconds: float, max_connections: int = 256) -> None:
        self.upstream = upstream
        self.timeout = timeout_seconds
        self.max_connections = max_connections
        self._idle: list[UpstreamConnection] = []
        self._open: set[UpstreamConnection] = set()
        self._connecting = 0
        self._waiting: deque[_Exchange] = deque()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def request(self, data: bytes, answer: Answer, *, head_only: bool = False) -> None:
        """Send ``data`` (one whole HTTP/1.1 request) and hand its answer to ``answer``."""
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self.submit(_Exchange(data, answer, head_only, loop.time() + self.timeout))

    def submit(self, exchange: _Exchange) -> None:
        if self._closed:
            exchange.answer.fail(upstream_unavailable(self.upstream.url, "the router is shutting down"))
            return
        while self._idle:
            connection = self._idle.pop()  # the most recently used: the least likely to have been closed idle
            if not connection.closed:
                connection.send(exchange)
                return
        if len(self._open) + self._connecting < self.max_connections:
            self._connecting += 1
            asyncio.get_running_loop().create_task(self._connect(exchange))
            return
        self._waiting.append(exchange)

    async def _connect(self, exchange: _Exchange) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(
                    lambda: UpstreamConnection(self),
                    self.upstream.host,
                    self.upstream.port,
                    ssl=self.upstream.ssl,
                ),
                timeout=max(exchange.deadline - loop.time(), 0.001),
            )
        except TimeoutError:
            exchange.answer.fail(upstream_deadline(self.upstream.url, self.timeout))
            return
        except OSError as error:
            exchange.answer.fail(upstream_unavailable(self.upstream.url, f"{type(error).__name__}: {error}"))
            return
        finally:
            self._connecting -= 1
        if self._closed:
            connection.close()
            exchange.answer.fail(upstream_unavailable(self.upstream.url, "the router is shutting down"))
            return
        self._open.add(connection)
        connection.send(exchange)

    def release(self, connection: UpstreamConnection) -> None:
        if self._closed:
            connection.close()
            return
        if self._waiting:
            connection.send(self._waiting.popleft())
            return
        self._idle.append(connection)

    def forget(self, connection: UpstreamConnection) -> None:
        self._open.discard(connection)
        if connection in self._idle:
            self._idle.remove(connection)
        if self._waiting and not self._closed and len(self._open) + self._connecting < self.max_connections:
            self._connecting += 1
            asyncio.get_running_loop().create_task(self._connect(self._waiting.popleft()))

    def sweep(self, now: float) -> None:
        """Fail requests past their deadline: those on a connection, and those still waiting for one."""
        for connection in list(self._open):
            connection.expire(now)
        while self._waiting and self._waiting[0].deadline <= now:
            self._waiting.popleft().answer.fail(upstream_deadline(self.upstream.url, self.timeout))

    def close(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        while self._waiting:
            self._waiting.popleft().answer.fail(upstream_unavailable(self.upstream.url, "the router is shutting down"))

    @property
    def open_connections(self) -> int:
        return len(self._open)
