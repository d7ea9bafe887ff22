"""Kill an experiment runtime with SIGKILL in the middle of an outcome load: every acknowledged outcome survives, and
once every outcome is sent again (a client's retries), each is counted exactly once. The same guarantee as rewards
(tests/integration/runtime/test_durability.py)."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from .conftest import ExperimentProcess, write_experiment

FLUSH_BOUND_SECONDS = 0.25


async def _load_then_kill(runtime: ExperimentProcess, outcomes: list[dict[str, object]]) -> set[str]:
    """Send outcomes from 16 workers and SIGKILL the runtime once a quarter is acknowledged (others in flight)."""
    acked: set[str] = set()
    queue = list(outcomes)
    killed = asyncio.Event()

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        while queue and not killed.is_set():
            batch = [queue.pop() for _ in range(min(len(queue), 1 + n % 5))]
            try:
                response = await client.post("/v1/outcomes", json={"outcomes": batch})
            except httpx.TransportError:
                return
            if response.status_code == 200 and not killed.is_set():
                assert response.json()["accepted"] == len(batch), response.text
                acked.update(str(o["eventId"]) for o in batch)
                if len(acked) >= len(outcomes) // 4:
                    runtime.kill()
                    killed.set()
        if not killed.is_set():
            runtime.kill()
            killed.set()

    async with httpx.AsyncClient(base_url=runtime.url, limits=httpx.Limits(max_connections=32), timeout=30) as client:
        await asyncio.gather(*(worker(client, i) for i in range(16)))
    return acked


def test_acknowledged_outcomes_survive_kill_9_and_count_once(
    tmp_path: Path, experiment_process: Callable[..., ExperimentProcess]
) -> None:
    path = write_experiment(tmp_path / "exp.yaml")
    state = tmp_path / "state"
    runtime = experiment_process(path, state).start()
    units = [f"u{i}" for i in range(300)]
    with httpx.Client(base_url=runtime.url, timeout=30) as client:
        for unit in units:
            assert client.post("/v1/assign", json={"unitId": unit}).status_code == 200
    time.sleep(FLUSH_BOUND_SECONDS)
    rng = random.Random(5)
    outcomes: list[dict[str, object]] = [
        {"unitId": rng.choice(units), "metric": "revenue", "value": rng.randint(-20, 100), "eventId": f"ev-{i}"}
        for i in range(3000)
    ]
    acked = asyncio.run(_load_then_kill(runtime, outcomes))
    assert runtime.process is not None and runtime.process.returncode == -9
    assert 100 <= len(acked) < len(outcomes), len(acked)

    restarted = experiment_process(path, state).start()
    with httpx.Client(base_url=restarted.url, timeout=30) as client:
        stats = client.get("/v1/stats").json()
        assert stats["totalExposures"] == len(units)  # exposures older than the flush bound are durable
        by_id = {str(o["eventId"]): o for o in outcomes}
        # Every acknowledged outcome is stored: sending it again is a duplicate.
        again = [by_id[e] for e in sorted(acked)]
        for start in range(0, len(again), 1000):
            response = client.post("/v1/outcomes", json={"outcomes": again[start : start + 1000]})
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == 0
        # Every outcome sent once more: the stored ones are duplicates, the rest are counted now; in the end each
        # outcome is in the sums exactly once.
        for start in range(0, len(outcomes), 1000):
            response = client.post("/v1/outcomes", json={"outcomes": outcomes[start : start + 1000]})
            assert response.status_code == 200, response.text
        stats = client.get("/v1/stats").json()
    revenue = [m for v in stats["variants"] for m in v["metrics"] if m["name"] == "revenue"]
    assert sum(m["sum"] for m in revenue) == sum(int(str(o["value"])) for o in outcomes)
    per_unit: dict[str, int] = {}
    for o in outcomes:
        per_unit[str(o["unitId"])] = per_unit.get(str(o["unitId"]), 0) + int(str(o["value"]))
    assert sum(m["sumSquares"] for m in revenue) == sum(v * v for v in per_unit.values())
