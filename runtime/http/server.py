"""Connection handling in front of the ASGI app: uvicorn's httptools protocol with bounds on slow and idle clients.

uvicorn bounds the idle time between requests (``timeout_keep_alive``) but not the time a client takes to send a
request: a client that stops halfway through its headers, sends a ``Content-Length`` larger than its body, or
trickles the body a byte at a time would hold a connection (and, past the headers, an ASGI task) forever. Like
``client_header_timeout``/``client_body_timeout`` in nginx or ``ReadHeaderTimeout`` in Go's ``http.Server``,
:func:`guarded_protocol` adds:

- a new connection that sends nothing is closed after ``timeout_keep_alive``, like an idle keep-alive connection;
- **header deadline**: from a request's first byte, its headers must be complete within ``header_timeout`` seconds;
- **body deadline**: from the end of the headers, the whole body must arrive within ``body_timeout`` seconds (a total,
  so a trickle of one byte every 0.3 s is cut off as surely as silence);
- a ``Content-Length`` above ``max_body_bytes`` is answered 413 at once, without waiting for the body;
- **connection bound**: with ``max_connections`` open, a new connection evicts the connection that has been waiting
  longest for its client (idle, or still sending a request); when every connection has a request in the app, the new
  one is closed instead. Stalled clients therefore cannot lock well-behaved ones out.

A request that misses a deadline gets ``408`` with the runtime's JSON error shape (``RequestTimeout``) and the
connection is closed; a connection that never started a request is just closed. Malformed framing (a negative or
conflicting ``Content-Length``, ``Content-Length`` together with ``Transfer-Encoding: chunked``, a bad chunk size)
is rejected by the parser; the answer is ``400`` with the JSON error shape (``MalformedHttp``) instead of uvicorn's
plain text. The timers are armed only while a request is incomplete after a read, so a request that arrives in one
read (the usual case) costs no timer; the keep-alive timer stays armed across requests instead of being cancelled
and armed again for each one. A small answer's status line, headers and body leave in one write (`OneWriteCycle`).

The app's hot route (decide, or an experiment's assign: `DirectRoute`) is answered by the connection itself once the
request's body is complete: the body goes to the route's handler (the decide batch, or the assign batch) and the answer
is written with the bytes uvicorn would write for the app's own answer, without uvicorn's request cycle, an asyncio
task or ASGI messages (`DirectCycle`). A handler that must wait (an assign whose variant asks a DecisionPolicy's
runtime) runs a task for that request alone and answers through the same cycle (`DirectCycle.hold`). Requests the
direct path does not take (HTTP/1.0, ``Connection: close``, ``Expect``, a refused token, one pipelined behind another)
go to the app as before.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

import httptools
import orjson
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from croupier.runtime.errors import BadRequest, CroupierError, PayloadTooLarge
from croupier.runtime.http.batching import Sink

__all__ = [
    "ConnectionLimits",
    "DirectHandler",
    "DirectRoute",
    "DirectSink",
    "MalformedHttp",
    "RequestTimeout",
    "guarded_protocol",
]


class RequestTimeout(CroupierError):
    status = 408
    code = "RequestTimeout"


class MalformedHttp(BadRequest):
    code = "MalformedHttp"


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Bounds on what a client may hold (see the module docstring); from the runtime's settings."""

    header_timeout: float
    body_timeout: float
    max_connections: int
    max_body_bytes: int


class DirectSink(Sink, Protocol):
    """A direct request's outcome (`DirectCycle`): besides the answer or the error, a task that produces it."""

    def hold(self, task: asyncio.Task[None], /) -> None: ...


class DirectHandler(Protocol):
    """Answers a direct route's bodies: each request's answer body (or its error) goes to its sink, in its loop turn's
    batch or, for a request that must wait, from a task the sink holds (`DecideBatcher`, the experiment's assign)."""

    def enqueue(self, body: bytes, sink: DirectSink, loop: asyncio.AbstractEventLoop, /) -> None: ...


