"""The runtime's protocol class in process, on a recording transport: its answers are byte for byte uvicorn's, and a
small answer leaves in one transport write (croupier.runtime.http.server.OneWriteCycle)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from croupier.runtime.http.server import ConnectionLimits, guarded_protocol

App = Callable[[dict[str, Any], Any, Any], Any]


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.closed_by_server = False  # closed before the client went away

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


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


def body(data: bytes, *, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


def answering(*messages: dict[str, Any]) -> App:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        for message in messages:
            await send(message)

    return app


JSON = [(b"content-type", b"application/json"), (b"content-length", b"2")]
POST = b"POST /v1/decide HTTP/1.1\r\nHost: runtime\r\nContent-Length: 2\r\n\r\n{}"

CASES: dict[str, tuple[App, bytes]] = {
    "small answer": (answering(start(200, JSON), body(b"{}")), POST),
    "HEAD": (answering(start(200, JSON), body(b"{}")), b"HEAD / HTTP/1.1\r\nHost: runtime\r\n\r\n"),
    "streamed": (
        answering(start(200, [(b"content-type", b"text/plain")]), body(b"ab", more=True), body(b"cd")),
        POST,
    ),
    "declared length, two parts": (
        answering(start(200, JSON), body(b"{", more=True), body(b"}")),
        POST,
    ),
    "connection close": (answering(start(200, [*JSON, (b"connection", b"close")]), body(b"{}")), POST),
    "HTTP/1.0": (answering(start(200, JSON), body(b"{}")), POST.replace(b"HTTP/1.1", b"HTTP/1.0")),
    "body shorter than declared": (answering(start(200, JSON), body(b"{")), POST),
    "two requests in one read": (answering(start(200, JSON), body(b"{}")), POST + POST),
}


async def serve(protocol: type[HttpToolsProtocol], app: App, data: bytes) -> Recording:
    config = Config(app, loop="none", lifespan="off", access_log=False, log_level="critical", date_header=False)
    config.server_header = False
    config.load()
    connection = protocol(config, ServerState(), {})
    transport = Recording()
    connection.connection_made(transport)
    connection.data_received(data)
    for _ in range(20):
        await asyncio.sleep(0)
    transport.closed_by_server = transport.closed
    connection.connection_lost(None)
    return transport


GUARDED = guarded_protocol(ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=10, max_body_bytes=1024))


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_guarded_protocol_writes_what_uvicorn_writes(case: str, run: Callable[[Any], Any]) -> None:
    app, data = CASES[case]
    plain = run(serve(HttpToolsProtocol, app, data))
    guarded = run(serve(GUARDED, app, data))
    assert b"".join(guarded.writes) == b"".join(plain.writes)
    assert guarded.closed_by_server == plain.closed_by_server
    assert plain.writes  # every case answers something


def test_a_small_answer_leaves_in_one_write(run: Callable[[Any], Any]) -> None:
    app, data = CASES["small answer"]
    plain = run(serve(HttpToolsProtocol, app, data))
    guarded = run(serve(GUARDED, app, data))
    assert len(plain.writes) == 2  # uvicorn: the status line and headers, then the body
    assert guarded.writes == [b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"]
    assert not guarded.closed_by_server


async def keep_alive_probe(app: App, request_at: float) -> tuple[float, float]:
    """A guarded connection with a 0.2 s keep-alive timeout that receives one request `request_at` seconds after
    connecting: when (seconds after connecting) the answer was written and when the server closed the connection."""
    config = Config(app, loop="none", lifespan="off", access_log=False, log_level="critical", date_header=False)
    config.server_header = False
    config.timeout_keep_alive = 0.2  # type: ignore[assignment]
    config.load()
    connection = GUARDED(config, ServerState(), {})
    transport = Recording()
    loop = asyncio.get_running_loop()
    started = loop.time()
    answered = closed = -1.0

    def write(data: bytes | bytearray | memoryview) -> None:
        nonlocal answered
        answered = loop.time() - started

    def close() -> None:
        nonlocal closed
        closed = loop.time() - started
        transport.closed = True

    transport.write = write  # type: ignore[method-assign]
    transport.close = close  # type: ignore[method-assign]
    connection.connection_made(transport)
    await asyncio.sleep(request_at)
    connection.data_received(CASES["small answer"][1])
    deadline = loop.time() + 5
    while closed < 0 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    connection.connection_lost(None)
    return answered, closed


class VirtualClock:
    """The running loop as a protocol sees it (its `_loop`), with time that moves only when the test advances it:
    `time()` reads the clock and timers fire in order when `advance_to` passes them, whatever the machine's load.
    Everything else (tasks of the app) is the real loop's."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.now = 0.0
        self._order = itertools.count()  # timers due at the same time fire in the order they were set
        self._timers: list[tuple[float, int, asyncio.TimerHandle, Callable[..., object], tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    def time(self) -> float:
        return self.now

    def call_at(self, when: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        handle = asyncio.TimerHandle(when, callback, args, self._loop)
        heapq.heappush(self._timers, (when, next(self._order), handle, callback, args))
        return handle

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> asyncio.TimerHandle:
        return self.call_at(self.now + delay, callback, *args)

    def pending(self) -> list[float]:
        """When the timers not cancelled are due."""
        return sorted(round(when, 9) for when, _, handle, *_ in self._timers if not handle.cancelled())

    async def advance_to(self, when: float) -> None:
        while self._timers and self._timers[0][0] <= when:
            due, _, handle, callback, args = heapq.heappop(self._timers)
            self.now = due
            if not handle.cancelled():
                callback(*args)
            await settle()
        self.now = when
        await settle()


async def settle() -> None:
    """Let the real loop run what is ready (the app's task, the answer)."""
    for _ in range(20):
        await asyncio.sleep(0)


async def keep_alive_on_a_virtual_clock() -> list[tuple[str, float, bool, list[float]]]:
    """A guarded connection with a 0.2 s keep-alive timeout on a virtual clock, receiving one request 0.15 s after
    connecting: at each step, (step, clock, whether the server has closed the connection, pending timers)."""
    app = CASES["small answer"][0]
    config = Config(app, loop="none", lifespan="off", access_log=False, log_level="critical", date_header=False)
    config.server_header = False
    config.timeout_keep_alive = 0.2  # type: ignore[assignment]
    config.load()
    clock = VirtualClock(asyncio.get_running_loop())
    connection = GUARDED(config, ServerState(), {}, _loop=clock)  # type: ignore[arg-type]
    transport = Recording()
    steps: list[tuple[str, float, bool, list[float]]] = []

    def step(name: str) -> None:
        steps.append((name, round(clock.now, 9), transport.closed, clock.pending()))

    connection.connection_made(transport)
    step("connected")
    await clock.advance_to(0.15)
    connection.data_received(CASES["small answer"][1])
    await settle()
    assert transport.writes, "the request was not answered"
    step("answered")
    await clock.advance_to(0.2)  # the timer armed at connect fires: idle for 0.05 s only
    step("first timer")
    await clock.advance_to(0.349)
    step("just before")
    await clock.advance_to(0.35)
    step("idle for the timeout")
    connection.connection_lost(None)
    return steps


def test_the_keep_alive_timeout_counts_from_the_last_answer(run: Callable[[Any], Any]) -> None:
    # Answered at 0.15: the timer armed at connect fires at 0.2, finds the connection idle for 0.05 s only and waits
    # for the rest (0.15 s), so the connection closes 0.2 s after the answer, not 0.2 s after connecting.
    assert run(keep_alive_on_a_virtual_clock()) == [
        ("connected", 0.0, False, [0.2]),
        ("answered", 0.15, False, [0.2]),
        ("first timer", 0.2, False, [0.35]),
        ("just before", 0.349, False, [0.35]),
        ("idle for the timeout", 0.35, True, []),
    ]


def test_a_request_in_the_app_is_not_cut_off_by_the_keep_alive_timeout(run: Callable[[Any], Any]) -> None:
    async def slow(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        await asyncio.sleep(0.3)
        await send(start(200, JSON))
        await send(body(b"{}"))

    # in the app from 0.05 to 0.35 (the timer fires at 0.2 meanwhile), idle from the answer on
    answered, closed = run(keep_alive_probe(slow, 0.05))
    assert answered >= 0.35
    assert answered + 0.2 <= closed < answered + 2
