"""The hot route answered by the connection itself (`croupier.runtime.http.server.DirectCycle`), in process on a
recording transport: the same bytes as the app's ASGI answer through plain uvicorn, one write, every decision in its
loop turn's batch, and the app's own path for everything the direct path does not take."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from croupier.runtime.errors import CroupierError, InvalidField, PayloadTooLarge
from croupier.runtime.http.batching import DecideBatcher
from croupier.runtime.http.server import ConnectionLimits, DirectRoute, GuardedHttpToolsProtocol, guarded_protocol

from .test_http_server import Recording

GUARDED = guarded_protocol(ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=10, max_body_bytes=64))
TOKEN = b"Bearer s3cret"


def request(body: bytes, *extra: bytes, version: bytes = b"1.1") -> bytes:
    head = [b"POST /v1/decide HTTP/" + version, b"Host: runtime", b"Content-Length: " + str(len(body)).encode(), *extra]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def decide(body: bytes) -> bytes:
    if body == b"bad":
        raise InvalidField("bad body", field="context")
    if body == b"boom":
        raise RuntimeError("boom")
    return b'{"arm":"' + body.upper() + b'"}'


class DecideApp:
    """An ASGI app with a batched decide route, as the runtime's app has it: answered by the app through ASGI, or by
    the connection through `direct_route`, with the same answers and errors."""

    def __init__(self, *, token: bytes | None = None, max_body: int = 64) -> None:
        self.decided: list[bytes] = []
        self.asgi_calls = 0
        self.errors: list[BaseException] = []
        self.token = token

        def counted(body: bytes) -> bytes:
            self.decided.append(body)
            return decide(body)

        self.batcher = DecideBatcher(counted)
        self.direct_route = DirectRoute(
            path="/v1/decide",
            batcher=self.batcher,
            max_body=max_body,
            authorized=None if token is None else self.authorized,
            error=self.error,
        )

    def authorized(self, headers: list[tuple[bytes, bytes]]) -> bool:
        return (b"authorization", self.token) in headers

    def error(self, exc: BaseException) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self.errors.append(exc)
        error = exc if isinstance(exc, CroupierError) else CroupierError("internal error")
        payload = orjson.dumps(error.to_wire())
        return (
            error.status,
            [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
            payload,
        )

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.asgi_calls += 1
        if self.token is not None and not self.authorized(scope["headers"]):
            await send({"type": "http.response.start", "status": 401, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        chunks = b""
        while True:
            message = await receive()
            chunks += message.get("body", b"")
            if not message.get("more_body", False):
                break
        try:
            if len(chunks) > self.direct_route.max_body:
                raise PayloadTooLarge(f"the body exceeds {self.direct_route.max_body} bytes")
            status, headers, payload = 200, [(b"content-type", b"application/json")], await self.batcher.submit(chunks)
            headers.append((b"content-length", str(len(payload)).encode()))
        except Exception as exc:
            status, headers, payload = self.error(exc)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


async def serve(
    protocol: type[HttpToolsProtocol], app: DecideApp, *reads: bytes, proxy_headers: bool = False
) -> tuple[Recording, HttpToolsProtocol]:
    config = Config(app, loop="none", lifespan="off", access_log=False, log_level="critical", date_header=False)
    config.server_header = False
    config.proxy_headers = proxy_headers
    config.load()
    connection = protocol(config, ServerState(), {})
    transport = Recording()
    connection.connection_made(transport)
    for data in reads:  # each read once the answers to the ones before it are written
        connection.data_received(data)
        for _ in range(20):
            await asyncio.sleep(0)
    transport.closed_by_server = transport.closed
    connection.connection_lost(None)
    return transport, connection


def both(run: Callable[[Any], Any], *reads: bytes, **app: Any) -> tuple[Recording, DecideApp, Recording, DecideApp]:
    """The same reads served by plain uvicorn (the app's ASGI route) and by the runtime's protocol."""
    plain_app, guarded_app = DecideApp(**app), DecideApp(**app)
    plain, _ = run(serve(HttpToolsProtocol, plain_app, *reads))
    guarded, _ = run(serve(GUARDED, guarded_app, *reads))
    return plain, plain_app, guarded, guarded_app


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param((request(b"a"),), id="a decision"),
        pytest.param((request(b"bad"),), id="a refused body"),
        pytest.param((request(b"boom"),), id="an unexpected failure"),
        pytest.param((request(b"x" * 65),), id="a body over the limit"),
        pytest.param((request(b"abc")[:-2], b"bc"), id="a body in two reads"),
        pytest.param((request(b"a") + request(b"b") + request(b"bad"),), id="three pipelined requests"),
        pytest.param(
            (
                b"POST /v1/decide HTTP/1.1\r\nHost: r\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"1\r\na\r\n1\r\nb\r\n0\r\n\r\n",
            ),
            id="a chunked body",
        ),
    ],
)
def test_the_connection_answers_the_hot_route_with_the_apps_bytes(
    reads: tuple[bytes, ...], run: Callable[[Any], Any]
) -> None:
    plain, plain_app, guarded, guarded_app = both(run, *reads)
    assert b"".join(guarded.writes) == b"".join(plain.writes)
    assert plain.writes and guarded.closed_by_server == plain.closed_by_server
    assert guarded_app.decided == plain_app.decided  # the same decisions, in the same order
    assert [type(e) for e in guarded_app.errors] == [type(e) for e in plain_app.errors]
    assert guarded_app.asgi_calls < max(1, plain_app.asgi_calls)  # the first request never reached the app


def test_a_direct_answer_is_one_write_and_the_app_is_not_called(run: Callable[[Any], Any]) -> None:
    _, _, guarded, app = both(run, request(b"a") + request(b"b"), request(b"c"))
    assert (
        guarded.writes[0]
        == b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{"arm":"A"}'
    )
    assert len(guarded.writes) == 3
    assert app.decided == [b"a", b"b", b"c"]
    assert app.asgi_calls == 1  # the pipelined second request waited behind the first and took the app's route


@pytest.mark.parametrize(
    "reads",
    [
        pytest.param((request(b"a", version=b"1.0"),), id="HTTP/1.0"),
        pytest.param((request(b"a", b"Connection: close"),), id="connection close"),
        pytest.param((request(b"a", b"Expect: 100-continue"),), id="expect 100-continue"),
        pytest.param((request(b"a").replace(b"/v1/decide", b"/v1/decide?x=1"),), id="query string"),
    ],
)
def test_what_the_direct_path_does_not_take_goes_to_the_app(
    reads: tuple[bytes, ...], run: Callable[[Any], Any]
) -> None:
    plain, _, guarded, app = both(run, *reads)
    assert b"".join(guarded.writes) == b"".join(plain.writes)
    assert guarded.closed_by_server == plain.closed_by_server
    direct = b"?" in reads[0]  # a query string does not change the path: still answered directly
    assert app.asgi_calls == (0 if direct else 1)
    assert app.decided == [b"a"]


def test_with_authentication_only_an_authorized_request_is_answered_directly(run: Callable[[Any], Any]) -> None:
    reads = (request(b"a", b"Authorization: Bearer nope"), request(b"b", b"Authorization: " + TOKEN))
    plain, _, guarded, app = both(run, *reads, token=TOKEN)
    assert b"".join(guarded.writes) == b"".join(plain.writes)
    assert guarded.writes[0].startswith(b"HTTP/1.1 401 ")
    assert app.asgi_calls == 1 and app.decided == [b"b"]


def test_an_app_wrapped_by_uvicorns_middleware_is_always_called(run: Callable[[Any], Any]) -> None:
    app = DecideApp()
    transport, _ = run(serve(GUARDED, app, request(b"a"), proxy_headers=True))
    assert app.asgi_calls == 1 and app.decided == [b"a"]
    assert transport.writes and transport.writes[-1].endswith(b'{"arm":"A"}')


def test_a_client_gone_before_its_turn_is_not_decided(run: Callable[[Any], Any]) -> None:
    async def scenario() -> tuple[DecideApp, Recording]:
        app = DecideApp()
        config = Config(app, loop="none", lifespan="off", log_level="critical", date_header=False, proxy_headers=False)
        config.load()
        connection = GUARDED(config, ServerState(), {})
        transport = Recording()
        connection.connection_made(transport)
        connection.data_received(request(b"a"))
        connection.connection_lost(None)  # before the batch's loop turn
        await asyncio.sleep(0.01)
        return app, transport

    app, transport = run(scenario())
    assert app.decided == [] and transport.writes == []


def test_a_shutdown_during_a_request_answers_it_then_closes(run: Callable[[Any], Any]) -> None:
    async def scenario() -> tuple[DecideApp, Recording]:
        app = DecideApp()
        config = Config(app, loop="none", lifespan="off", log_level="critical", date_header=False, proxy_headers=False)
        config.load()
        connection = GUARDED(config, ServerState(), {})
        assert isinstance(connection, GuardedHttpToolsProtocol)
        transport = Recording()
        connection.connection_made(transport)
        connection.data_received(request(b"a"))
        connection.shutdown()  # uvicorn's graceful shutdown: the answer in progress is the last one
        assert not transport.closed
        await asyncio.sleep(0.01)
        return app, transport

    app, transport = run(scenario())
    assert app.decided == [b"a"]
    assert transport.writes == [
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\nconnection: close\r\n\r\n"
        b'{"arm":"A"}'
    ]
    assert transport.closed
