"""The raw ASGI adapter: routing, error mapping, the served OpenAPI document and metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from croupier.api import wire

from .conftest import CONTEXTUAL, running, served_policy

pytestmark = pytest.mark.unit


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
