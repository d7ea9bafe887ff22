"""The gRPC adapter: TF Serving's PredictionService and ModelService.GetModelStatus, relayed as HTTP/2 frames.

Predict, Classify and Regress whose ``model_spec`` names no version and no label get ``version_label`` set by the
routing core (only ``model_spec`` is decoded, the rest of the message is written back as received); GetModelMetadata
and GetModelStatus go through unchanged; any other method is UNIMPLEMENTED. The served version and label go back as
trailing metadata (``x-croupier-model-version``, ``x-croupier-model-label``). The caller's metadata (an
``authorization`` header included) and deadline (``grpc-timeout``, capped by the router's own limit) are passed on;
the model server's answer, its codes, messages and metadata reach the caller as they are; a model server that cannot
be reached is UNAVAILABLE with a message that says so, a deadline that passes is DEADLINE_EXCEEDED.

No gRPC library runs here: the relay is two asyncio protocols over the ``h2`` state machine (the caller's connection
and one connection to the model server), because a call object per side in grpc.aio cost the router about 1.3 ms of
CPU per call (docs/benchmarks/router.md). A call is read whole (one message: streaming is not offered), forwarded in
one write, and answered in one write when the model server's answer has ended. Flow control is honoured both ways, so
messages of any size up to ``max_body_bytes`` pass."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, cast

import grpc
import structlog
from google.protobuf.message import DecodeError
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    RequestReceived,
    ResponseReceived,
    StreamEnded,
    StreamReset,
    TrailersReceived,
    WindowUpdated,
)
from h2.exceptions import H2Error, ProtocolError
from h2.settings import SettingCodes

from croupier.runtime.modelrouter.errors import RouterError, upstream_deadline, upstream_unavailable
from croupier.runtime.modelrouter.grpc_frames import (
    CODE_NAMES,
    FrameError,
    decompress,
    encode_message,
    format_timeout,
    frame,
    parse_timeout,
    single_message,
    status_of_http,
)
from croupier.runtime.modelrouter.listen import listen
from croupier.runtime.modelrouter.model_spec import RequestHead
from croupier.runtime.modelrouter.rest import route_headers
from croupier.runtime.modelrouter.routing import PIN_HEADER, Route, pinned_version
from croupier.runtime.modelrouter.service import RouterService

log = structlog.get_logger("croupier.runtime.modelrouter")

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
ROUTED = frozenset({"Predict", "Classify", "Regress"})
PASSED = {
    PREDICTION_SERVICE: ("Predict", "Classify", "Regress", "GetModelMetadata"),
    MODEL_SERVICE: ("GetModelStatus",),
}
METHODS: dict[bytes, bool] = {
    f"/{service}/{method}".encode(): method in ROUTED for service, methods in PASSED.items() for method in methods
}
"""Path → whether the routing core picks the label."""

WINDOW = 1 << 24  # the receive window the router grants (per stream and per connection): 16 MiB in flight
MAX_STREAMS = 1024  # concurrent calls per client connection
DEADLINE_SLACK = 0.05  # a call the caller cancels this close to its deadline is counted as DEADLINE_EXCEEDED
_SKIPPED = frozenset({b"te", b"connection", b"keep-alive", b"host", b"grpc-timeout", b"content-length"})
_PIN = PIN_HEADER.encode()
_GRPC = b"application/grpc"
_SERVER_CONFIG = H2Configuration(
    client_side=False, header_encoding=None, validate_outbound_headers=False, normalize_outbound_headers=False
)
_CLIENT_CONFIG = H2Configuration(  # the model server's headers are trusted: not checked again
    client_side=True,
    header_encoding=None,
    validate_outbound_headers=False,
    normalize_outbound_headers=False,
    validate_inbound_headers=False,
    normalize_inbound_headers=False,
)


def _settings(connection: H2Connection) -> None:
    connection.initiate_connection()
    connection.update_settings(
        {SettingCodes.INITIAL_WINDOW_SIZE: WINDOW, SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS}
    )
    connection.increment_flow_control_window(WINDOW - 65535)


def _status(code: grpc.StatusCode) -> bytes:
    return b"%d" % code.value[0]


class _Outgoing:
    """Bytes of one stream waiting for flow-control window, then (optionally) trailers that end the stream."""

    __slots__ = ("data", "offset", "trailers")

    def __init__(self, data: bytes, trailers: list[tuple[bytes, bytes]] | None) -> None:
        self.data = memoryview(data)
        self.offset = 0
        self.trailers = trailers


class _Batch:
    """Connections with frames to write, written once at the end of the callback that produced them: a call costs
    one write to the model server and one back to the caller (a PING or WINDOW_UPDATE rides along), since on loopback
    each write is a system call that also wakes the reader."""

    __slots__ = ("peers",)

    def __init__(self) -> None:
        self.peers: list[_H2Peer] = []

    def flush(self) -> None:
        while self.peers:
            peers, self.peers = self.peers, []
            for peer in peers:
                peer.queued = False
                peer.flush()


class _H2Peer(asyncio.Protocol):
    """What both ends share: an h2 connection over a transport, sends held back by flow control until the peer
    grants window, frames written in batches (``_Batch``)."""

    def __init__(self, config: H2Configuration, batch: _Batch) -> None:
        self.h2 = H2Connection(config=config)
        self.batch = batch
        self.queued = False
        self.transport: asyncio.Transport | None = None
        self.outgoing: dict[int, _Outgoing] = {}
        self.closed = False

    def touch(self) -> None:
        """Frames are waiting: write them when the batch is flushed."""
        if not self.queued:
            self.queued = True
            self.batch.peers.append(self)

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.closed:
            self.transport.write(data)

    def send_body(self, stream_id: int, data: bytes, trailers: list[tuple[bytes, bytes]] | None) -> None:
        """Send ``data`` and end the stream (with ``trailers`` when given), as the peer's window allows."""
        outgoing = _Outgoing(data, trailers)
        if not self._pump(stream_id, outgoing):
            self.outgoing[stream_id] = outgoing

    def _pump(self, stream_id: int, outgoing: _Outgoing) -> bool:
        """Send what the window allows; True when the stream has been ended."""
        h2, data = self.h2, outgoing.data
        size = len(data)
        while outgoing.offset < size:
            room = min(h2.local_flow_control_window(stream_id), h2.max_outbound_frame_size, size - outgoing.offset)
            if room <= 0:
                return False
            end = outgoing.offset + room
            h2.send_data(stream_id, data[outgoing.offset : end], end_stream=end == size and outgoing.trailers is None)
            outgoing.offset = end
        if outgoing.trailers is not None:
            h2.send_headers(stream_id, outgoing.trailers, end_stream=True)
        elif size == 0:
            h2.send_data(stream_id, b"", end_stream=True)
        return True

    def resume_sends(self) -> None:
        for stream_id, outgoing in list(self.outgoing.items()):
            try:
                done = self._pump(stream_id, outgoing)
            except H2Error:  # the stream was closed meanwhile
                done = True
            if done:
                del self.outgoing[stream_id]

    def drop(self, stream_id: int) -> None:
        self.outgoing.pop(stream_id, None)


