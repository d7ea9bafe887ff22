"""The experiment runtime's assign answered by its connection (`server.DirectCycle`, `experiments.http.DirectAssign`)
against the same requests answered through the app's ASGI route by plain uvicorn, each on its own runtime: the same
status lines, headers and bodies (errors byte for byte), the same exposures counted and committed; a DecisionPolicy
target (a real policy runtime process) answered from the request's own task; an unreachable policy the same 502."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from croupier.api.assignment import assign
from croupier.runtime.http.app import HttpApp
from croupier.runtime.http.server import ConnectionLimits, guarded_protocol
from croupier.runtime.store.experiment_sqlite import experiment_database_path

from ..conftest import RuntimeProcess, free_port, write_policy
from ..test_http_direct import Recording
from .conftest import serving, write_experiment

pytestmark = pytest.mark.integration

GUARDED = guarded_protocol(ConnectionLimits(header_timeout=5, body_timeout=5, max_connections=10, max_body_bytes=4096))
SALT = "direct"
VARIANTS = [
    {"name": "control", "weight": 34, "payload": {"banner": "static"}},
    {"name": "bandit", "weight": 33, "decisionPolicyRef": {"name": "banner"}},
    {"name": "ranker-v2", "weight": 33, "modelDeploymentRef": {"name": "ranker", "version": 2}},
]
WEIGHTS = [(str(v["name"]), int(str(v["weight"]))) for v in VARIANTS]


def unit_of(variant: str, skip: int = 0) -> str:
    units = (f"user-{i}" for i in range(10_000) if assign(f"user-{i}", SALT, WEIGHTS) == variant)
    for _ in range(skip):
        next(units)
    return next(units)


def request(body: bytes) -> bytes:
    return b"POST /v1/assign HTTP/1.1\r\nHost: runtime\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)


OPTIONS: dict[str, Any] = {
    "loop": "none",
    "lifespan": "off",
    "log_level": "critical",
    "date_header": False,
    "server_header": False,
    "proxy_headers": False,
}


class Answered(Recording):
    """The connection's writes; `done` once one whole answer (its head and `content-length` bytes) is written."""

    def __init__(self) -> None:
        super().__init__()
        self.done = asyncio.Event()
        self.head = self.body = b""

    def write(self, data: bytes | bytearray | memoryview) -> None:
        super().write(data)
        self.head, complete, self.body = b"".join(self.writes).partition(b"\r\n\r\n")
        length = self.head.rpartition(b"content-length: ")[2].split(b"\r\n")[0]
        if complete and length.isdigit() and len(self.body) >= int(length):
            self.done.set()


async def serve(protocol: type[HttpToolsProtocol], app: HttpApp, data: bytes) -> tuple[bytes, bytes]:
    """The head (status line and headers) and the body of the answer to `data`, once it is written."""
    config = Config(app, **OPTIONS)
    config.load()
    transport = Answered()
    connection = protocol(config, ServerState(), {})
    connection.connection_made(transport)
    connection.data_received(data)
    await asyncio.wait_for(transport.done.wait(), 10)
    connection.connection_lost(None)
    return transport.head, transport.body


async def _not_taken(body: bytes) -> bytes:
    raise AssertionError("the app's assign route was called")


def bodies() -> list[bytes]:
    control, model = unit_of("control"), unit_of("ranker-v2")
    return [
        b'{"unitId":"%s"}' % control.encode(),  # a new unit: exposure logged
        b'{"unitId":"%s"}' % control.encode(),  # the same unit again: remembered, no second exposure
        b'{"unitId":"%s","attributes":{"country":"FR","visits":3}}' % model.encode(),
        b'{"unitId":"%s"}' % unit_of("control", 1).encode(),
        b'{"attributes":{"userId":"%s","country":"FR"}}' % unit_of("ranker-v2", 1).encode(),  # spec.assignment.unitKey
        b'{"attributes":{"country":"FR"}}',  # 422 neither unitId nor attributes.userId
        b'{"attributes":{"userId":7}}',  # 422 the unit key's attribute is not a string
        b'{"unitId":"%s","unitId":"x"}' % unit_of("control", 2).encode(),  # 422 duplicate key
        b'{"unitId":""}',  # 422 empty
        b'{"unit":"u"}',  # 422 unknown field
        b'{"unitId":"u","context":{"a":"b"}}',  # 422 not a number
        b'{"unitId":"\xff\xfe"}',  # 400 not UTF-8
        b"not json",  # 400
        b"[]",  # 400/422 not an object
        b'{"unitId":"' + b"x" * 1100 + b'"}',  # 413
    ]


