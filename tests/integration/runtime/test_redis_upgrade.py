"""A rolling upgrade in Redis mode: decision records written by a runtime that logged request and response JSON are
still joined by the structured runtime, and exported from its log."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest
from redis import Redis

from .conftest import RuntimeProcess, write_policy

pytestmark = pytest.mark.integration


def test_a_reward_for_a_decision_of_the_previous_record_layout_is_joined_and_exported(
    tmp_path: Path, redis_url: str, runtime_process: Callable[..., RuntimeProcess]
) -> None:
    policy = write_policy(
        tmp_path / "policy.yaml",
        name="upgrade",
        state={"backend": "Redis", "redis": {"url": redis_url}},
    )
    runtime = runtime_process(policy, tmp_path / "state").launch().wait_ready()
    now = time.time()
    decision_id = "0000000000000abcdef00000001"  # another replica's (another process prefix)
    legacy = {
        "arm": "green",
        "ts": now,
        "expires": now + 3600,
        "features": None,
        "request": {"unitId": "player-7"},
        "response": {
            "decisionId": decision_id,
            "arm": "green",
            "probabilities": {"blue": 0.25, "green": 0.5, "red": 0.25},
            "policyVersion": "g1-old",
        },
    }
    with Redis.from_url(redis_url) as redis:
        redis.set(f"croupier:games:upgrade:d:{decision_id}", orjson.dumps(legacy), ex=3600)
    with httpx.Client(base_url=runtime.url) as client:
        reward = client.post("/v1/rewards", json={"decisionId": decision_id, "reward": 1})
        assert reward.status_code == 200, reward.text
        assert reward.json()["accepted"] == 1
        again = client.post("/v1/rewards", json={"decisionId": decision_id, "reward": 1})
        assert again.json()["duplicates"] == 1
        own = client.post("/v1/decide", json={"unitId": "player-8"}).json()
        assert client.post("/v1/rewards", json={"decisionId": own["decisionId"], "reward": 0}).status_code == 200
    runtime.stop()
    out = tmp_path / "decisions.jsonl"
    database = tmp_path / "state" / "games.upgrade.sqlite3"
    export = [sys.executable, "-m", "croupier.runtime.cli", "export", "--database", str(database)]
    subprocess.run([*export, "--output", str(out)], check=True, capture_output=True)
    lines = {line["decisionId"]: line for line in map(orjson.loads, out.read_bytes().splitlines())}
    assert set(lines) == {decision_id, own["decisionId"]}
    old = lines[decision_id]
    assert (old["arm"], old["propensity"], old["unitId"], old["policyVersion"]) == ("green", 0.5, "player-7", "g1-old")
    assert (old["reward"], old["defaultReward"]) == (1.0, False)
    assert lines[own["decisionId"]]["probabilities"] == own["probabilities"]