class _Call:
    """One client call, from its headers to the end of its answer."""

    __slots__ = (
        "answered",
        "body",
        "client",
        "deadline",
        "encoding",
        "forward",
        "path",
        "pin",
        "response",
        "response_body",
        "route",
        "routed",
        "start",
        "stream_id",
        "timeout",
        "timer",
        "trailers",
        "unit",
        "upstream",
        "upstream_id",
    )

    def __init__(self, client: GrpcClientProtocol, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.start = time.perf_counter()
        self.path = b""
        self.routed = False
        self.body = bytearray()
        self.forward: list[tuple[bytes, bytes]] = []
        self.encoding: bytes | None = None
        self.unit: bytes | None = None
        self.pin: bytes | None = None
        self.timeout: float | None = None
        self.deadline = 0.0  # loop time
        self.timer: asyncio.TimerHandle | None = None
        self.route: Route | None = None
        self.answered = False
        self.upstream: UpstreamProtocol | None = None
        self.upstream_id = 0
        self.response: list[tuple[bytes, bytes]] | None = None
        self.response_body: list[bytes] = []
        self.trailers: list[tuple[bytes, bytes]] | None = None


class GrpcClientProtocol(_H2Peer):
    """One caller's connection."""

    def __init__(self, relay: GrpcRelay) -> None:
        super().__init__(_SERVER_CONFIG, relay.batch)
        self.relay = relay
        self.calls: dict[int, _Call] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.relay.connections.add(self)
        _settings(self.h2)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.relay.connections.discard(self)
        for call in list(self.calls.values()):
            self.relay.cancel(call, "the caller closed the connection")
        self.calls.clear()
        self.batch.flush()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as error:
            log.info("grpc caller broke the protocol", error=str(error))
            with contextlib.suppress(H2Error):
                self.h2.close_connection(ErrorCodes.PROTOCOL_ERROR)
            self.flush()
            self.close()
            return
        relay = self.relay
        for event in events:
            if isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                call = self.calls.get(event.stream_id)
                if call is not None and not call.answered:
                    call.body += event.data
                    if len(call.body) > relay.max_body_bytes:
                        relay.refuse(
                            call,
                            grpc.StatusCode.RESOURCE_EXHAUSTED,
                            f"the request exceeds {relay.max_body_bytes} bytes",
                        )
            elif isinstance(event, RequestReceived):
                call = _Call(self, event.stream_id)
                self.calls[event.stream_id] = call
                relay.begin(call, event.headers)
            elif isinstance(event, StreamEnded):
                call = self.calls.get(event.stream_id)
                if call is not None and not call.answered:
                    relay.dispatch(call)
            elif isinstance(event, StreamReset):
                self.drop(event.stream_id)
                call = self.calls.pop(event.stream_id, None)
                if call is not None:
                    relay.cancel(call, "the caller cancelled the call")
            elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
                self.resume_sends()
            elif isinstance(event, ConnectionTerminated):
                self.flush()
                self.close()
                break
        self.touch()
        self.batch.flush()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()
        self.closed = True

    def answer(
        self, call: _Call, headers: list[tuple[bytes, bytes]], body: bytes | None, trailers: list[tuple[bytes, bytes]]
    ) -> None:
        """Send a whole answer (``body`` None: trailers-only) and forget the call."""
        self.calls.pop(call.stream_id, None)
        if self.closed:
            return
        try:
            if body is None:
                self.h2.send_headers(call.stream_id, headers + trailers, end_stream=True)
            else:
                self.h2.send_headers(call.stream_id, headers)
                self.send_body(call.stream_id, body, trailers)
        except H2Error:  # the caller reset the stream meanwhile
            self.drop(call.stream_id)
        self.touch()


class UpstreamProtocol(_H2Peer):
    """The connection to the model server."""

    def __init__(self, upstream: GrpcUpstream) -> None:
        super().__init__(_CLIENT_CONFIG, upstream.relay.batch)
        self.upstream = upstream
        self.calls: dict[int, _Call] = {}
        self.draining = False  # a GOAWAY came: no new streams

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports have asyncio.Transport's methods without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        _settings(self.h2)
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.draining = True
        self.upstream.forget(self)
        detail = f"the connection closed ({type(exc).__name__}: {exc})" if exc else "the connection closed"
        for call in list(self.calls.values()):
            self.upstream.relay.fail(call, upstream_unavailable(self.upstream.target, detail))
        self.calls.clear()
        self.batch.flush()

    @property
    def full(self) -> bool:
        return self.h2.open_outbound_streams >= self.h2.remote_settings.max_concurrent_streams

    def send(self, call: _Call, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        stream_id = self.h2.get_next_available_stream_id()
        call.upstream = self
        call.upstream_id = stream_id
        self.calls[stream_id] = call
        self.h2.send_headers(stream_id, headers)
        self.send_body(stream_id, body, None)
        self.touch()

    def cancel(self, call: _Call) -> None:
        if self.calls.pop(call.upstream_id, None) is None or self.closed:
            return
        self.drop(call.upstream_id)
        with contextlib.suppress(H2Error):
            self.h2.reset_stream(call.upstream_id, ErrorCodes.CANCEL)
        self.touch()

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            events = self.h2.receive_data(data)
        except ProtocolError as error:
            log.warning("the model server broke the HTTP/2 protocol", error=str(error))
            if self.transport is not None:
                self.transport.close()  # connection_lost fails the calls
            return
        relay = self.upstream.relay
        for event in events:
            if isinstance(event, DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                call = self.calls.get(event.stream_id)
                if call is not None:
                    call.response_body.append(event.data)
            elif isinstance(event, ResponseReceived):
                call = self.calls.get(event.stream_id)
                if call is not None:
                    call.response = event.headers
            elif isinstance(event, TrailersReceived):
                call = self.calls.get(event.stream_id)
                if call is not None:
                    call.trailers = event.headers
            elif isinstance(event, StreamEnded):
                call = self.calls.pop(event.stream_id, None)
                if call is not None:
                    relay.finish(call)
            elif isinstance(event, StreamReset):
                self.drop(event.stream_id)
                call = self.calls.pop(event.stream_id, None)
                if call is not None:
                    relay.fail(call, _reset_error(self.upstream.target, event.error_code))
            elif isinstance(event, WindowUpdated | RemoteSettingsChanged):
                self.resume_sends()
            elif isinstance(event, ConnectionTerminated):
                self.draining = True
                self.upstream.forget(self)
                last = event.last_stream_id or 0
                for stream_id in [s for s in self.calls if s > last]:  # not processed: sent again on a new connection
                    call = self.calls.pop(stream_id)
                    call.upstream = None
                    self.upstream.submit(call)
                if not self.calls and self.transport is not None:
                    self.transport.close()
        if self.upstream.waiting and self.upstream.connection is self:
            self.upstream.pump()
        self.touch()
        self.batch.flush()
        if self.draining and not self.calls and self.transport is not None and not self.closed:
            self.transport.close()


def _reset_error(target: str, code: int) -> RouterError:
    if code == ErrorCodes.REFUSED_STREAM:
        return upstream_unavailable(target, "the model server refused the stream")
    if code == ErrorCodes.CANCEL:
        return RouterError(grpc.StatusCode.CANCELLED, f"Model server at {target} cancelled the call")
    return RouterError(grpc.StatusCode.INTERNAL, f"Model server at {target} reset the call (HTTP/2 error {code})")


class GrpcUpstream:
    """The model server's gRPC port: one HTTP/2 connection, opened on first use and again after it closed. Calls
    wait in order while it connects or while the server's stream limit is reached."""

    def __init__(self, relay: GrpcRelay, target: str) -> None:
        self.relay = relay
        self.target = target
        self.host, self.port = parse_target(target)
        self.authority = target.removeprefix("dns:///").encode()
        self.connection: UpstreamProtocol | None = None
        self.connecting: asyncio.Task[None] | None = None
        self.waiting: list[_Call] = []
        self.closing = False

    def submit(self, call: _Call) -> None:
        if self.closing:
            self.relay.fail(call, upstream_unavailable(self.target, "the router is shutting down"))
            return
        connection = self.connection
        if connection is not None and not connection.draining and not connection.full and not self.waiting:
            self._send(connection, call)
            return
        self.waiting.append(call)
        if (connection is None or connection.draining) and self.connecting is None:
            self.connecting = asyncio.get_running_loop().create_task(self._connect())

    def _send(self, connection: UpstreamProtocol, call: _Call) -> None:
        headers = [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", call.path),
            (b":authority", self.authority),
            (b"te", b"trailers"),
        ]
        remaining = call.deadline - asyncio.get_running_loop().time()
        headers.append((b"grpc-timeout", format_timeout(remaining)))
        headers += call.forward
        connection.send(call, headers, bytes(call.body))

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, connection = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamProtocol(self), self.host, self.port),
                timeout=self.relay.timeout,
            )
        except (OSError, TimeoutError) as error:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            waiting, self.waiting = self.waiting, []
            for call in waiting:
                self.relay.fail(call, upstream_unavailable(self.target, detail))
            self.relay.batch.flush()
            return
        finally:
            self.connecting = None
        if self.closing:
            if connection.transport is not None:
                connection.transport.close()
            return
        self.connection = connection
        self.pump()
        self.relay.batch.flush()

    def pump(self) -> None:
        """Send waiting calls while the connection takes them."""
        connection = self.connection
        while self.waiting and connection is not None and not connection.draining and not connection.full:
            call = self.waiting.pop(0)
            if not call.answered:
                self._send(connection, call)

    def forget(self, connection: UpstreamProtocol) -> None:
        if self.connection is connection:
            self.connection = None
            if self.waiting and self.connecting is None and not self.closing:
                self.connecting = asyncio.get_running_loop().create_task(self._connect())

    def withdraw(self, call: _Call) -> None:
        if call.upstream is not None:
            call.upstream.cancel(call)
            if self.connection is not None:
                self.pump()
        elif call in self.waiting:
            self.waiting.remove(call)

    async def close(self) -> None:
        self.closing = True
        if self.connecting is not None:
            self.connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.connecting
        waiting, self.waiting = self.waiting, []
        for call in waiting:
            self.relay.fail(call, upstream_unavailable(self.target, "the router is shutting down"))
        self.relay.batch.flush()
        if self.connection is not None and self.connection.transport is not None:
            self.connection.transport.close()


def parse_target(target: str) -> tuple[str, int]:
    """``host:port`` (or ``dns:///host:port``, ``[v6]:port``) → (host, port). Raises ValueError naming the problem."""
    address = target.removeprefix("dns:///")
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"the model server's gRPC address must be host:port, got {target!r}")
    return host.strip("[]"), int(port)


