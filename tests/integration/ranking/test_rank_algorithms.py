"""Ranking works for every algorithm: an in-process runtime (real engine, real SQLite log) per algorithm ranks 3 of 5
arms, every position's vector follows the sequential rule from the request's own vector, and rewarded positions are
learned (contextual policies with the request's context)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from integration.runtime.conftest import running
from support.policies import served_policy

from croupier.api import wire
from croupier.runtime.store.export import decision_records

pytestmark = pytest.mark.integration

ARMS = [{"name": name} for name in ("a", "b", "c", "d", "e")]
FEATURES = {"context": {"features": ["level", "spend"]}}
ALGORITHMS: dict[str, dict[str, Any]] = {
    "EpsilonGreedy": {"algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}}},
    "UCB1": {"algorithm": {"type": "UCB1"}},
    "ThompsonBeta": {"algorithm": {"type": "ThompsonSampling"}},
    "ThompsonGaussian": {
        "algorithm": {"type": "ThompsonSampling", "thompsonSampling": {"likelihood": "Gaussian"}},
        "reward": {"type": "Continuous"},
    },
    "Softmax": {"algorithm": {"type": "Softmax"}},
    "LinUCB": {"algorithm": {"type": "LinUCB"}, **FEATURES},
    "LinearThompson": {"algorithm": {"type": "LinearThompson"}, **FEATURES},
}


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_algorithm_ranks_with_the_sequential_rule_and_learns_per_position(name: str, tmp_path: Path) -> None:
    spec = {"arms": ARMS, "exploration": {"minProbability": 0.02}, **ALGORITHMS[name]}
    served = served_policy(**spec)
    contextual = served.contextual
    body: dict[str, Any] = {"k": 3, "unitId": "u1"}
    if contextual:
        body["context"] = {"level": 2.0, "spend": 0.5}

    async def scenario() -> None:
        async with running(served, tmp_path, decision_flush_interval_ms=20) as (runtime, client):
            for round_ in range(20):
                response = await client.post(wire.RANK_PATH, json=body)
                assert response.status_code == 200, response.text
                slate = wire.RankResponse.model_validate(response.json())
                assert slate.policy_version == served.version
                top = slate.slate[0].probabilities
                assert set(top) == {"a", "b", "c", "d", "e"}
                assert min(top.values()) >= 0.02 - 1e-12
                placed: list[str] = []
                for position in slate.slate:
                    left = [arm for arm in top if arm not in placed]
                    mass = sum(top[arm] for arm in left)
                    assert position.probabilities == pytest.approx({a: top[a] / mass for a in left}, rel=1e-9)
                    assert position.propensity == position.probabilities[position.arm]
                    placed.append(position.arm)
                assert len(set(placed)) == 3
                # Reward the top position only (a click there), so the learner sees position-1 outcomes.
                reward = {"decisionId": slate.slate[0].decision_id, "reward": 1 if round_ % 2 else 0}
                assert (await client.post(wire.REWARDS_PATH, json=reward)).status_code == 200
            stats = (await client.get(wire.STATS_PATH)).json()
            assert stats["totals"] == {"decisions": 60, "rewards": 20, "defaultRewards": 0}
            await asyncio.sleep(0.2)
            logged = [entry.shared.decision for entry in decision_records(runtime.sqlite.path)]
            assert len(logged) == 60
            assert {d.position for d in logged} == {1, 2, 3}
            assert len({d.slate_id for d in logged}) == 20
            if contextual:
                assert all(d.features == [2.0, 0.5] for d in logged)

    asyncio.run(scenario())
