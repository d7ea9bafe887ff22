"""Two experiment runtime processes sharing a real Redis: a unit is exposed once whichever replica assigns it, a
sticky unit keeps its variant on the other replica, outcomes join and deduplicate across replicas, and both replicas
report the same counts. A Redis outage is answered 503 (never a false acknowledgement) until Redis is back."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from croupier.api.assignment import assign

from ..conftest import server_port, start_redis
from .conftest import ExperimentProcess, serving, write_experiment

SALT = "checkout-2026"
WEIGHTS = [("control", 50), ("discount", 50)]


@pytest.fixture
def replicas(tmp_path: Path, redis_url: str) -> Iterator[tuple[str, str]]:
    path = write_experiment(tmp_path / "exp.yaml", name=f"shared-{random.randrange(1 << 30)}")
    env = {"CROUPIER_RUNTIME_REDIS_URL": redis_url, "CROUPIER_RUNTIME_REDIS_SYNC_INTERVAL_MS": "100"}
    a = ExperimentProcess(path, tmp_path / "a", env={**env, "CROUPIER_RUNTIME_REPLICA": "a"}).launch()
    b = ExperimentProcess(path, tmp_path / "b", env={**env, "CROUPIER_RUNTIME_REPLICA": "b"}).launch()
    try:
        yield a.wait_ready(90).url, b.wait_ready(90).url  # generous: a loaded 2-core CI machine starts them slowly
    finally:
        a.stop()
        b.stop()


def _stats(url: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/v1/stats", timeout=10).json())


def _same_on_both(url_a: str, url_b: str, timeout: float = 5.0) -> dict[str, Any]:
    """Both replicas' stats once they agree (each reads the shared totals every 100 ms)."""
    deadline = time.monotonic() + timeout
    while True:
        a, b = _stats(url_a), _stats(url_b)
        a.pop("replica"), b.pop("replica")
        if a == b or time.monotonic() > deadline:
            assert a == b
            return a
        time.sleep(0.05)