class GrpcRelay:
    """The gRPC side of the router: callers' connections in, the model server's connection out."""

    def __init__(
        self,
        service: RouterService,
        upstream: str,
        *,
        unit_header: str,
        timeout_seconds: float,
        max_body_bytes: int,
    ) -> None:
        self.service = service
        self.unit_header = unit_header.lower().encode()
        self.timeout = timeout_seconds
        self.max_body_bytes = max_body_bytes
        self.batch = _Batch()
        self.upstream = GrpcUpstream(self, upstream)
        self.connections: set[GrpcClientProtocol] = set()
        self._server: asyncio.Server | None = None
        self._trailers: dict[Route, list[tuple[bytes, bytes]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self, host: str, port: int) -> int:
        self._loop = asyncio.get_running_loop()
        self._server, bound = await listen(lambda: GrpcClientProtocol(self), host, port)
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            with contextlib.suppress(H2Error):
                connection.h2.close_connection()
            connection.flush()
            connection.close()
        await self.upstream.close()
        if self._server is not None:
            await self._server.wait_closed()

    # ------------------------------------------------------------------ a call's life
    def begin(self, call: _Call, headers: list[tuple[bytes, bytes]]) -> None:
        """A call's headers: check them, keep what is passed on, arm the deadline."""
        method = b""
        content_type = b""
        forward = call.forward
        for name, value in headers:
            if name[:1] == b":":
                if name == b":path":
                    call.path = value
                elif name == b":method":
                    method = value
                continue
            if name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                try:
                    call.timeout = parse_timeout(value)
                except ValueError as error:
                    self.refuse(call, grpc.StatusCode.INVALID_ARGUMENT, str(error))
                    return
            elif name == self.unit_header:
                if call.unit is None:
                    call.unit = value
            elif name == _PIN:
                if call.pin is None:
                    call.pin = value
                continue  # the router resolves the pin; the model server never sees it
            elif name == b"grpc-encoding":
                call.encoding = value
            if name not in _SKIPPED:
                forward.append((name, value))
        if method != b"POST":
            self._http_refusal(call, b"405")
            return
        if not content_type.startswith(_GRPC):
            self._http_refusal(call, b"415")
            return
        routed = METHODS.get(call.path)
        if routed is None:
            path = call.path.decode("latin-1")
            self.refuse(
                call, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {path} (the router offers {_offered()})"
            )
            return
        call.routed = routed
        loop = self._loop or asyncio.get_running_loop()
        seconds = self.timeout if call.timeout is None else min(self.timeout, call.timeout)
        call.deadline = loop.time() + seconds
        call.timer = loop.call_at(call.deadline, self._expire, call)

    def dispatch(self, call: _Call) -> None:
        """The request has ended: route it and send it on."""
        method = call.path.decode("latin-1")
        try:
            message = single_message(bytes(call.body), method)
            if call.routed:
                self._route(call, message)
        except FrameError as error:
            self.refuse(call, error.code, error.message)
            return
        except RouterError as error:
            self.refuse(call, error.code, error.message)
            return
        self.upstream.submit(call)

    def _route(self, call: _Call, message: Any) -> None:
        """Decide the route; rewrite ``model_spec`` in ``call.body`` when the router picks the version or label."""
        payload = decompress(message, call.encoding, call.path.decode("latin-1"))
        try:
            head = RequestHead.FromString(payload)
        except DecodeError:
            return  # the model server answers the malformed request itself
        spec = head.model_spec
        choice = spec.WhichOneof("version_choice")
        version = spec.version.value if choice == "version" else None
        label = spec.version_label if choice == "version_label" else None
        pin = None
        if choice is None and call.pin is not None:
            try:
                pin = pinned_version(call.pin.decode("latin-1"))
            except ValueError as error:
                raise RouterError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        unit = call.unit.decode("utf-8", "replace") if call.unit is not None else None
        route = call.route = self.service.route(spec.name, version if pin is None else pin, label, unit)
        if pin is not None:
            spec.version.value = pin
        elif route.rewrite:
            spec.version_label = route.label
        else:
            return
        call.body = bytearray(frame(head.SerializeToString()))  # sent uncompressed (flag 0)

    def finish(self, call: _Call) -> None:
        """The model server's answer has ended: pass it on with the route's trailers."""
        if call.answered:
            return
        headers = call.response or []
        status = b""
        passed: list[tuple[bytes, bytes]] = [(b":status", b"200")]
        grpc_status: bytes | None = None
        for name, value in headers:
            if name == b":status":
                status = value
            elif name[:1] != b":":
                passed.append((name, value))  # grpc-status among them in a trailers-only answer
                if name == b"grpc-status":
                    grpc_status = value
        trailers = list(call.trailers or ())
        for name, value in trailers:
            if name == b"grpc-status":
                grpc_status = value
        if status != b"200" or grpc_status is None:
            code = status_of_http(int(status)) if status.isdigit() and status != b"200" else grpc.StatusCode.UNKNOWN
            why = f"HTTP status {status.decode('latin-1')}" if status != b"200" else "no grpc-status"
            self.fail(call, RouterError(code, f"Model server at {self.upstream.target} answered with {why}"))
            return
        self._end(call)
        if call.route is not None:
            trailers += self._route_trailers(call.route)
        body = b"".join(call.response_body) if call.response_body else b""
        if call.trailers is None:  # trailers-only: grpc-status came with the headers
            call.client.answer(call, passed + trailers, None, [])
        else:
            call.client.answer(call, passed, body, trailers)
        if call.route is not None:
            self.service.record(
                call.route, CODE_NAMES.get(int(grpc_status), "UNKNOWN"), time.perf_counter() - call.start
            )

    def fail(self, call: _Call, error: RouterError) -> None:
        """Answer with the router's own error (counted when the call was routed)."""
        self.refuse(call, error.code, error.message)

    def refuse(self, call: _Call, code: grpc.StatusCode, message: str) -> None:
        if call.answered:
            return
        self._end(call)
        self.upstream.withdraw(call)
        trailers = [
            (b":status", b"200"),
            (b"content-type", _GRPC),
            (b"grpc-status", _status(code)),
            (b"grpc-message", encode_message(message)),
        ]
        if call.route is not None:
            trailers += self._route_trailers(call.route)
        call.client.answer(call, trailers, None, [])
        if call.route is not None:
            self.service.record(call.route, code.name, time.perf_counter() - call.start)

    def cancel(self, call: _Call, reason: str) -> None:
        """The caller went away: stop the model server's work, count the call as CANCELLED."""
        if call.answered:
            return
        self._end(call)
        self.upstream.withdraw(call)
        if call.route is not None:
            # A caller cancels at its deadline, give or take the hop's delay: that is a deadline exceeded.
            late = call.timeout is not None and asyncio.get_running_loop().time() >= call.deadline - DEADLINE_SLACK
            code = "DEADLINE_EXCEEDED" if late else "CANCELLED"
            self.service.record(call.route, code, time.perf_counter() - call.start)
        log.debug("grpc call cancelled", path=call.path.decode("latin-1"), reason=reason)

    def _expire(self, call: _Call) -> None:
        call.timer = None
        seconds = self.timeout if call.timeout is None else min(self.timeout, call.timeout)
        self.fail(call, upstream_deadline(self.upstream.target, seconds))
        self.batch.flush()

    def _end(self, call: _Call) -> None:
        call.answered = True
        call.body = bytearray()
        if call.timer is not None:
            call.timer.cancel()
            call.timer = None

    def _http_refusal(self, call: _Call, status: bytes) -> None:
        """Not a gRPC request (wrong method or content type): an HTTP status, as gRPC servers answer."""
        self._end(call)
        call.client.answer(call, [(b":status", status)], None, [])

    def _route_trailers(self, route: Route) -> list[tuple[bytes, bytes]]:
        trailers = self._trailers.get(route)
        if trailers is None:
            trailers = self._trailers[route] = [(k.encode(), v.encode()) for k, v in route_headers(route).items()]
        return trailers


def _offered() -> str:
    return ", ".join(path.decode() for path in METHODS)
