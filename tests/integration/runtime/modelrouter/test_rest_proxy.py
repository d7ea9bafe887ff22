"""The REST adapter's HTTP handling, in process, against small real upstream servers on 127.0.0.1: an aiohttp app that
echoes what it received, and raw asyncio servers that misbehave on purpose (close a pooled connection under a
request, break off an answer, never answer). Clients write raw bytes, so framing is exact: malformed requests,
chunked bodies, keep-alive, pipelining, bodies over the limit, HTTP/1.0. The TF Serving behaviour (labels, versions,
error shapes) is tested against the local model server in test_router.py.

Every test runs against both routers (conftest.py): ``python``, the REST adapter in this process, and ``go``, the
compiled ``croupier-modelrouter`` as a child process (its REST port read from its JSON ``routing`` log line, its
counters from its ``/metrics``). Where a test looks inside the Python adapter (its upstream pool), the Go router is
checked through what the model server saw instead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httptools
import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from support.modelrouting import router_command

from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.modelrouter.rest import RestRouter
from croupier.runtime.modelrouter.routing import ModelRoute, RoutingTable
from croupier.runtime.modelrouter.service import RouterService

TABLE = RoutingTable(models={"ranker": ModelRoute(stable=1, canary=2, canary_weight=0)})
PREDICT = b"/v1/models/ranker:predict"
ECHOED: Counter[int] = Counter()
"""Requests each echo server (by its port) received."""


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = bytearray()
        self.complete = False


class AnswerReader:
    """Reads HTTP answers off a client connection with httptools (the same parser as the router, other direction)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self.reader = reader
        self.answers: list[Answer] = []
        self.parser = httptools.HttpResponseParser(self)
        self.eof = False

    def on_message_begin(self) -> None:
        self.answers.append(Answer())

    def on_header(self, name: bytes, value: bytes) -> None:
        self.answers[-1].headers[name.decode().lower()] = value.decode()

    def on_headers_complete(self) -> None:
        self.answers[-1].status = self.parser.get_status_code()

    def on_body(self, data: bytes) -> None:
        self.answers[-1].body += data

    def on_message_complete(self) -> None:
        self.answers[-1].complete = True

    async def read(self, count: int, timeout: float = 10.0) -> list[Answer]:
        async with asyncio.timeout(timeout):
            while sum(a.complete for a in self.answers) < count:
                try:
                    data = await self.reader.read(65536)
                except ConnectionResetError:
                    data = b""
                if not data:
                    self.eof = True
                    with contextlib.suppress(httptools.HttpParserError):
                        self.parser.feed_data(b"")  # a close-delimited answer ends here
                    break
                self.parser.feed_data(data)
        return self.answers[:count]

    async def closed(self, timeout: float = 5.0) -> bool:
        async with asyncio.timeout(timeout):
            try:
                return await self.reader.read(65536) == b""
            except ConnectionResetError:
                return True