@dataclass(frozen=True, slots=True)
class DirectRoute:
    """A POST route whose answer is, on its usual path, a synchronous function of the body (decide, assign), which the
    connection answers itself: no ASGI cycle, task, scope messages or `send` calls (`DirectCycle`). Built by the app
    (`HttpApp.direct_route`)."""

    path: str
    batcher: DirectHandler
    """Answers the body in its loop turn's batch and hands the answer's body (or the error) to the request's sink."""
    max_body: int
    authorized: Callable[[list[tuple[bytes, bytes]]], bool] | None
    """Whether the request's headers grant the route (None: authentication is off). A request they do not is left to
    the app, which answers 401/403 as on any route."""
    error: Callable[[BaseException], tuple[int, list[tuple[bytes, bytes]], bytes]]
    """The app's error answer (status, headers, body) to an exception of the decide call, counted and logged there."""


class _Reading(Enum):
    IDLE = 0  # no request started since the last one completed
    HEADERS = 1  # a request started; its headers are incomplete
    BODY = 2  # headers complete, body incomplete


# The members as plain module globals: reading an Enum member off its class goes through a descriptor (~85 ns on
# Python 3.11), and `data_received` runs once per read.
_IDLE, _HEADERS, _BODY = _Reading.IDLE, _Reading.HEADERS, _Reading.BODY


def _error_response(error: CroupierError) -> bytes:
    body = orjson.dumps(error.to_wire())
    return b"".join(
        [
            STATUS_LINE[error.status],
            b"content-type: application/json\r\ncontent-length: ",
            str(len(body)).encode(),
            b"\r\nconnection: close\r\n\r\n",
            body,
        ]
    )