def test_assign_on_the_connection_answers_what_the_app_answers(tmp_path: Path, run: Callable[[Any], Any]) -> None:
    variants = [VARIANTS[0], {"name": "bandit", "weight": 33, "payload": {"banner": "other"}}, VARIANTS[2]]
    path = write_experiment(tmp_path / "exp.yaml", variants=variants, assignment={"unitKey": "userId", "salt": SALT})
    answered = 0

    async def scenario() -> None:
        nonlocal answered
        async with (
            serving(path, tmp_path / "plain", max_body_bytes=1024) as (plain_runtime, _),
            serving(path, tmp_path / "direct", max_body_bytes=1024) as (runtime, _),
        ):
            plain_app, app = HttpApp(plain_runtime), HttpApp(runtime)
            assert app.direct_route is not None and app.direct_route.path == "/v1/assign"
            app._hot = _not_taken  # the connection answers without the app's route
            for body in bodies():
                expected = await serve(HttpToolsProtocol, plain_app, request(body))
                answer = await serve(GUARDED, app, request(body))
                assert answer == expected, body
                answered += expected[0].startswith(b"HTTP/1.1 200 ")
            assert answered == 5
            for _ in range(200):  # counted once committed, within the flush interval (50 ms)
                if sum(runtime.service.exposures.values()) + sum(plain_runtime.service.exposures.values()) >= 8:
                    break
                await asyncio.sleep(0.01)
            assert (
                runtime.service.exposures
                == plain_runtime.service.exposures
                == {
                    "control": 2,
                    "bandit": 0,
                    "ranker-v2": 2,
                }
            )
            for metrics in (runtime.metrics, plain_runtime.metrics):
                errors = metrics.exposition().decode()
                assert 'croupier_request_errors_total{code="PayloadTooLarge",path="/v1/assign"} 1.0' in errors
            served = runtime.served
        # stopped: the exposures the direct path logged are committed, once each
        database = experiment_database_path(tmp_path / "direct", served.namespace, served.name)
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT count(*) FROM exposures").fetchone() == (4,)

    run(scenario())


def test_a_policy_target_is_answered_from_its_own_task(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess], run: Callable[[Any], Any]
) -> None:
    policy = runtime_process(write_policy(tmp_path / "policy.yaml", name="banner")).start()
    path = write_experiment(tmp_path / "exp.yaml", variants=VARIANTS, assignment={"unitKey": "userId", "salt": SALT})
    nowhere = f"http://127.0.0.1:{free_port()}"

    async def scenario() -> None:
        async with (
            serving(path, tmp_path / "plain", policy_urls=[f"banner={policy.url}"]) as (plain_runtime, _),
            serving(path, tmp_path / "direct", policy_urls=[f"banner={policy.url}"]) as (runtime, _),
            serving(path, tmp_path / "gone", policy_urls=[f"banner={nowhere}"]) as (gone_runtime, _),
            serving(path, tmp_path / "gone-plain", policy_urls=[f"banner={nowhere}"]) as (gone_plain_runtime, _),
        ):
            plain_app, app = HttpApp(plain_runtime), HttpApp(runtime)
            app._hot = _not_taken
            body = b'{"unitId":"%s","context":{"level":2}}' % unit_of("bandit").encode()
            plain_head, plain_body = await serve(HttpToolsProtocol, plain_app, request(body))
            head, answer = await serve(GUARDED, app, request(body))
            assert plain_head.startswith(b"HTTP/1.1 200 ") and head.split(b"\r\n")[:2] == plain_head.split(b"\r\n")[:2]
            first, second = orjson.loads(plain_body), orjson.loads(answer)
            assert first["variant"] == second["variant"] == "bandit" and first.keys() == second.keys()
            assert first["decision"]["decisionId"] != second["decision"]["decisionId"]
            assert second["decision"]["policy"] == "banner" and second["counted"] is True
            for _ in range(200):  # counted once committed, within the flush interval
                if runtime.service.exposures["bandit"]:
                    break
                await asyncio.sleep(0.01)
            assert runtime.service.exposures["bandit"] == 1
            # An unreachable policy: the same 502, byte for byte (it names the URL), and no exposure.
            gone_app = HttpApp(gone_runtime)
            gone_app._hot = _not_taken
            expected = await serve(HttpToolsProtocol, HttpApp(gone_plain_runtime), request(body))
            refused = await serve(GUARDED, gone_app, request(body))
            assert refused == expected and refused[0].startswith(b"HTTP/1.1 502 ")
            assert b"TargetUnavailable" in refused[1] and nowhere.encode() in refused[1]
            assert gone_runtime.service.exposures["bandit"] == 0 and not gone_runtime.store.local_units

    run(scenario())
    import httpx  # noqa: PLC0415

    stats = httpx.get(f"{policy.url}/v1/stats", timeout=10).json()
    assert stats["totals"]["decisions"] == 2  # one decision through each path
