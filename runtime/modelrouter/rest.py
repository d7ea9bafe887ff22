"""The REST adapter: TF Serving's REST API (``/v1/models/...``) forwarded to the model server's REST port.

``POST /v1/models/{name}:predict|:classify|:regress`` (no version, no label) is rewritten to
``/v1/models/{name}/labels/{stable|canary}:...`` as the routing core decides; every other request (a version or label
named, status and metadata GETs, a malformed path) goes through unchanged, so TF Serving answers bad input with its
own error shapes and codes. The router's own answers (model server unreachable, a body it cannot read, an HTTP
request it cannot parse) use the same ``{"error": "..."}`` shape. ``GET /metrics`` is the router's Prometheus endpoint.

The hop is an asyncio protocol over httptools, not a web framework: a request's bytes are parsed, the path is
rewritten when the router picks the label, and the request leaves in one write on a persistent connection
(``upstream.UpstreamPool``); the answer streams back as it arrives with the served version's headers added, and is
counted when it ends. No task, no request object, no handler chain per request. Each client connection answers its
requests in order (HTTP/1.1 pipelining is honoured, one request at a time). Bounds on clients: a request must arrive
within ``READ_SECONDS`` of its first byte (else 408), an idle keep-alive connection is closed after
``KEEP_ALIVE_SECONDS``, a body larger than ``max_body_bytes`` is refused without reading it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import deque
from http import HTTPStatus
from typing import cast
from urllib.parse import unquote

import grpc
import httptools

from croupier.runtime.modelrouter.errors import RouterError, body_rejected, code_of_http_status
from croupier.runtime.modelrouter.listen import listen
from croupier.runtime.modelrouter.routing import NONE, PIN_HEADER, Route, pinned_version
from croupier.runtime.modelrouter.service import RouterService
from croupier.runtime.modelrouter.upstream import Upstream, UpstreamPool

# TF Serving's inference path (http_rest_api_handler.cc), versions as digits, a label not containing / or :.
PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
VERSION_HEADER = PIN_HEADER
LABEL_HEADER = "x-croupier-model-label"
METRICS_PATH = "/metrics"
KEEP_ALIVE_SECONDS = 75.0  # as aiohttp's server and most proxies
READ_SECONDS = 60.0  # from a request's first byte to its last
SWEEP_SECONDS = 1.0  # how often deadlines are checked (one timer for all connections, none per request)
_FLUSH_BYTES = 64 * 1024  # an answer's bytes are written when this many wait (small answers leave in one write)
_METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_JSON = b"application/json"


def route_headers(route: Route) -> dict[str, str]:
    headers = {}
    if route.version.isdigit():
        headers[VERSION_HEADER] = route.version
    if route.label != NONE:
        headers[LABEL_HEADER] = route.label
    return headers


def _route_header_bytes(route: Route) -> bytes:
    return b"".join(f"{name}: {value}\r\n".encode() for name, value in route_headers(route).items())


_STATUS_LINES: dict[int, bytes] = {}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = ""
        line = _STATUS_LINES[status] = f"HTTP/1.1 {status} {phrase}\r\n".encode()
    return line


def error_body(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-connection", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length",
    }
)  # fmt: skip
"""Headers that belong to one connection (RFC 9110, 7.6.1) or that the router writes itself: never passed on."""


def _tokens(value: bytes) -> frozenset[bytes]:
    return frozenset(token.strip().lower() for token in value.split(b",") if token.strip())


class _Request:
    """One request as read from the client."""

    __slots__ = (
        "body",
        "content_type",
        "dropped",
        "expect_continue",
        "head_only",
        "http11",
        "keep_alive",
        "length",
        "method",
        "passed",
        "pin",
        "size",
        "unit",
        "url",
    )

    def __init__(self) -> None:
        self.url = b""
        self.method = b""
        self.body: list[bytes] = []
        self.size = 0
        self.length: int | None = None
        self.content_type: bytes | None = None
        self.unit: bytes | None = None
        self.pin: bytes | None = None
        self.passed: list[bytes] = []  # the caller's other end-to-end headers, as "Name: value\r\n"
        self.dropped: frozenset[bytes] = frozenset()  # header names the Connection header made hop-by-hop
        self.expect_continue = False
        self.keep_alive = True
        self.http11 = True
        self.head_only = False


class _Reply:
    """The answer to one request: fed by the upstream connection (``upstream.Answer``), written to the client."""

    __slots__ = (
        "buffer",
        "chunked",
        "done",
        "http11",
        "keep_alive",
        "protocol",
        "route",
        "sent",
        "source",
        "start",
        "started",
        "status",
    )

    def __init__(self, protocol: RouterHttpProtocol, request: _Request, route: Route | None, start: float) -> None:
        self.protocol = protocol
        self.route = route
        self.start = start
        self.keep_alive = request.keep_alive
        self.http11 = request.http11
        self.source: asyncio.Transport | None = None  # the upstream connection the answer comes from
        self.chunked = False
        self.started = False  # the head went into the buffer
        self.sent = False  # bytes of the answer went to the client
        self.done = False
        self.status = 0
        self.buffer = bytearray()

    def head(
        self, status: int, content_type: bytes | None, length: int | None, source: asyncio.Transport | None = None
    ) -> None:
        self.source = source
        self.started = True
        self.status = status
        parts = [status_line(status)]
        if content_type is not None:
            parts += [b"Content-Type: ", content_type, b"\r\n"]
        if self.route is not None:
            parts.append(_route_header_bytes(self.route))
        if length is not None:
            parts.append(b"Content-Length: %d\r\n" % length)
        elif self.http11:
            self.chunked = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            self.keep_alive = False  # an HTTP/1.0 client: the end of the connection ends the answer
        if not self.keep_alive:
            parts.append(b"Connection: close\r\n")
        elif not self.http11:
            parts.append(b"Connection: keep-alive\r\n")  # an HTTP/1.0 client assumes a close otherwise
        parts.append(b"\r\n")
        self.buffer += b"".join(parts)

    def body(self, data: bytes) -> None:
        if self.chunked:
            self.buffer += b"%x\r\n" % len(data)
            self.buffer += data
            self.buffer += b"\r\n"
        else:
            self.buffer += data
        if len(self.buffer) >= _FLUSH_BYTES:
            self._flush()

    def end(self) -> None:
        if self.done:
            return
        self.done = True
        if self.chunked:
            self.buffer += b"0\r\n\r\n"
        self._flush()
        if self.route is not None:
            self.protocol.service.record(self.route, code_of_http_status(self.status), time.perf_counter() - self.start)
        self.protocol.finished(self)

    def fail(self, error: RouterError) -> None:
        if self.done:
            return
        if self.sent:  # part of the answer is out: the client can only learn of the failure by a close
            self.done = True
            if self.route is not None:
                self.protocol.service.record(self.route, error.code_name, time.perf_counter() - self.start)
            self.protocol.abort()
            return
        body = error_body(error.message)
        self.buffer.clear()  # a head (and body) held back, none of it sent: the error answer replaces it
        self.chunked = False
        self.head(error.http_status, _JSON, len(body))
        self.buffer += body
        self.status = error.http_status
        self.done = True
        self._flush()
        if self.route is not None:
            self.protocol.service.record(self.route, error.code_name, time.perf_counter() - self.start)
        self.protocol.finished(self)

    def _flush(self) -> None:
        if self.buffer:
            self.sent = True
            self.protocol.write(bytes(self.buffer))
            self.buffer.clear()


class RouterHttpProtocol(asyncio.Protocol):
    """One client connection of the REST adapter."""

    def __init__(self, router: RestRouter) -> None:
        self.router = router
        self.service = router.service
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.request: _Request | None = None  # being read
        self.pending: deque[_Request] = deque()  # read, waiting for the answer before them
        self.reply: _Reply | None = None  # being answered
        self.closing = False
        self.reading_since: float | None = None
        self.idle_since: float | None = None

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.idle_since = self.loop.time()
        self.router.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.router.connections.discard(self)
        self.pending.clear()
        reply = self.reply
        if reply is not None and reply.source is not None and not reply.done:
            reply.source.resume_reading()  # a paused answer runs to its end (and is dropped): its connection is reused

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrade is not supported")
        except httptools.HttpParserError as error:
            detail = str(error).rstrip(".") or "invalid HTTP request"
            self._refuse(400, f"malformed HTTP request: {detail}")

    def pause_writing(self) -> None:  # the client reads slower than the model server answers
        if self.reply is not None and self.reply.source is not None:
            self.reply.source.pause_reading()

    def resume_writing(self) -> None:
        if self.reply is not None and self.reply.source is not None:
            self.reply.source.resume_reading()

    # ------------------------------------------------------------------ httptools callbacks
    def on_message_begin(self) -> None:
        self.request = _Request()
        self.reading_since = self.loop.time()
        self.idle_since = None

    def on_url(self, url: bytes) -> None:
        if self.request is not None:
            self.request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request
        if request is None:
            return
        lowered = name.lower()
        if lowered == b"content-type":
            request.content_type = value
        elif lowered == b"content-length":
            request.length = int(value)  # the parser accepted it: digits
        elif lowered == self.router.unit_header:
            request.unit = value
        elif lowered == b"x-croupier-model-version":
            request.pin = value
        elif lowered == b"expect":
            request.expect_continue = value.lower() == b"100-continue"
        elif lowered == b"connection":
            # Headers the Connection header names are hop-by-hop too (RFC 9110, 7.6.1): not passed on.
            request.passed = [h for h in request.passed if h.split(b":", 1)[0].lower() not in _tokens(value)]
            request.dropped |= _tokens(value)
        elif lowered not in HOP_BY_HOP and lowered not in request.dropped:
            request.passed.append(b"%s: %s\r\n" % (name, value))

    def on_headers_complete(self) -> None:
        request = self.request
        if request is None or self.closing:
            return
        parser = self.parser
        request.method = parser.get_method()
        request.head_only = request.method == b"HEAD"
        request.http11 = parser.get_http_version() == "1.1"
        request.keep_alive = parser.should_keep_alive()
        limit = self.router.max_body_bytes
        if request.length is not None and request.length > limit:
            self._reject_body(request, f"the body exceeds {limit} bytes")
            return
        if request.expect_continue and self.reply is None and not self.pending and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, data: bytes) -> None:
        request = self.request
        if request is None or self.closing:
            return
        request.size += len(data)
        if request.size > self.router.max_body_bytes:
            self._reject_body(request, f"the body exceeds {self.router.max_body_bytes} bytes")
            return
        request.body.append(data)

    def on_message_complete(self) -> None:
        request = self.request
        if request is None or self.closing:
            return
        self.request = None
        self.reading_since = None
        if self.reply is None and not self.pending:
            self._answer(request)
            return
        self.pending.append(request)
        if self.transport is not None and len(self.pending) > 1:
            self.transport.pause_reading()  # a pipelining client waits until we catch up

    # ------------------------------------------------------------------ answering
    def _answer(self, request: _Request) -> None:
        start = time.perf_counter()
        router = self.router
        url = request.url
        if not url.startswith(b"/"):  # absolute form (a proxy request) or '*': forward the origin form
            parsed = httptools.parse_url(url)
            url = (parsed.path or b"/") + (b"?" + parsed.query if parsed.query else b"")
        raw_path, question, query = url.partition(b"?")
        path = raw_path.decode("utf-8", "surrogateescape")
        method = request.method
        if method == b"GET" and path == METRICS_PATH:
            self._write_answer(request, 200, _METRICS_TYPE, self.service.metrics.exposition())
            return
        route: Route | None = None
        if method == b"POST" and (match := PREDICTION_PATH.fullmatch(path)) is not None:
            try:
                route, rewritten = router.plan(match, request)
            except RouterError as error:
                self._write_answer(request, error.http_status, _JSON, error_body(error.message))
                return
            if rewritten is not None:
                raw_path = rewritten.encode("utf-8", "surrogateescape")
        body = b"".join(request.body) if len(request.body) != 1 else request.body[0]
        head = [
            method,
            b" ",
            router.upstream.prefix,
            raw_path,
            question,
            query,
            b" HTTP/1.1\r\nHost: ",
            router.upstream.host_header,
            b"\r\nContent-Length: %d\r\n" % len(body),
        ]
        if request.content_type is not None:
            head += [b"Content-Type: ", request.content_type, b"\r\n"]
        head += request.passed
        head.append(b"\r\n")
        head.append(body)
        reply = _Reply(self, request, route, start)
        self.reply = reply
        router.pool.request(b"".join(head), reply, head_only=request.head_only)

    def _write_answer(self, request: _Request, status: int, content_type: bytes, body: bytes) -> None:
        reply = _Reply(self, request, None, 0.0)
        self.reply = reply
        reply.head(status, content_type, len(body))
        reply.buffer += body
        reply.done = True
        reply._flush()
        self.finished(reply)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(data)

    def finished(self, reply: _Reply) -> None:
        """The answer ``reply`` is out: close, or take the next request."""
        if reply is not self.reply:
            return
        self.reply = None
        if self.closing or self.transport is None:
            return
        if not reply.keep_alive:
            self.closing = True
            self.transport.close()
            return
        if self.pending:
            request = self.pending.popleft()
            if len(self.pending) <= 1:
                self.transport.resume_reading()
            self._answer(request)
            return
        if self.request is None:
            self.idle_since = self.loop.time()

    def abort(self) -> None:
        """Close at once (an answer broke off halfway)."""
        self.reply = None
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def _reject_body(self, request: _Request, reason: str) -> None:
        """A body over the limit: answer 429 (TF Serving's RESOURCE_EXHAUSTED) without reading it, counted when the
        path is a routed one, and close: the rest of the body is not read."""
        error = body_rejected(413, reason)
        route: Route | None = None
        path = request.url.partition(b"?")[0].decode("utf-8", "surrogateescape")
        if request.method == b"POST" and (match := PREDICTION_PATH.fullmatch(path)) is not None:
            with contextlib.suppress(RouterError):
                route, _ = self.router.plan(match, request)
        if route is not None:
            self.service.record(route, error.code_name, 0.0)
        self._refuse(error.http_status, error.message, route=route)

    def _refuse(self, status: int, message: str, *, route: Route | None = None) -> None:
        """Answer the request being read with ``status`` and close (nothing more of it will be read)."""
        self.request = None
        self.reading_since = None
        if self.transport is None or self.closing:
            return
        self.closing = True
        if self.reply is None and not self.pending:  # nothing else is being answered on this connection
            body = error_body(message)
            headers = _route_header_bytes(route) if route is not None else b""
            self.transport.write(
                status_line(status)
                + b"Content-Type: application/json\r\n"
                + headers
                + b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
                + body
            )
        self.transport.close()

    # ------------------------------------------------------------------ deadlines
    def sweep(self, now: float) -> None:
        if self.closing or self.transport is None:
            return
        if self.reading_since is not None and now - self.reading_since > READ_SECONDS:
            self._refuse(408, f"the request did not arrive within {READ_SECONDS:g} s")
        elif self.idle_since is not None and now - self.idle_since > KEEP_ALIVE_SECONDS:
            self.closing = True
            self.transport.close()


class RestRouter:
    def __init__(
        self,
        service: RouterService,
        upstream: str,
        *,
        unit_header: str,
        timeout_seconds: float,
        max_body_bytes: int,
        max_connections: int = 256,
    ) -> None:
        self.service = service
        self.upstream = Upstream(upstream)
        self.unit_header = unit_header.lower().encode()
        self.timeout = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.pool = UpstreamPool(self.upstream, timeout_seconds=timeout_seconds, max_connections=max_connections)
        self.connections: set[RouterHttpProtocol] = set()
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.Task[None] | None = None

    def plan(self, match: re.Match[str], request: _Request) -> tuple[Route, str | None]:
        """The route of an inference request and its path for the model server (None: unchanged). Raises
        RouterError for a bad pin header."""
        version = int(match.group(2)) if match.group(2) else None
        label = unquote(match.group(3)) if match.group(3) else None
        pin = None
        if version is None and label is None and request.pin is not None:
            try:
                pin = pinned_version(request.pin.decode("latin-1"))
            except ValueError as error:
                raise RouterError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        unit = request.unit.decode("utf-8", "replace") if request.unit is not None else None
        route = self.service.route(unquote(match.group(1)), version if pin is None else pin, label, unit)
        if pin is not None:
            return route, f"/v1/models/{match.group(1)}/versions/{pin}:{match.group(4)}"
        if route.rewrite:
            return route, f"/v1/models/{match.group(1)}/labels/{route.label}:{match.group(4)}"
        return route, None

    async def start(self, host: str, port: int) -> int:
        self._server, bound = await listen(lambda: RouterHttpProtocol(self), host, port)
        self._sweeper = asyncio.get_running_loop().create_task(self._sweep())
        return bound

    async def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            now = loop.time()
            for connection in list(self.connections):
                connection.sweep(now)
            self.pool.sweep(now)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
        self.pool.close()
        if self._server is not None:
            await self._server.wait_closed()
