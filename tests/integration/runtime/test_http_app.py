"""The raw ASGI adapter: routing, error mapping, the served OpenAPI document and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from support.policies import CONTEXTUAL, served_policy

from croupier.api import wire
from croupier.runtime.http.app import HttpApp

from .conftest import running

pytestmark = pytest.mark.integration


def test_errors_are_json_with_a_code_and_change_nothing(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path, max_body_bytes=2048) as (_runtime, client):
            cases = [
                (await client.post("/v1/decide", content=b"{not json"), 400, "MalformedJson"),
                (await client.post("/v1/decide", json={"candidates": ["pink"]}), 422, "UnknownArm"),
                (await client.post("/v1/decide", content=b" " * 5000 + b"{}"), 413, "PayloadTooLarge"),
                (await client.get("/v1/decide"), 405, "MethodNotAllowed"),
                (await client.post("/v2/decide", json={}), 404, "NotFound"),
                (await client.post("/v1/rewards", json={"decisionId": "x", "reward": 2}), 422, "InvalidReward"),
            ]
            for response, status, code in cases:
                assert response.status_code == status, response.text
                error = wire.ErrorResponse.model_validate(response.json())
                assert (error.status, error.error) == (status, code)
                assert error.message
            assert cases[3][0].headers["allow"] == "POST"
            stats = (await client.get("/v1/stats")).json()
            assert stats["totals"]["decisions"] == 0
            metrics = (await client.get("/metrics")).text
            assert 'croupier_request_errors_total{code="UnknownArm",path="/v1/decide"} 1.0' in metrics

    run(scenario())


def test_health_readiness_and_metrics(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (_runtime, client):
            assert (await client.get("/healthz")).json() == {"status": "ok"}
            assert (await client.get("/readyz")).status_code == 200
            decision = (await client.post("/v1/decide", json={})).json()
            await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
            text = (await client.get("/metrics")).text
            for name in (
                "croupier_decisions_total",
                "croupier_decide_duration_seconds_bucket",
                "croupier_rewards_total",
                "croupier_reward_join_misses_total",
                "croupier_store_errors_total",
                "croupier_store_commit_duration_seconds_bucket",
                "croupier_decision_log_backlog",
            ):
                assert name in text
            assert f'croupier_decisions_total{{arm="{decision["arm"]}"}} 1.0' in text

    run(scenario())


def test_the_openapi_document_describes_the_served_policy(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(**CONTEXTUAL), tmp_path) as (runtime, client):
            document = (await client.get("/openapi.json")).json()
            assert set(document["paths"]) >= {"/v1/decide", "/v1/rewards", "/v1/stats", "/healthz", "/readyz"}
            decide = document["components"]["schemas"]["DecideRequest"]
            assert decide["properties"]["candidates"]["anyOf"][0]["items"]["enum"] == ["blue", "green", "red"]
            assert decide["required"] == ["context"]
            assert document["info"]["version"] == runtime.served.version

    run(scenario())


async def _call(app: HttpApp, messages: list[dict[str, Any]], path: str = "/v1/decide") -> tuple[int, bytes]:
    """One raw ASGI request: the body arrives in the given messages, in order."""
    queue = list(messages)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": []}
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_decide_bodies_in_several_messages_and_errors_on_the_fast_route(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path, max_body_bytes=1024) as (runtime, _client):
            app = HttpApp(runtime)
            chunks = [
                {"type": "http.request", "body": b'{"unitId": ', "more_body": True},
                {"type": "http.request", "body": b'"u1"}', "more_body": False},
            ]
            status, body = await _call(app, chunks)
            assert status == 200 and orjson.loads(body)["arm"] in {"blue", "green", "red"}
            status, body = await _call(app, [{"type": "http.request", "body": b'{"candidates": ["pink"]}'}])
            assert status == 422 and orjson.loads(body)["error"] == "UnknownArm"
            too_long = [{"type": "http.request", "body": b" " * 600, "more_body": True}] * 2 + [
                {"type": "http.request", "body": b"{}"}
            ]
            status, body = await _call(app, too_long)
            assert status == 413 and orjson.loads(body)["error"] == "PayloadTooLarge"
            assert runtime.service.stats()["totals"]["decisions"] == 1

    run(scenario())


def test_an_unexpected_failure_is_a_logged_500_on_both_routes(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (runtime, _client):

            def broken(body: bytes) -> bytes:
                raise RuntimeError("boom")

            runtime.service.decide = broken  # type: ignore[method-assign]
            app = HttpApp(runtime)
            whole = [{"type": "http.request", "body": b"{}"}]
            parts = [{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.request", "body": b"}"}]
            for messages in (whole, parts):  # the decide route, then the general router
                status, body = await _call(app, messages)
                assert status == 500
                assert "internal error" in orjson.loads(body)["message"]

    run(scenario())


@pytest.mark.parametrize(
    "body",
    [
        b'{"unitId":"\xff\xfe"}',
        b'{"context":{"\xff":1}}',
        b'{"candidates":["\xc3"]}',
    ],
)
def test_a_body_that_is_not_utf8_is_a_400_json_error_on_both_routes(tmp_path: Path, run: Any, body: bytes) -> None:
    async def scenario() -> None:
        async with running(served_policy(**CONTEXTUAL), tmp_path) as (runtime, client):
            for path in ("/v1/decide", "/v1/rewards"):
                response = await client.post(path, content=body)
                assert response.status_code == 400, response.text
                error = wire.ErrorResponse.model_validate(response.json())
                assert (error.status, error.error) == (400, "MalformedJson")
                assert "UTF-8" in error.message
            assert runtime.service.stats()["totals"]["decisions"] == 0

    run(scenario())


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/rewards", b'{"decisionId":"d1","reward":1,"reward":0}', "reward"),
        ("/v1/rewards", b'{"rewards":[{"decisionId":"d1","reward":1,"reward":0}]}', "rewards[0].reward"),
        ("/v1/rewards", b'{"rewards":[],"rewards":[{"decisionId":"d1","reward":1}]}', "rewards"),
        ("/v1/decide", b'{"unitId":"a","unitId":"b"}', "unitId"),
        ("/v1/decide", b'{"context":{"level":1,"spend":2,"level":3}}', "context.level"),
        ("/v1/decide", b'{"context":[1,2],"candidates":["blue"],"context":{"level":1,"spend":2}}', "context"),
        ("/v1/decide", b'{"unitId":"a:b","candidates":["red"],"candidates":["blue"]}', "candidates"),
    ],
)
def test_duplicate_keys_are_refused_naming_the_key(
    tmp_path: Path, run: Any, path: str, body: bytes, field: str
) -> None:
    async def scenario() -> None:
        async with running(served_policy(**CONTEXTUAL), tmp_path) as (runtime, client):
            response = await client.post(path, content=body)
            assert response.status_code == 422, response.text
            error = wire.ErrorResponse.model_validate(response.json())
            assert (error.status, error.error, error.field) == (422, "DuplicateField", field)
            assert f"duplicate key {field.rsplit('.', 1)[-1]!r}" in error.message
            assert runtime.service.stats()["totals"]["decisions"] == 0
            # The same bodies without the repetition are served.
            fine = {
                "/v1/decide": b'{"unitId":"a:b","context":{"level":1,"spend":2},"candidates":["red"]}',
                "/v1/rewards": b'{"rewards":[{"decisionId":"nope","reward":1}]}',
            }[path]
            assert (await client.post(path, content=fine)).status_code in (200, 404)

    run(scenario())
