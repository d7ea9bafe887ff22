"""Hostile and broken HTTP clients against a real runtime process, over raw sockets on 127.0.0.1.

Slow or incomplete requests are cut off by the header/body deadlines (408, JSON error shape), a silent connection by
the keep-alive timeout, a too-large Content-Length at once (413), malformed framing with a JSON 400; 500 stalled
clients neither lock well-behaved clients out nor slow them down (see croupier.runtime.http.server).
"""

from __future__ import annotations

import json
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import RuntimeProcess, write_policy

DECIDE = b'{"unitId":"player-1"}'
HEAD = b"POST /v1/decide HTTP/1.1\r\nHost: runtime\r\nContent-Type: application/json\r\n"


def request(body: bytes = DECIDE, extra: bytes = b"") -> bytes:
    return HEAD + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def read_answer(conn: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or ``timeout``), and how long that took."""
    started = time.monotonic()
    conn.settimeout(timeout)
    data = b""
    try:
        while chunk := conn.recv(65536):
            data += chunk
    except TimeoutError:
        data += b"<still open>"
    except ConnectionResetError:
        pass
    return data, time.monotonic() - started


def split(answer: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """One runtime for the module's probes (each probe uses its own connections)."""
    env = {
        "CROUPIER_RUNTIME_HEADER_TIMEOUT_SECONDS": "1",
        "CROUPIER_RUNTIME_BODY_TIMEOUT_SECONDS": "1.5",
        "CROUPIER_RUNTIME_KEEP_ALIVE_TIMEOUT_SECONDS": "2",
    }
    directory = tmp_path_factory.mktemp("slow-clients")
    process = RuntimeProcess(write_policy(directory / "policy.yaml"), directory / "state", env=env).start()
    yield process
    process.stop()