async def echo(request: web.Request) -> web.StreamResponse:
    ECHOED[request.transport.get_extra_info("sockname")[1] if request.transport else 0] += 1
    body = await request.read()
    if request.path.endswith(":chunked"):  # a streamed answer of `size` bytes in 64 KiB chunks
        size = int(request.query["size"])
        answer = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        answer.enable_chunked_encoding()
        await answer.prepare(request)
        sent = 0
        while sent < size:
            piece = min(65536, size - sent)
            await answer.write(bytes([sent % 251]) * piece)
            sent += piece
        await answer.write_eof()
        return answer
    if request.path.endswith(":mirror"):
        return web.Response(body=body, content_type="application/octet-stream")
    document = {
        "method": request.method,
        "path": request.raw_path,
        "length": len(body),
        "content_type": request.headers.get("Content-Type"),
        "host": request.headers.get("Host"),
        "unit": request.headers.get("x-croupier-unit"),
        "headers": sorted(k.lower() for k in request.headers),
        "authorization": request.headers.get("Authorization"),
        "traceparent": request.headers.get("traceparent"),
        "peer": request.transport.get_extra_info("peername")[1] if request.transport else None,
    }
    return web.json_response(document, status=int(request.query.get("status", "200")))


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[str]:
    app = web.Application(client_max_size=256 << 20)
    app.router.add_route("*", r"/{tail:.*}", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def raw_server(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(2):
                await server.wait_closed()


class InProcess:
    """The Python router's REST adapter in this process."""

    def __init__(self, router: RestRouter) -> None:
        self.router = router

    async def counted(self, code: str) -> float:
        return sum(
            sample.value
            for family in self.router.service.metrics.router_requests.collect()
            for sample in family.samples
            if sample.name.endswith("_total") and sample.labels["code"] == code
        )

    @property
    def open_connections(self) -> int | None:
        return self.router.pool.open_connections


class Compiled:
    """The compiled router as a child process."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def counted(self, code: str) -> float:
        async with httpx.AsyncClient(trust_env=False) as client:
            text = (await client.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5)).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "croupier_router_requests_total" and sample.labels["code"] == code
        )

    @property
    def open_connections(self) -> int | None:
        return None  # the pool is net/http's, not observable from here: tests check what the model server saw


@contextlib.asynccontextmanager
async def compiled_router(upstream: str, *, max_body_bytes: int, timeout_seconds: float) -> AsyncIterator[int]:
    """``croupier-modelrouter`` on ports it picks, serving TABLE; yields its REST port (from its ``routing`` log)."""
    with tempfile.TemporaryDirectory() as work:
        routing, log = Path(work) / "routing.json", Path(work) / "router.log"
        routing.write_text(TABLE.model_dump_json(by_alias=True))
        command = [
            *router_command("go"), "--host=127.0.0.1", "--rest-port=0", "--grpc-port=0",
            f"--upstream-rest={upstream}", "--upstream-grpc=127.0.0.1:1", f"--routing-file={routing}",
            f"--upstream-timeout-seconds={timeout_seconds}", f"--max-body-bytes={max_body_bytes}",
            "--log-format=json", "--log-level=info",
        ]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            port = None
            while port is None:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"no routing line: {log.read_text()}"
                for line in log.read_text().splitlines():
                    event = json.loads(line)
                    if event.get("event") == "routing":
                        port = int(event["rest_port"])
                await asyncio.sleep(0.02)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=15)


@contextlib.asynccontextmanager
async def routed(
    upstream: str, implementation: str, *, max_body_bytes: int = 1 << 20, timeout_seconds: float = 10.0
) -> AsyncIterator[tuple[InProcess | Compiled, int]]:
    if implementation == "go":
        async with compiled_router(upstream, max_body_bytes=max_body_bytes, timeout_seconds=timeout_seconds) as port:
            yield Compiled(port), port
        return
    service = RouterService(RuntimeMetrics(), TABLE)
    router = RestRouter(
        service, upstream, unit_header="x-croupier-unit", timeout_seconds=timeout_seconds, max_body_bytes=max_body_bytes
    )
    port = await router.start("127.0.0.1", 0)
    try:
        yield InProcess(router), port
    finally:
        await router.close()


async def connect(port: int) -> tuple[AnswerReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return AnswerReader(reader), writer


def post(path: bytes, body: bytes, *extra: bytes) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: router\r\nContent-Type: application/json\r\nContent-Length: %d\r\n" % (
        path,
        len(body),
    )
    return head + b"".join(h + b"\r\n" for h in extra) + b"\r\n" + body


def test_keep_alive_requests_share_one_upstream_connection_and_are_rewritten(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (router, port):
            answers, writer = await connect(port)
            peers = set()
            for i in range(20):
                writer.write(post(PREDICT + b"?x=1", b'{"instances": [%d]}' % i, b"x-croupier-unit: u%d" % i))
                (answer,) = (await answers.read(i + 1))[i:]
                assert answer.status == 200
                echoed = json.loads(answer.body)
                assert echoed["path"] == "/v1/models/ranker/labels/stable:predict?x=1"
                assert echoed["length"] == len(b'{"instances": [%d]}' % i)
                assert echoed["content_type"] == "application/json"
                assert echoed["host"] == upstream.removeprefix("http://")
                assert echoed["unit"] is None  # the router's own header stays with the router
                assert answer.headers["x-croupier-model-version"] == "1"
                assert answer.headers["x-croupier-model-label"] == "stable"
                peers.add(echoed["peer"])
            assert len(peers) == 1  # the model server saw one connection
            assert router.open_connections in (1, None)  # None: the compiled router's pool is not observable
            assert await router.counted("OK") == 20
            writer.close()

    asyncio.run(scenario())


def test_the_callers_end_to_end_headers_reach_the_model_server_and_hop_by_hop_ones_do_not(implementation: str) -> None:
    """A model server behind an authenticating proxy needs `Authorization`, tracing needs `traceparent`: passed on.
    Connection-scoped headers (RFC 9110, 7.6.1), those the Connection header names, and the router's own are not."""

    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            writer.write(
                post(
                    PREDICT,
                    b'{"instances": [1]}',
                    b"Authorization: Bearer t0ken",
                    b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                    b"Connection: keep-alive, X-Hop",
                    b"X-Hop: 1",
                    b"Keep-Alive: timeout=5",
                    b"Proxy-Authorization: Basic eA==",
                    b"x-croupier-unit: u1",
                )
            )
            (answer,) = await answers.read(1)
            echoed = json.loads(answer.body)
            assert echoed["authorization"] == "Bearer t0ken"
            assert echoed["traceparent"] == "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
            for dropped in ("x-hop", "keep-alive", "proxy-authorization", "x-croupier-unit", "connection"):
                assert dropped not in echoed["headers"], dropped
            writer.close()

    asyncio.run(scenario())


def test_a_chunked_request_body_reaches_the_model_server_whole(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            body = b'{"instances": [[1, 2, 3]]}'
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:5], body[5:9], body[9:])) + b"0\r\n\r\n"
            writer.write(b"POST /v1/models/ranker/versions/2:predict HTTP/1.1\r\nHost: r\r\n")
            writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
            for i in range(0, len(chunks), 7):  # trickled in small writes
                writer.write(chunks[i : i + 7])
                await writer.drain()
                await asyncio.sleep(0.001)
            (answer,) = await answers.read(1)
            assert answer.status == 200 and json.loads(answer.body)["length"] == len(body)
            assert json.loads(answer.body)["path"] == "/v1/models/ranker/versions/2:predict"
            assert answer.headers["x-croupier-model-version"] == "2"
            writer.close()

    asyncio.run(scenario())