def test_replicas_share_exposures_and_outcomes(replicas: tuple[str, str]) -> None:
    url_a, url_b = replicas
    units = [f"u{i}" for i in range(100)]

    async def assign_on_both() -> None:
        async with httpx.AsyncClient(timeout=30) as client:
            # Every unit assigned on both replicas at once: one exposure each, and the same variant.
            answers = await asyncio.gather(
                *(client.post(f"{url}/v1/assign", json={"unitId": u}) for u in units for url in (url_a, url_b))
            )
            for i, unit in enumerate(units):
                first, second = answers[2 * i].json(), answers[2 * i + 1].json()
                assert first["variant"] == second["variant"] == assign(unit, SALT, WEIGHTS)
                assert first["counted"] and second["counted"]

    asyncio.run(assign_on_both())
    stats = _same_on_both(url_a, url_b)
    assert stats["backend"] == "Redis"
    assert stats["totalExposures"] == len(units)
    expected = {name: sum(1 for u in units if assign(u, SALT, WEIGHTS) == name) for name, _ in WEIGHTS}
    assert {v["name"]: v["exposures"] for v in stats["variants"]} == expected

    outcomes = [{"unitId": u, "metric": "converted", "value": 1, "eventId": f"c-{u}"} for u in units[:30]]
    outcomes += [{"unitId": u, "metric": "revenue", "value": 10.0, "eventId": f"r-{u}"} for u in units[:50]]
    on_a = httpx.post(f"{url_a}/v1/outcomes", json={"outcomes": outcomes[:40]}, timeout=30).json()
    on_b = httpx.post(f"{url_b}/v1/outcomes", json={"outcomes": outcomes}, timeout=30).json()  # 40 retries
    assert on_a["accepted"] == 40
    assert on_b["accepted"] == len(outcomes) - 40
    assert sum(r["outcome"] == "duplicate" for r in on_b["results"]) == 40
    stats = _same_on_both(url_a, url_b)
    converted = sum(m["sum"] for v in stats["variants"] for m in v["metrics"] if m["name"] == "converted")
    revenue = sum(m["sum"] for v in stats["variants"] for m in v["metrics"] if m["name"] == "revenue")
    assert (converted, revenue) == (30, 500.0)
    # A unit exposed through replica B joins on replica A.
    late_unit = httpx.post(f"{url_b}/v1/assign", json={"unitId": "late-comer"}, timeout=30).json()
    joined = httpx.post(f"{url_a}/v1/outcomes", json={"unitId": "late-comer", "metric": "revenue", "value": 3}).json()
    assert joined["accepted"] == 1, joined
    stats = _same_on_both(url_a, url_b)
    variant = next(v for v in stats["variants"] if v["name"] == late_unit["variant"])
    assert variant["exposures"] == expected[late_unit["variant"]] + 1

    # Local assignment: an exposure reported to A, then the same batch retried on B, counts once; an outcome sent to
    # B (twice, the same eventId) for a unit exposed through A counts once; both replicas report the same sums.
    local = [{"unitId": f"sdk-{i}", "variant": assign(f"sdk-{i}", SALT, WEIGHTS)} for i in range(20)]
    first = httpx.post(f"{url_a}/v1/exposures", json={"exposures": local}, timeout=30).json()
    again = httpx.post(f"{url_b}/v1/exposures", json={"exposures": local}, timeout=30).json()
    assert first["recorded"] == 20 and again["recorded"] == 0, (first, again)
    assert {r["outcome"] for r in again["results"]} == {"duplicate"}
    sdk_outcome = {"unitId": "sdk-0", "metric": "converted", "value": 1, "eventId": "sdk-0-converted"}
    assert httpx.post(f"{url_b}/v1/outcomes", json=sdk_outcome, timeout=30).json()["accepted"] == 1
    assert httpx.post(f"{url_b}/v1/outcomes", json=sdk_outcome, timeout=30).json()["accepted"] == 0
    assert httpx.post(f"{url_a}/v1/outcomes", json=sdk_outcome, timeout=30).json()["accepted"] == 0
    stats = _same_on_both(url_a, url_b)
    assert stats["totalExposures"] == len(units) + 1 + 20
    converted = sum(m["sum"] for v in stats["variants"] for m in v["metrics"] if m["name"] == "converted")
    assert converted == 31


def test_redis_outage_answers_503_never_a_false_acknowledgement_and_recovers(tmp_path: Path) -> None:
    port = server_port()
    redis = start_redis(port, tmp_path)
    path = write_experiment(tmp_path / "exp.yaml", name="outage")

    async def scenario() -> None:
        async with serving(path, tmp_path / "state", redis_url=f"redis://127.0.0.1:{port}/0") as (_, client):
            deadline = time.monotonic() + 30
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "never ready"
                await asyncio.sleep(0.05)
            before = await client.post("/v1/assign", json={"unitId": "before"})
            assert before.status_code == 200, before.text
            redis.kill()
            redis.wait()
            for body, route in [
                ({"unitId": "during"}, "/v1/assign"),
                ({"unitId": "before", "metric": "revenue", "value": 1, "eventId": "e1"}, "/v1/outcomes"),
                ({"unitId": "x", "variant": "control"}, "/v1/exposures"),
            ]:
                failed = await client.post(route, json=body)
                assert failed.status_code == 503, (route, failed.text)
                assert failed.json()["error"] == "StoreError"
            await asyncio.sleep(0.3)
            assert (await client.get("/readyz")).status_code == 503
            restarted = start_redis(port, tmp_path)
            try:
                deadline = time.monotonic() + 30
                while (await client.get("/readyz")).status_code != 200:
                    assert time.monotonic() < deadline, "never ready again"
                    await asyncio.sleep(0.1)
                again = await client.post("/v1/assign", json={"unitId": "after"})
                assert again.status_code == 200 and again.json()["counted"] is True
            finally:
                restarted.kill()
                restarted.wait()

    async def bounded() -> None:
        async with asyncio.timeout(120):  # a hang fails here, with its stack, not at the suite's timeout
            await scenario()

    started = time.monotonic()
    asyncio.run(bounded())
    assert time.monotonic() - started < 110, "the scenario (or the runtime's shutdown) hung"