def connect(runtime: RuntimeProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", runtime.port), timeout=5)


SLOW_REQUESTS = [
    ("headers never finish", HEAD + b"Content-Le", b"", 408, 1.0),
    ("slowloris headers", HEAD, b"X-Slow: " + b"a" * 20, 408, 1.0),
    ("Content-Length larger than the body", HEAD + b"Content-Length: 100\r\n\r\n{", b"", 408, 1.5),
    ("body trickled at 1 byte / 0.3 s", HEAD + b"Content-Length: %d\r\n\r\n" % len(DECIDE), DECIDE, 408, 1.5),
    ("huge Content-Length", HEAD + b"Content-Length: 100000000000\r\n\r\n{", b"", 413, 0.0),
]


@pytest.mark.parametrize("probe", SLOW_REQUESTS, ids=[c[0] for c in SLOW_REQUESTS])
def test_slow_or_incomplete_requests_are_answered_and_closed(
    runtime: RuntimeProcess, probe: tuple[str, bytes, bytes, int, float]
) -> None:
    case, sent, trickle, status, deadline = probe
    with connect(runtime) as conn:
        started = time.monotonic()
        conn.sendall(sent)
        for byte in trickle:
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break  # the server gave up on us: what it said is in the answer
            time.sleep(0.3)
        answer, _ = read_answer(conn, timeout=10)
        elapsed = time.monotonic() - started
    code, error = split(answer)
    assert code == status, (case, answer)
    assert error["status"] == status
    assert error["error"] == ("RequestTimeout" if status == 408 else "PayloadTooLarge")
    assert b"connection: close" in answer
    assert deadline - 0.05 <= elapsed < deadline + 3.0, (case, elapsed)


def test_a_connection_that_sends_nothing_is_closed_after_the_keep_alive_timeout(runtime: RuntimeProcess) -> None:
    with connect(runtime) as conn:
        answer, elapsed = read_answer(conn, timeout=10)
    assert answer == b""
    assert 1.9 <= elapsed < 5.0


FRAMING_ERRORS = [
    ("negative Content-Length", HEAD + b"Content-Length: -1\r\n\r\n", "Content-Length"),
    ("conflicting Content-Length", HEAD + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", "Content-Length"),
    (
        "Content-Length with chunked",
        HEAD + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "Transfer-Encoding",
    ),
    ("bad chunk size", HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"),
]


@pytest.mark.parametrize(("case", "sent", "words"), FRAMING_ERRORS, ids=[c[0] for c in FRAMING_ERRORS])
def test_framing_errors_get_the_json_error_shape(runtime: RuntimeProcess, case: str, sent: bytes, words: str) -> None:
    with connect(runtime) as conn:
        conn.sendall(sent)
        answer, elapsed = read_answer(conn, timeout=5)
    code, error = split(answer)
    assert code == 400, (case, answer)
    assert error["error"] == "MalformedHttp"
    assert error["status"] == 400
    assert words in str(error["message"]), error
    assert elapsed < 1.0


def read_response(conn: socket.socket) -> tuple[int, dict[str, object]]:
    """One response on a kept-alive connection (up to its Content-Length)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return split(head + b"\r\n\r\n" + body)


def test_idle_time_between_requests_does_not_count_against_the_header_deadline(runtime: RuntimeProcess) -> None:
    with connect(runtime) as conn:
        for _ in range(3):
            conn.sendall(request())
            code, decision = read_response(conn)
            assert code == 200, decision
            assert decision["arm"] in ("blue", "green", "red")
            time.sleep(1.3)  # longer than the header deadline (1 s), shorter than the keep-alive timeout (2 s)


def test_500_stalled_clients_neither_lock_out_nor_slow_down_well_behaved_ones(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]
) -> None:
    """500 stallers of five kinds against a server that keeps at most 300 connections: well-behaved clients (a new
    connection per request) are all served quickly while the stallers hang, and every staller is cut off by a
    deadline (408) or evicted."""
    timeout = 6.0
    env = {
        "CROUPIER_RUNTIME_HEADER_TIMEOUT_SECONDS": str(timeout),
        "CROUPIER_RUNTIME_BODY_TIMEOUT_SECONDS": str(timeout),
        "CROUPIER_RUNTIME_KEEP_ALIVE_TIMEOUT_SECONDS": str(int(timeout)),
        "CROUPIER_RUNTIME_MAX_CONNECTIONS": "300",
    }
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml"), env=env).start()
    kinds: list[tuple[bytes, bytes]] = [
        (b"", b""),  # connects and sends nothing
        (HEAD + b"Content-Le", b""),  # headers never finish
        (HEAD, b"X-Slow: " + b"a" * 100),  # headers trickled (slowloris)
        (HEAD + b"Content-Length: 100\r\n\r\n{", b""),  # body shorter than its Content-Length
        (HEAD + b"Content-Length: 200\r\n\r\n", b'{"unitId":"' + b"a" * 180),  # body trickled
    ]
    selector = selectors.DefaultSelector()
    stallers: dict[socket.socket, dict[str, object]] = {}
    started = time.monotonic()
    for number in range(500):
        sent, trickle = kinds[number % len(kinds)]
        conn = socket.create_connection(("127.0.0.1", runtime.port), timeout=5)
        conn.setblocking(False)
        if sent:
            conn.sendall(sent)
        stallers[conn] = {"trickle": trickle, "next": started, "answer": b"", "closed": None}
        selector.register(conn, selectors.EVENT_READ)

    def pump(until: float) -> None:
        """Trickle a byte per 0.3 s on each trickler and collect what the server sends, until ``until``."""
        while time.monotonic() < until:
            now = time.monotonic()
            for conn, state in stallers.items():
                trickle = state["trickle"]
                assert isinstance(trickle, bytes)
                if trickle and state["closed"] is None and now >= state["next"]:  # type: ignore[operator]
                    try:
                        conn.send(trickle[:1])
                    except OSError:
                        state["trickle"] = b""
                    else:
                        state["trickle"], state["next"] = trickle[1:], now + 0.3
            for key, _ in selector.select(timeout=0.01):
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                state = stallers[conn]
                try:
                    chunk = conn.recv(65536)
                except (ConnectionResetError, BlockingIOError):
                    chunk = b""
                state["answer"] = state["answer"] + chunk  # type: ignore[operator]
                if not chunk:
                    state["closed"] = time.monotonic() - started
                    selector.unregister(conn)
            if all(state["closed"] is not None for state in stallers.values()):
                return

    latencies: list[float] = []
    with httpx.Client(base_url=runtime.url, timeout=5, headers={"Connection": "close"}) as client:
        # Well-behaved clients while the stallers hang (before the first deadline can pass).
        while time.monotonic() - started < timeout - 2.5:
            pump(time.monotonic() + 0.03)
            before = time.monotonic()
            response = client.post("/v1/decide", json={"unitId": f"player-{len(latencies)}"})
            latencies.append(time.monotonic() - before)
            assert response.status_code == 200, response.text
            assert response.json()["arm"] in ("blue", "green", "red")
        still_open = sum(1 for state in stallers.values() if state["closed"] is None)
        pump(started + 3 * timeout + 5.0)
        assert client.get("/readyz").status_code == 200
    for conn in stallers:
        conn.close()
    closed_at = sorted(float(state["closed"] or 0.0) for state in stallers.values())  # type: ignore[arg-type]
    print(  # shown with -s, and on failure
        f"well-behaved: {len(latencies)} requests, max {max(latencies):.3f} s, median"
        f" {sorted(latencies)[len(latencies) // 2]:.3f} s; stallers still open after that: {still_open}; last staller"
        f" closed at {closed_at[-1]:.1f} s"
    )
    assert len(latencies) >= 20
    assert max(latencies) < 2.0, sorted(latencies)[-5:]
    # The stallers were hanging while the others were served: the 300 the limit allows, minus the ones the
    # well-behaved connections evicted.
    assert still_open >= 300 - len(latencies) - 5, still_open
    answers = [state["answer"] for state in stallers.values()]
    assert all(state["closed"] is not None for state in stallers.values()), "a stalled client is still connected"
    assert max(float(state["closed"]) for state in stallers.values()) < 2 * timeout + 3.0  # type: ignore[arg-type]
    timed_out = 0
    for answer in answers:
        assert isinstance(answer, bytes)
        if answer:
            code, error = split(answer)
            assert (code, error["error"]) == (408, "RequestTimeout"), answer
            timed_out += 1
    assert timed_out >= 300  # four kinds in five sent a request: each got a 408 (deadline or eviction)
