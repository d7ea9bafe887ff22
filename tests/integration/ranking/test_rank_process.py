"""`POST /v1/rank` against a real `croupier-runtime` process: position propensities pinned against frequencies,
rewards per position reaching the learner and the export, and bad `k` refused without logging anything."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from itertools import permutations
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from integration.runtime.conftest import RuntimeProcess, write_policy
from scipy import stats

from croupier.api import wire

pytestmark = pytest.mark.integration

# Softmax over prior means at temperature 0.1: P ∝ exp(mean / 0.1), about 0.45, 0.25, 0.15, 0.10, 0.05; no reward
# arrives, so every request is ranked from the same vector.
SOFTMAX = {
    "arms": [
        {"name": name, "prior": {"mean": mean, "weight": 10}}
        for name, mean in [("a", 0.5), ("b", 0.44), ("c", 0.39), ("d", 0.35), ("e", 0.28)]
    ],
    "algorithm": {"type": "Softmax", "softmax": {"temperature": 0.1}},
    "reward": {"type": "Binary", "attributionWindowSeconds": 3600},
}


def _started(tmp_path: Path, name: str, **spec: Any) -> RuntimeProcess:
    policy = write_policy(tmp_path / f"{name}.yaml", name=name, **spec)
    return RuntimeProcess(policy, tmp_path / f"state-{name}", args=["--seed", "11"]).start()


def _export(runtime: RuntimeProcess) -> list[dict[str, Any]]:
    command = [
        sys.executable, "-m", "croupier.runtime.cli", "export",
        "--policy", str(runtime.policy), "--state-dir", str(runtime.state_dir),
    ]  # fmt: skip
    out = subprocess.run(command, check=True, capture_output=True, timeout=60).stdout
    return [orjson.loads(line) for line in out.splitlines()]


def test_position_propensities_match_the_frequencies_of_the_slates_served(tmp_path: Path) -> None:
    runtime = _started(tmp_path, "softmax", **SOFTMAX)
    n = 3000
    try:
        with httpx.Client(base_url=runtime.url, timeout=10) as client:
            slates = [client.post(wire.RANK_PATH, json={"k": 3}).json()["slate"] for _ in range(n)]
    finally:
        runtime.stop()
    p = slates[0][0]["probabilities"]
    arms = sorted(p)
    assert p["a"] > p["b"] > p["c"] > p["d"] > p["e"] > 0.03  # a non-uniform vector
    # Every propensity is the sequential-sampling rule applied to this vector (no rewards: the vector never moves).
    for slate in slates:
        assert [position["position"] for position in slate] == [1, 2, 3]
        placed: list[str] = []
        for position in slate:
            left = [arm for arm in arms if arm not in placed]
            mass = sum(p[arm] for arm in left)
            assert position["probabilities"] == pytest.approx({arm: p[arm] / mass for arm in left}, rel=1e-12)
            assert position["propensity"] == position["probabilities"][position["arm"]]
            placed.append(position["arm"])
        assert len(set(placed)) == 3
    # Frequencies: each request is an independent draw, so the top two positions as an ordered pair and the third
    # position's arm are categorical with the probabilities the rule gives (Pearson chi-square; a seeded runtime).
    pairs = Counter((slate[0]["arm"], slate[1]["arm"]) for slate in slates)
    cells = list(permutations(arms, 2))
    expected = [n * p[a] * p[b] / (1 - p[a]) for a, b in cells]
    pair_test = stats.chisquare([pairs[cell] for cell in cells], expected)
    third = Counter(slate[2]["arm"] for slate in slates)
    third_probability = {
        c: sum(p[a] * p[b] / (1 - p[a]) * p[c] / (1 - p[a] - p[b]) for a, b in cells if c not in (a, b)) for c in arms
    }
    assert sum(third_probability.values()) == pytest.approx(1.0)
    third_test = stats.chisquare([third[c] for c in arms], [n * third_probability[c] for c in arms])
    assert pair_test.pvalue > 1e-3, (pairs, expected)
    assert third_test.pvalue > 1e-3, (third, third_probability)


def test_rewards_per_position_reach_the_learner_and_the_export(tmp_path: Path) -> None:
    runtime = _started(
        tmp_path,
        "thompson",
        arms=[{"name": "blue"}, {"name": "green"}, {"name": "red"}],
        exploration={"minProbability": 0.05},
    )
    try:
        with httpx.Client(base_url=runtime.url, timeout=10) as client:
            answer = client.post(wire.RANK_PATH, json={"unitId": "p7", "k": 3}).json()
            slate = wire.RankResponse.model_validate(answer)
            clicked, skipped = slate.slate[1], slate.slate[2]
            rewards = {"rewards": [{"decisionId": clicked.decision_id, "reward": 1}]}
            rewards["rewards"].append({"decisionId": skipped.decision_id, "reward": 0})
            assert client.post(wire.REWARDS_PATH, json=rewards).json()["accepted"] == 2
            again = client.post(wire.REWARDS_PATH, json={"decisionId": clicked.decision_id, "reward": 1}).json()
            assert again["duplicates"] == 1
            arms = {arm["name"]: arm for arm in client.get(wire.STATS_PATH).json()["arms"]}
    finally:
        runtime.stop()
    # The learner got a click for the arm at position 2 and a miss for the arm at position 3 (Beta(1, 1) priors).
    assert (arms[clicked.arm]["rewards"], arms[clicked.arm]["rewardSum"]) == (1, 1.0)
    assert arms[clicked.arm]["posterior"]["alpha"] == 2.0
    assert (arms[skipped.arm]["rewards"], arms[skipped.arm]["rewardSum"]) == (1, 0.0)
    assert arms[skipped.arm]["posterior"]["beta"] == 2.0
    assert sum(arm["pulls"] for arm in arms.values()) == 3  # one decision per position
    lines = {line["decisionId"]: line for line in _export(runtime)}
    assert len(lines) == 3
    for position in slate.slate:
        line = lines[position.decision_id]
        assert (line["slateId"], line["position"], line["arm"]) == (slate.slate_id, position.position, position.arm)
        assert line["propensity"] == position.propensity
        assert {arm: v for arm, v in line["probabilities"].items() if v > 0} == position.probabilities
        assert line["unitId"] == "p7"
    assert lines[clicked.decision_id]["reward"] == 1.0
    assert lines[skipped.decision_id]["reward"] == 0.0
    assert lines[slate.slate[0].decision_id]["reward"] is None
    # Position 2 was drawn from the arms not placed above it: the export's candidates say so.
    assert sorted(lines[clicked.decision_id]["candidates"]) == sorted(clicked.probabilities)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "MissingField"),
        ({"k": 0}, "InvalidField"),
        ({"k": 6}, "InvalidField"),
        ({"k": 3, "candidates": ["a", "b"]}, "InvalidField"),
        ({"k": -1}, "InvalidField"),
        ({"k": 2.5}, "InvalidField"),
        ({"k": True}, "InvalidField"),
        ({"k": "3"}, "InvalidField"),
        ({"k": None}, "InvalidField"),
    ],
)
def test_a_bad_k_is_refused_naming_it_and_nothing_is_logged(
    tmp_path: Path, body: dict[str, Any], code: str, k_runtime: RuntimeProcess
) -> None:
    with httpx.Client(base_url=k_runtime.url, timeout=10) as client:
        before = client.get(wire.STATS_PATH).json()["totals"]["decisions"]
        response = client.post(wire.RANK_PATH, json=body)
        assert response.status_code == 422, response.text
        error = wire.ErrorResponse.model_validate(response.json())
        assert (error.error, error.field) == (code, "k")
        assert client.get(wire.STATS_PATH).json()["totals"]["decisions"] == before
        assert client.post(wire.RANK_PATH, json={"k": 5}).status_code == 200  # the same runtime ranks all five


@pytest.fixture(scope="module")
def k_runtime(tmp_path_factory: pytest.TempPathFactory) -> Any:
    directory = tmp_path_factory.mktemp("rank-k")
    runtime = _started(directory, "k", **SOFTMAX)
    yield runtime
    runtime.stop()
