"""A decision log in the export's JSON lines, simulated: a floored logging policy over three arms, a context of two
named features, Bernoulli rewards whose rate depends on the arm and the context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml

ARMS = ["blue", "green", "red"]


def simulated_lines(n: int = 600, seed: int = 3, *, unrewarded: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        level, spend = rng.normal(size=2)
        logits = np.array([0.5, 0.0, -0.5]) + 0.3 * level
        p = np.exp(logits) / np.exp(logits).sum()
        p = 0.85 * p + 0.05  # a floor of 0.05 per arm
        arm = int(rng.choice(3, p=p))
        rate = [0.3 + 0.2 * (level > 0), 0.5, 0.2 + 0.4 * (spend > 0)][arm]
        reward = float(rng.random() < rate)
        lines.append(
            {
                "decisionId": f"d{i:05d}",
                "timestamp": 1_700_000_000.0 + i,
                "unitId": None,
                "context": {"level": float(level), "spend": float(spend)},
                "candidates": None,
                "arm": ARMS[arm],
                "probabilities": dict(zip(ARMS, p.tolist(), strict=True)),
                "propensity": float(p[arm]),
                "policyVersion": "g1-abc",
                "scores": None,
                "reward": None if i >= n - unrewarded else reward,
                "rewardTimestamp": None if i >= n - unrewarded else 1_700_000_100.0 + i,
                "defaultReward": False,
            }
        )
    return lines


def write_lines(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    return path


def policy_file(path: Path, name: str = "candidate", **spec: Any) -> Path:
    body: dict[str, Any] = {
        "arms": [{"name": arm} for arm in ARMS],
        "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}},
        "reward": {"type": "Binary"},
    }
    body.update(spec)
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": "games", "generation": 1},
        "spec": body,
    }
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "decisions.jsonl", simulated_lines(unrewarded=20))


@pytest.fixture
def make_policy(tmp_path: Path) -> Callable[..., Path]:
    def make(name: str = "candidate", **spec: Any) -> Path:
        return policy_file(tmp_path / f"{name}.yaml", name, **spec)

    return make
