"""Variants that target a DecisionPolicy (a real policy runtime process answers the decision, and its reward reaches
that policy) or a ModelDeployment version (the route the model router honours); an unreachable policy is a clear
502 naming the variant, the policy and its URL."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from croupier.api.assignment import assign

from ..conftest import RuntimeProcess, free_port, write_policy
from .conftest import ExperimentProcess, write_experiment

VARIANTS = [
    {"name": "control", "weight": 34, "payload": {"banner": "static"}},
    {"name": "bandit", "weight": 33, "decisionPolicyRef": {"name": "banner"}},
    {"name": "ranker-v2", "weight": 33, "modelDeploymentRef": {"name": "ranker", "version": 2}},
]
WEIGHTS = [(v["name"], int(str(v["weight"]))) for v in VARIANTS]
SALT = "targets"


def _unit_of(variant: str) -> str:
    return next(f"user-{i}" for i in range(10_000) if assign(f"user-{i}", SALT, WEIGHTS) == variant)


def test_policy_target_decides_through_the_policy_runtime(
    tmp_path: Path,
    runtime_process: Callable[..., RuntimeProcess],
    experiment_process: Callable[..., ExperimentProcess],
) -> None:
    policy = runtime_process(write_policy(tmp_path / "policy.yaml", name="banner")).start()
    path = write_experiment(tmp_path / "exp.yaml", variants=VARIANTS, assignment={"unitKey": "userId", "salt": SALT})
    experiment = experiment_process(path, args=["--policy-url", f"banner={policy.url}"]).start()
    with httpx.Client(timeout=30) as client:
        unit = _unit_of("bandit")
        answer = client.post(f"{experiment.url}/v1/assign", json={"unitId": unit}).json()
        assert answer["variant"] == "bandit"
        decision = answer["decision"]
        assert decision["policy"] == "banner"
        assert decision["arm"] in {"blue", "green", "red"}
        assert abs(sum(decision["probabilities"].values()) - 1) < 1e-9
        # The decision is the policy's own: its reward is accepted there and counted in its statistics.
        reward = client.post(f"{policy.url}/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
        assert reward.status_code == 200 and reward.json()["accepted"] == 1, reward.text
        stats = client.get(f"{policy.url}/v1/stats").json()
        assert stats["totals"] == {"decisions": 1, "rewards": 1, "defaultRewards": 0}

        model = client.post(f"{experiment.url}/v1/assign", json={"unitId": _unit_of("ranker-v2")}).json()
        assert model["model"] == {"name": "ranker", "version": 2, "header": "x-croupier-model-version", "value": "2"}
        static = client.post(f"{experiment.url}/v1/assign", json={"unitId": _unit_of("control")}).json()
        assert static["payload"] == {"banner": "static"}


def test_unreachable_policy_is_a_clear_error(
    tmp_path: Path, experiment_process: Callable[..., ExperimentProcess]
) -> None:
    path = write_experiment(tmp_path / "exp.yaml", variants=VARIANTS, assignment={"unitKey": "userId", "salt": SALT})
    nowhere = f"http://127.0.0.1:{free_port()}"
    experiment = experiment_process(path, args=["--policy-url", f"banner={nowhere}"]).start()
    response = httpx.post(f"{experiment.url}/v1/assign", json={"unitId": _unit_of("bandit")}, timeout=30)
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "TargetUnavailable"
    assert "variant 'bandit'" in body["message"] and "DecisionPolicy 'banner'" in body["message"]
    assert nowhere in body["message"]
    # The other variants still serve.
    ok = httpx.post(f"{experiment.url}/v1/assign", json={"unitId": _unit_of("control")}, timeout=30)
    assert ok.status_code == 200
    # Only the unit that was served something is exposed.
    deadline = time.monotonic() + 5
    while httpx.get(f"{experiment.url}/v1/stats").json()["totalExposures"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.2)
    stats = httpx.get(f"{experiment.url}/v1/stats").json()
    assert {v["name"]: v["exposures"] for v in stats["variants"]} == {"control": 1, "bandit": 0, "ranker-v2": 0}
