"""The runtime's decide route answered by its connection (`server.DirectCycle`) against the same app answered through
ASGI by plain uvicorn: the same status, headers and error bodies, every direct decision decided and logged once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from support.policies import CONTEXTUAL, served_policy
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from croupier.runtime.http.app import HttpApp
from croupier.runtime.http.server import ConnectionLimits, guarded_protocol
from croupier.runtime.store.sqlite import database_path

from .conftest import running

pytestmark = pytest.mark.integration

GUARDED = guarded_protocol(ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=10, max_body_bytes=4096))


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8000), "peername": ("127.0.0.1", 40000)}.get(name, default)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def request(body: bytes) -> bytes:
    return b"POST /v1/decide HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


async def serve(protocol: type[HttpToolsProtocol], app: HttpApp, data: bytes) -> tuple[bytes, bytes]:
    """The status line and headers, and the body, of the answer to `data`."""
    config = Config(app, loop="none", lifespan="off", log_level="critical", date_header=False, proxy_headers=False)
    config.server_header = False
    config.load()
    connection = protocol(config, ServerState(), {})
    transport = Recording()
    connection.connection_made(transport)
    connection.data_received(data)
    for _ in range(50):
        await asyncio.sleep(0)
        if transport.writes and b"\r\n\r\n" in b"".join(transport.writes):
            break
    connection.connection_lost(None)
    head, _, body = b"".join(transport.writes).partition(b"\r\n\r\n")
    return head, body


async def _not_taken(body: bytes) -> bytes:
    raise AssertionError("the app's decide route was called")


BODIES = [
    b'{"unitId":"u1","context":{"level":1,"spend":2}}',
    b'{"unitId":"u2","context":{"level":1,"spend":2},"candidates":["red"]}',
    b'{"context":{"level":1,"spend":2},"candidates":["pink"]}',  # 422 UnknownArm
    b'{"context":{"level":1,"spend":2,"level":3}}',  # 422 duplicate key
    b'{"unitId":"\xff\xfe","context":{"level":1,"spend":2}}',  # 400 not UTF-8
    b"not json",  # 400
    b'{"context":{"level":1}}',  # 422 a missing feature
    b'{"unitId":"' + b"x" * 1100 + b'"}',  # 413
]


def test_decide_on_the_connection_answers_what_the_app_answers(tmp_path: Path, run: Any) -> None:
    decided = 0

    async def scenario() -> None:
        nonlocal decided
        async with running(served_policy(**CONTEXTUAL), tmp_path, max_body_bytes=1024) as (runtime, _client):
            app = HttpApp(runtime)
            assert app.direct_route is not None and app.direct_route.path == "/v1/decide"
            for body in BODIES:
                plain_head, plain_body = await serve(HttpToolsProtocol, app, request(body))
                asgi_route, app._hot = app._hot, _not_taken  # the connection answers without the app's route
                head, answer = await serve(GUARDED, app, request(body))
                app._hot = asgi_route
                assert head.split(b"\r\n")[0] == plain_head.split(b"\r\n")[0], body
                if head.startswith(b"HTTP/1.1 200"):
                    decided += 2
                    first, second = orjson.loads(plain_body), orjson.loads(answer)
                    assert first.keys() == second.keys() and first["decisionId"] != second["decisionId"]
                    assert head == b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d" % len(
                        answer
                    )
                else:  # an error: byte for byte the app's, counted for each path
                    assert (head, answer) == (plain_head, plain_body), body
            assert decided == 4
            assert runtime.service.stats()["totals"]["decisions"] == decided
            errors = runtime.metrics.exposition().decode()
            assert 'croupier_request_errors_total{code="UnknownArm",path="/v1/decide"} 2.0' in errors
            assert 'croupier_request_errors_total{code="PayloadTooLarge",path="/v1/decide"} 2.0' in errors
            served = runtime.served
        # stopped: every decision committed
        path = database_path(tmp_path, served.namespace, served.name)
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM decisions").fetchone() == (decided,)

    run(scenario())


def test_an_unexpected_failure_on_the_connection_is_a_logged_500(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (runtime, _client):

            def broken(request: Any) -> Any:
                raise RuntimeError("boom")

            runtime.service.decide = broken  # type: ignore[method-assign]
            app = HttpApp(runtime)
            plain = await serve(HttpToolsProtocol, app, request(b"{}"))
            direct = await serve(GUARDED, app, request(b"{}"))
            assert direct == plain
            assert direct[0].startswith(b"HTTP/1.1 500 ") and b"internal error" in direct[1]

    run(scenario())
