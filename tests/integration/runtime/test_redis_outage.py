"""Redis goes away under a running replica: rewards answer 503 (never a false acknowledgement), readiness fails,
decisions keep being served and logged locally, and everything recovers when Redis is back."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import parse_policy
from croupier.runtime.settings import RuntimeSettings

from .conftest import server_port, start_redis


def test_rewards_fail_loudly_while_redis_is_down_and_recover(tmp_path: Path) -> None:
    port = server_port()
    redis = start_redis(port, tmp_path)
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "outage", "namespace": "games"},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "green"}],
            "algorithm": {"type": "EpsilonGreedy"},
            "serving": {"replicas": 2},
            "state": {"backend": "Redis", "redis": {"url": f"redis://127.0.0.1:{port}/0"}},
        },
    }
    served = parse_policy(document)

    async def scenario() -> None:
        metrics = RuntimeMetrics()
        runtime = Runtime(RuntimeSettings(state_dir=tmp_path / "state", seed=1), served, metrics=metrics)
        await runtime.start()
        transport = httpx.ASGITransport(app=HttpApp(runtime))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
                decision = (await client.post("/v1/decide", json={})).json()
                await asyncio.sleep(0.2)
                redis.kill()
                redis.wait()

                failed = await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
                assert failed.status_code == 503, failed.text
                assert failed.json()["error"] == "StoreError"
                served_meanwhile = await client.post("/v1/decide", json={})
                assert served_meanwhile.status_code == 200
                await asyncio.sleep(0.3)
                assert (await client.get("/readyz")).status_code == 503
                assert 'croupier_store_errors_total{operation="redis_' in (await client.get("/metrics")).text

                restarted = start_redis(port, tmp_path)  # an empty Redis: the shared records are gone
                try:
                    deadline = time.monotonic() + 10
                    while (await client.get("/readyz")).status_code != 200:
                        assert time.monotonic() < deadline, "the runtime did not recover"
                        await asyncio.sleep(0.1)
                    fresh = (await client.post("/v1/decide", json={})).json()
                    await asyncio.sleep(0.2)
                    ok = await client.post("/v1/rewards", json={"decisionId": fresh["decisionId"], "reward": 1})
                    assert ok.status_code == 200, ok.text
                    assert ok.json()["accepted"] == 1
                finally:
                    restarted.kill()
                    restarted.wait()
        finally:
            await runtime.stop()

    async def bounded() -> None:
        # A hang would otherwise wait for pytest's session timeout; this fails fast, at the await that hung.
        async with asyncio.timeout(60):
            await scenario()

    asyncio.run(bounded())