class _Capture:
    """Stands in for the transport while uvicorn writes a response's status line and headers (one `write`)."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        self.written = b""

    def write(self, data: bytes) -> None:
        self.written = data


_capture = _Capture()  # one per process: the event loop's thread fills and empties it with no await in between


class OneWriteCycle(RequestResponseCycle):
    """uvicorn's request/response cycle, except that a response's status line and headers wait for its first body
    message and leave with it in one transport write: one `send` system call (and one TCP segment) per small answer
    instead of two. What is written, and every check uvicorn makes on the messages, stay uvicorn's own.

    If the app fails between the two messages, the connection is closed without the headers (uvicorn would have
    sent them, then closed): the client sees a closed connection either way."""

    head: bytes | None = None  # the status line and headers not yet written

    async def send(self, message: Any) -> None:
        head = self.head
        if head is None:
            if self.response_started or self.disconnected or self.flow.write_paused:
                await super().send(message)
                return
            # uvicorn builds and checks the start (it raises on anything but a start message); its write is kept.
            transport, self.transport = self.transport, _capture  # type: ignore[assignment]
            try:
                await super().send(message)  # no await inside: the flow is not paused, the client is here
            finally:
                self.transport = transport
            self.head, _capture.written = _capture.written, b""
            return
        self.head = None
        if (
            message["type"] == "http.response.body"
            and not message.get("more_body", False)
            and not self.chunked_encoding
            and not self.flow.write_paused
            and not self.disconnected
            and self.scope["method"] != "HEAD"
        ):
            body = message.get("body", b"")
            if len(body) != self.expected_content_length:
                self.transport.write(head)
                await super().send(message)  # raises uvicorn's error for a body longer or shorter than declared
                return
            self.transport.write(head + body)
            self.expected_content_length = 0
            self.response_complete = True
            self.message_event.set()
            if not self.keep_alive:
                self.transport.close()
            self.on_response()
            return
        self.transport.write(head)
        await super().send(message)


class _NoEvent:
    """A direct request has no app waiting for its body: uvicorn's and the guard's `message_event.set()` do nothing."""

    __slots__ = ()

    def set(self) -> None:
        pass


_NO_EVENT = _NoEvent()
_JSON_OK_HEAD = STATUS_LINE[200] + b"content-type: application/json\r\ncontent-length: "
_OK_HEADS: dict[int, bytes] = {}  # the head of a 200 answer on a keep-alive connection, by body length


def _head(status: int, headers: list[tuple[bytes, bytes]], keep_alive: bool) -> bytes:
    """The status line and headers uvicorn writes for a start message of `status` and `headers` (lower-case names,
    no Content-Length/Transfer-Encoding surprises: the app's own JSON answers) and no default headers."""
    content = [STATUS_LINE[status]]
    for name, value in headers:
        content.extend([name.lower(), b": ", value, b"\r\n"])
    if not keep_alive:
        content.append(b"connection: close\r\n")
    content.append(b"\r\n")
    return b"".join(content)


class DirectCycle:
    """One request on a `DirectRoute`: the attributes of uvicorn's cycle that the parser callbacks and the guard read
    (`scope`, `body`, `more_body`, `response_started`, `response_complete`, `disconnected`, `keep_alive`,
    `message_event`), and the batcher's sink: its decision's answer, or the app's error answer, is written in one
    transport write with the bytes uvicorn would write for the app's start and body messages."""

    __slots__ = (
        "body",
        "disconnected",
        "keep_alive",
        "more_body",
        "protocol",
        "response_complete",
        "response_started",
        "scope",
    )
    message_event = _NO_EVENT

    def __init__(self, protocol: GuardedHttpToolsProtocol, scope: Any) -> None:
        self.protocol = protocol
        self.scope = scope
        self.body = b""
        self.more_body = True
        self.keep_alive = True
        self.response_started = False
        self.response_complete = False
        self.disconnected = False

    # ------------------------------------------------------------------ the handler's sink
    def hold(self, task: asyncio.Task[None], /) -> None:
        """A task that will answer this request (it waits, e.g. for a DecisionPolicy's runtime): tracked with the
        server's tasks, so a graceful shutdown waits for it as for an ASGI request's."""
        tasks = self.protocol.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def cancelled(self) -> bool:
        """The client is gone (or the guard gave up on it): its request is not decided."""
        return self.disconnected

    def set_result(self, result: bytes, /) -> None:
        if self.keep_alive:
            head = _OK_HEADS.get(len(result))
            if head is None:
                head = _JSON_OK_HEAD + str(len(result)).encode() + b"\r\n\r\n"
                if len(_OK_HEADS) < 4096:
                    _OK_HEADS[len(result)] = head
        else:  # uvicorn's shutdown asked for a last answer
            head = _head(
                200, [(b"content-type", b"application/json"), (b"content-length", str(len(result)).encode())], False
            )
        self._answer(head + result)

    def set_exception(self, exception: BaseException, /) -> None:
        status, headers, body = self.protocol.direct.error(exception)  # type: ignore[union-attr]  # set: a DirectCycle
        self._answer(_head(status, headers, self.keep_alive) + body)

    def _answer(self, data: bytes) -> None:
        protocol = self.protocol
        transport = protocol.transport
        if self.disconnected or transport.is_closing():
            return
        self.response_started = True
        transport.write(data)
        self.response_complete = True
        if not self.keep_alive:
            transport.close()
        protocol.on_response_complete()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """:class:`HttpToolsProtocol` with read deadlines and a connection bound; built by :func:`guarded_protocol`."""

    limits: ConnectionLimits

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._deadline: asyncio.TimerHandle | None = None
        self._deadline_phase = _IDLE  # what the deadline bounds (IDLE: there is none)
        # Since when the connection is idle (no request started since the last answer); None while a request is read,
        # waits in the pipeline or is in the app. The keep-alive timer is not cancelled when a request arrives and
        # armed anew after each answer (a uvloop timer costs ~3 us to arm and cancel): it stays armed, and when it
        # fires it closes a connection idle for the whole timeout, or waits for the rest of it (see _keep_alive_due).
        self._idle_since: float | None = None
        # The app's hot route, answered by the connection itself; only when the app is the runtime's own, unwrapped
        # by uvicorn's middleware (which would have to see every request).
        self.direct: DirectRoute | None = getattr(self.app, "direct_route", None)

    # ------------------------------------------------------------------ connections
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._evict_one():
            self.connections.discard(self)
            transport.close()
            return
        # Until its first byte a new connection is idle: the keep-alive timer closes it, as between requests.
        self._idle_since = self.loop.time()
        self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def on_response_complete(self) -> None:
        # uvicorn's, with the idle clock: the keep-alive timer is armed only if none is.
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        """The keep-alive timer fired: close the connection if it has been idle for the whole timeout, else wait for
        the rest of it (busy now: on_response_complete arms the timer again)."""
        self.timeout_keep_alive_task = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self.timeout_keep_alive_task = self.loop.call_later(left, self._keep_alive_due)
            return
        self.timeout_keep_alive_handler()

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for its client; False if every other one is busy."""
        victim: GuardedHttpToolsProtocol | None = None
        oldest = 0.0
        for connection in self.connections:
            if connection is self or not isinstance(connection, GuardedHttpToolsProtocol):
                continue
            since = connection._waiting_since()
            if since is not None and (victim is None or since < oldest):
                victim, oldest = connection, since
        if victim is None:
            return False
        victim._give_up(RequestTimeout("the server is at its connection limit and closed this stalled connection"))
        return True

    def _waiting_since(self) -> float | None:
        """Since when the connection waits for its client (idle, or a request not fully received), else None.

        Read off the deadline's timer, or the idle clock (one loop-time read per answer), so that reading a request
        pays for no clock reads.
        """
        cycle = self.cycle
        if self.transport.is_closing() or (
            cycle is not None and cycle.response_started and not cycle.response_complete
        ):
            return None  # closing, or an answer is being written
        if self._deadline is not None:
            return self._deadline.when() - self._timeout(self._deadline_phase)
        return self._idle_since  # None: a fully received request is in the app (or waits in the pipeline)

    def on_headers_complete(self) -> None:
        # uvicorn's (0.54) on_headers_complete, building a OneWriteCycle. Not the base method followed by a change of
        # the cycle's class: an object whose class changes loses CPython's shared-key attribute layout, and every
        # attribute access of the cycle then costs more (2+ us per request measured).
        parser, scope = self.parser, self.scope
        http_version = parser.get_http_version()
        scope["method"] = parser.get_method().decode("ascii")
        if http_version != "1.1":
            scope["http_version"] = http_version
        if parser.should_upgrade() and self._should_upgrade():
            return
        parsed_url = httptools.parse_url(self.url)
        raw_path = parsed_url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = parsed_url.query or b""
        if self.limit_concurrency is not None and (
            len(self.connections) >= self.limit_concurrency or len(self.tasks) >= self.limit_concurrency
        ):
            app = service_unavailable
            self.logger.warning("Exceeded concurrency limit.")
        else:
            app = self.app
        existing_cycle = self.cycle
        keep_alive = http_version != "1.0" and parser.should_keep_alive()
        direct = self.direct
        if (
            direct is not None
            and path == direct.path
            and app is self.app
            and keep_alive
            and scope["method"] == "POST"
            and not self.expect_100_continue
            and not self.root_path
            and (existing_cycle is None or existing_cycle.response_complete)
            and (direct.authorized is None or direct.authorized(self.headers))
        ):
            # The hot route, answered here (`DirectCycle`); a pipelined request behind it waits as behind any other.
            self.cycle = DirectCycle(self, scope)  # type: ignore[assignment]
            return
        self.cycle = OneWriteCycle(
            scope=scope,
            transport=self.transport,
            flow=self.flow,
            logger=self.logger,
            access_logger=self.access_logger,
            access_log=self.access_log,
            default_headers=self.server_state.default_headers,
            message_event=asyncio.Event(),
            expect_100_continue=self.expect_100_continue,
            keep_alive=keep_alive,
            on_response=self.on_response_complete,
        )
        if existing_cycle is None or existing_cycle.response_complete:
            self._start_asgi_task(self.cycle, app)
        else:  # pipelined requests wait for the answer before them
            self.flow.pause_reading()
            self.pipeline.appendleft((self.cycle, app))

    def on_message_complete(self) -> None:
        cycle: object = self.cycle
        if type(cycle) is not DirectCycle:
            super().on_message_complete()
            return
        if cycle.response_complete:
            return
        cycle.more_body = False
        direct: DirectRoute = self.direct  # type: ignore[assignment]  # a DirectCycle exists only with a route
        if len(cycle.body) > direct.max_body:
            cycle.set_exception(PayloadTooLarge(f"the body exceeds {direct.max_body} bytes"))
            return
        direct.batcher.enqueue(cycle.body, cycle, self.loop)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    # ------------------------------------------------------------------ reading
    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, keeping the parser's reason for a 400 (it only logs a generic message), then the
        # deadlines. No parser callback is overridden: a request that arrives in one read costs two comparisons here.
        self._idle_since = None  # uvicorn cancels the keep-alive timer here; it finds the connection busy instead
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            self._malformed(str(exc))
            return
        cycle = self.cycle
        if cycle is not None and cycle.scope is self.scope and not cycle.more_body:  # _reading() inlined: IDLE
            if self._deadline is not None:  # a deadline is armed exactly when its phase is not IDLE
                self._cancel_deadline()
            return
        phase = self._reading()
        if phase is not self._deadline_phase:
            self._cancel_deadline()
            if phase is _IDLE or self.transport.is_closing():
                return
            if phase is _BODY and self._declared_length() > self.limits.max_body_bytes:
                error = PayloadTooLarge(f"the body exceeds {self.limits.max_body_bytes} bytes")
                self._reject(error, headers_complete=True)
                return
            # From now on the request's headers (or its body) have a deadline.
            self._deadline = self.loop.call_later(self._timeout(phase), self._deadline_passed, phase)
            self._deadline_phase = phase

    def _reading(self) -> _Reading:
        """Where the parser is, from uvicorn's own state: every request gets a new ``scope`` when it begins, and a
        ``cycle`` holding that scope when its headers are complete; ``more_body`` drops when its body is complete
        (uvicorn leaves it set when the app answered before the body ended: such a request stays bounded too)."""
        scope, cycle = self.scope, self.cycle
        if scope is None:
            return _IDLE  # nothing received yet
        if cycle is None or cycle.scope is not scope:
            return _HEADERS
        return _BODY if cycle.more_body else _IDLE

    def _declared_length(self) -> int:
        for name, value in self.headers:
            if name == b"content-length":
                return int(value)  # the parser accepted it: digits only
        return 0

    def _timeout(self, phase: _Reading) -> float:
        return self.limits.header_timeout if phase is _HEADERS else self.limits.body_timeout

    def _malformed(self, reason: str) -> None:
        """The parser rejected the bytes (framing, chunk size, header syntax): 400 in the JSON shape, then close."""
        self._cancel_deadline()
        cycle = self.cycle
        if cycle is not None and cycle.response_started and not cycle.response_complete:
            self.transport.close()  # an answer to an earlier request is being written: no room for another
            return
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app, if it runs, sees a disconnect; its answer is dropped
            cycle.message_event.set()
        detail = reason.rstrip(".") or "invalid HTTP request"
        self.transport.write(_error_response(MalformedHttp(f"malformed HTTP request: {detail}")))
        self.transport.close()

    # ------------------------------------------------------------------ deadlines
    def _deadline_passed(self, phase: _Reading) -> None:
        self._deadline = None
        self._deadline_phase = _IDLE
        if self.transport.is_closing() or self._reading() is not phase:
            return
        what = "headers" if phase is _HEADERS else "body"
        self._give_up(RequestTimeout(f"the request {what} did not arrive within {self._timeout(phase):g} s"))

    def _give_up(self, error: CroupierError) -> None:
        """Stop waiting for this client: answer ``error`` if nothing was answered yet, then close."""
        self._cancel_deadline()
        phase = self._reading()
        if phase is _IDLE:
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._reject(error, headers_complete=phase is _BODY)

    def _reject(self, error: CroupierError, *, headers_complete: bool) -> None:
        """Answer ``error`` to the request being read and close the connection.

        ``headers_complete``: ``self.cycle`` is that request's (uvicorn made it, the app may be waiting for the body);
        otherwise ``self.cycle`` is an earlier request's. Nothing is written while another answer is being written.
        """
        cycle = self.cycle
        if headers_complete and cycle is not None:
            if not cycle.response_complete:  # the app sees a disconnect on its next receive; its answer is dropped
                cycle.disconnected = True
                cycle.message_event.set()
            answer = not cycle.response_started and not self.pipeline
        else:
            answer = cycle is None or cycle.response_complete
        if answer:
            self.transport.write(_error_response(error))
        self.transport.close()

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._deadline_phase = _IDLE


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to pass as ``uvicorn.Config(http=...)``, bound to ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