def test_pipelined_requests_are_answered_in_order(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            writer.write(
                post(b"/v1/models/ranker/versions/1:predict", b"{}")
                + b"GET /v1/models/ranker?status=404 HTTP/1.1\r\nHost: r\r\n\r\n"
                + post(b"/v1/models/ranker/versions/2:predict", b"{}")
            )
            first, second, third = await answers.read(3)
            assert json.loads(first.body)["path"] == "/v1/models/ranker/versions/1:predict"
            assert (second.status, json.loads(second.body)["method"]) == (404, "GET")
            assert "x-croupier-model-version" not in second.headers  # status reads are not routed
            assert json.loads(third.body)["path"] == "/v1/models/ranker/versions/2:predict"
            writer.close()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\nzz",
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nnothex\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"POST /v1/models/ranker:predict HTTP/1.1\r\nBad Header Name: x\r\n\r\n",
    ],
)
def test_malformed_http_gets_400_in_tf_servings_error_shape(request_bytes: bytes, implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (router, port):
            answers, writer = await connect(port)
            writer.write(request_bytes)
            (answer,) = await answers.read(1)
            assert answer.status == 400
            assert set(json.loads(answer.body)) == {"error"}
            assert "malformed HTTP request" in json.loads(answer.body)["error"]
            assert answer.headers["connection"] == "close"
            assert answers.eof or await answers.closed()
            assert router.open_connections in (0, None)
            assert ECHOED[int(upstream.rsplit(":", 1)[1])] == 0  # nothing reached the model server
            writer.close()

    asyncio.run(scenario())


def test_large_bodies_stream_both_ways_and_the_limit_is_refused_without_reading(implementation: str) -> None:
    async def scenario() -> None:
        async with (
            echo_server() as upstream,
            routed(upstream, implementation, max_body_bytes=8 << 20) as (router, port),
        ):
            answers, writer = await connect(port)
            big = bytes(range(256)) * (6 << 12)  # 6 MiB
            writer.write(post(b"/v1/models/ranker/versions/1:mirror", big))
            (mirrored,) = await answers.read(1, timeout=30)
            assert mirrored.status == 200 and bytes(mirrored.body) == big
            writer.write(b"GET /v1/models/ranker/versions/1:chunked?size=%d HTTP/1.1\r\nHost: r\r\n\r\n" % (5 << 20))
            chunked = (await answers.read(2, timeout=30))[1]
            assert chunked.headers.get("transfer-encoding") == "chunked"
            assert len(chunked.body) == 5 << 20 and chunked.body[65536] == 65536 % 251
            # Over the limit: refused at the headers (429, TF Serving's RESOURCE_EXHAUSTED), counted, connection closed.
            writer.write(b"POST /v1/models/ranker:predict HTTP/1.1\r\nContent-Length: %d\r\n\r\n{" % (9 << 20))
            refused = (await answers.read(3))[2]
            assert refused.status == 429 and "exceeds" in json.loads(refused.body)["error"]
            assert refused.headers["x-croupier-model-label"] == "stable"
            assert await router.counted("RESOURCE_EXHAUSTED") == 1
            assert answers.eof or await answers.closed()
            writer.close()
            # A chunked body that grows past the limit is cut off the same way.
            answers, writer = await connect(port)
            writer.write(b"POST /v1/models/ranker:predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            piece = b"x" * (1 << 20)
            with contextlib.suppress(ConnectionError):
                for _ in range(10):
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    await writer.drain()
            (refused,) = await answers.read(1)
            assert refused.status == 429
            writer.close()

    asyncio.run(scenario())


def test_an_http10_client_gets_a_close_delimited_streamed_answer(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            writer.write(b"GET /v1/models/ranker:chunked?size=100000 HTTP/1.0\r\n\r\n")
            (answer,) = await answers.read(1)
            assert answers.eof and len(answer.body) == 100000
            assert "transfer-encoding" not in answer.headers and "content-length" not in answer.headers
            writer.close()
            # HTTP/1.0 with keep-alive and an answer of known length: the connection stays, and says so.
            answers, writer = await connect(port)
            for i in range(2):
                writer.write(b"GET /v1/models/ranker HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                answer = (await answers.read(i + 1))[i]
                assert answer.status == 200 and answer.headers["connection"] == "keep-alive"
            writer.close()

    asyncio.run(scenario())


def test_expect_100_continue_is_answered(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            body = b'{"instances": [1]}'
            writer.write(post(PREDICT, b"", b"Expect: 100-continue").replace(b"Length: 0", b"Length: %d" % len(body)))
            first = await answers.read(1)
            assert first[0].status == 100
            writer.write(body)
            answer = (await answers.read(2))[1]
            assert answer.status == 200 and json.loads(answer.body)["length"] == len(body)
            writer.close()

    asyncio.run(scenario())


def test_a_pooled_connection_the_model_server_closed_under_a_request_is_retried_once(implementation: str) -> None:
    """The model server closes an idle keep-alive connection just as the router writes a request on it: the request
    never reached it, so the router sends it again on a new connection and the client sees one normal answer."""
    served: list[int] = []

    async def upstream_closing_after_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = len(served)
        served.append(0)
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            if served[connection] == 1:  # a second request on this connection: drop it unanswered
                writer.close()
                return
            served[connection] += 1
            body = b'{"connection": %d}' % connection
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
            writer.write(body)
            await writer.drain()

    async def scenario() -> None:
        async with (
            raw_server(upstream_closing_after_one) as upstream,
            routed(upstream, implementation) as (router, port),
        ):
            answers, writer = await connect(port)
            for i in range(3):
                writer.write(post(PREDICT, b"{}"))
                answer = (await answers.read(i + 1))[i]
                assert answer.status == 200 and json.loads(answer.body) == {"connection": i}
            assert await router.counted("OK") == 3
            writer.close()

    asyncio.run(scenario())


def test_an_answer_broken_off_is_503_before_any_byte_and_a_close_after(implementation: str) -> None:
    async def upstream_breaking_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        size = 10 if b"small" in head else 1 << 20
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (2 * size) + b"x" * size)
        await writer.drain()
        writer.close()

    async def scenario() -> None:
        async with raw_server(upstream_breaking_off) as upstream, routed(upstream, implementation) as (router, port):
            answers, writer = await connect(port)
            writer.write(post(b"/v1/models/ranker:predict?small", b"{}"))
            (answer,) = await answers.read(1)
            assert answer.status == 503 and "connection closed before the answer was complete" in answer.body.decode()
            assert answer.headers["x-croupier-model-version"] == "1"
            assert await router.counted("UNAVAILABLE") == 1
            writer.write(post(PREDICT, b"{}"))  # the client's connection is still good
            await answers.read(2)
            assert len(answers.answers) == 2 and not answers.answers[1].complete and answers.eof
            assert await router.counted("UNAVAILABLE") == 2
            writer.close()

    asyncio.run(scenario())


def test_a_model_server_that_does_not_answer_is_504_and_one_that_is_down_503(implementation: str) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # until the router gives up and closes

    async def scenario() -> None:
        async with (
            raw_server(silent) as upstream,
            routed(upstream, implementation, timeout_seconds=1) as (router, port),
        ):
            answers, writer = await connect(port)
            writer.write(post(PREDICT, b"{}"))
            (answer,) = await answers.read(1, timeout=5)
            assert answer.status == 504 and "did not answer within 1" in json.loads(answer.body)["error"]
            assert await router.counted("DEADLINE_EXCEEDED") == 1
            writer.close()
        async with raw_server(silent) as upstream:
            pass  # the port is free again: nothing listens there
        async with routed(upstream, implementation) as (router, port):
            answers, writer = await connect(port)
            writer.write(post(PREDICT, b"{}"))
            (answer,) = await answers.read(1)
            assert answer.status == 503 and "is unreachable" in json.loads(answer.body)["error"]
            writer.close()

    asyncio.run(scenario())


def test_metrics_and_the_pin_header(implementation: str) -> None:
    async def scenario() -> None:
        async with echo_server() as upstream, routed(upstream, implementation) as (_, port):
            answers, writer = await connect(port)
            writer.write(post(PREDICT, b"{}", b"x-croupier-model-version: 2"))
            writer.write(post(PREDICT, b"{}", b"x-croupier-model-version: latest"))
            writer.write(b"GET /metrics HTTP/1.1\r\nHost: r\r\n\r\n")
            pinned, refused, metrics = await answers.read(3)
            assert json.loads(pinned.body)["path"] == "/v1/models/ranker/versions/2:predict"
            assert refused.status == 400 and "x-croupier-model-version" in json.loads(refused.body)["error"]
            # The same sample in both routers' exposition (Python writes 1.0 where client_golang writes 1).
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(metrics.body.decode())
                for s in family.samples
            }
            labels = (("code", "OK"), ("label", "none"), ("model", "ranker"), ("version", "2"))
            assert metrics.status == 200 and samples[("croupier_router_requests_total", labels)] == 1
            writer.close()

    asyncio.run(scenario())
