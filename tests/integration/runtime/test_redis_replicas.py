"""Two runtime processes sharing a real Redis: a reward accepted by one replica changes the other's decisions within
one second; rewards join and deduplicate across replicas; default rewards are assigned once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .conftest import RuntimeProcess, write_policy

WINDOW_SECONDS = 2


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[tuple[str, str]]:
    work: Path = tmp_path_factory.mktemp("replicas")
    policy = write_policy(
        work / "policy.yaml",
        name="shared",
        # Priors so that no arm counts as unexplored: greedy then follows the means, a tie until a reward.
        arms=[
            {"name": "blue", "prior": {"mean": 0.5, "weight": 1}},
            {"name": "green", "prior": {"mean": 0.5, "weight": 1}},
        ],
        algorithm={"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.0}},
        reward={"type": "Binary", "attributionWindowSeconds": WINDOW_SECONDS, "defaultReward": 0},
        serving={"replicas": 2},
        state={"backend": "Redis", "redis": {"url": "redis://example.invalid:6379/0"}},
    )
    # The URL comes from the environment, as the operator passes a Secret's URL; the spec's URL is never dialled.
    env = {"CROUPIER_RUNTIME_REDIS_URL": redis_url, "CROUPIER_RUNTIME_REDIS_SYNC_INTERVAL_MS": "100"}
    a = RuntimeProcess(policy, work / "a", env={**env, "CROUPIER_RUNTIME_REPLICA": "a"}).launch()
    b = RuntimeProcess(policy, work / "b", env={**env, "CROUPIER_RUNTIME_REPLICA": "b"}).launch()
    try:
        yield a.wait_ready().url, b.wait_ready().url
    finally:
        a.stop()
        b.stop()


def _settled(client: httpx.Client, timeout: float = 10.0) -> dict[str, int]:
    """Totals once every decision has its reward (real or default), as seen by this replica."""
    deadline = time.monotonic() + timeout
    while True:
        totals: dict[str, int] = client.get("/v1/stats").json()["totals"]
        if totals["rewards"] == totals["decisions"] or time.monotonic() > deadline:
            return totals
        time.sleep(0.1)


def test_a_reward_on_replica_b_changes_decisions_on_replica_a_within_a_second(replicas: tuple[str, str]) -> None:
    url_a, url_b = replicas
    with httpx.Client(base_url=url_a) as on_a, httpx.Client(base_url=url_b) as on_b:
        _settled(on_a)
        before = on_a.post("/v1/decide", json={}).json()
        assert before["probabilities"] == {"blue": 0.5, "green": 0.5}  # no data: a tie
        decision = on_a.post("/v1/decide", json={"candidates": ["green"]}).json()

        # The decision was made on A; B joins it through Redis (its record may still be on its way).
        accepted = on_b.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
        assert accepted.status_code == 200, accepted.text
        assert accepted.json()["accepted"] == 1
        acked_at = time.monotonic()

        while True:
            now = on_a.post("/v1/decide", json={}).json()
            if now["probabilities"]["green"] == 1.0:
                break
            assert time.monotonic() - acked_at < 1.0, f"replica A still decides with {now['probabilities']}"
            time.sleep(0.01)
        assert time.monotonic() - acked_at < 1.0

        unknown = on_a.post("/v1/rewards", json={"decisionId": "never-made", "reward": 1})
        assert (unknown.status_code, unknown.json()["field"]) == (404, "decisionId")

        # The same reward sent to A is a duplicate: one reward per decision across replicas.
        again = on_a.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
        assert again.json() == {
            "accepted": 0,
            "duplicates": 1,
            "results": [{"decisionId": decision["decisionId"], "outcome": "duplicate"}],
        }
        # Both replicas report the shared totals.
        time.sleep(0.3)
        for client in (on_a, on_b):
            stats = client.get("/v1/stats").json()
            assert stats["backend"] == "Redis"
            green = next(arm for arm in stats["arms"] if arm["name"] == "green")
            assert (green["rewards"], green["rewardSum"]) == (1, 1.0)


def test_expired_decisions_get_one_default_reward_across_replicas(replicas: tuple[str, str]) -> None:
    url_a, url_b = replicas
    with httpx.Client(base_url=url_a) as on_a, httpx.Client(base_url=url_b) as on_b:
        start = _settled(on_a)
        ids = [on_a.post("/v1/decide", json={}).json()["decisionId"] for _ in range(5)]
        ids += [on_b.post("/v1/decide", json={}).json()["decisionId"] for _ in range(5)]
        assert on_b.post("/v1/rewards", json={"decisionId": ids[0], "reward": 1}).status_code == 200
        time.sleep(WINDOW_SECONDS + 0.2)
        late = on_b.post("/v1/rewards", json={"decisionId": ids[1], "reward": 1})
        assert late.status_code == 409
        assert late.json()["error"] == "AttributionWindowExpired"
        end = _settled(on_a)
        assert {k: end[k] - start[k] for k in end} == {"decisions": 10, "rewards": 10, "defaultRewards": 9}
        time.sleep(1.2)  # more sweeps on both replicas: still exactly one reward per decision
        assert _settled(on_b) == end
