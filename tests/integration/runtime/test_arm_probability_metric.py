"""`croupier_arm_probability_sum_total`: the probability vectors decisions were drawn from, summed per arm, as a
scrape reads them (in the middle of a run of one cached vector, twice, and after the state changed many times), for a
non-contextual policy (one vector object per state) and a contextual one (a vector per request)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.policies import CONTEXTUAL, served_policy

from croupier.runtime.decisions.records import DecideRequest, RewardItem

from .conftest import running

pytestmark = pytest.mark.integration


def scraped(text: str) -> tuple[dict[str, float], dict[str, float], set[str]]:
    """(probability sums by arm, decisions by arm, the policy label values) from one exposition."""
    sums: dict[str, float] = {}
    decisions: dict[str, float] = {}
    policies: set[str] = set()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "croupier_arm_probability_sum_total":
                sums[sample.labels["arm"]] = sample.value
                policies.add(sample.labels["policy"])
            elif sample.name == "croupier_decisions_total":
                decisions[sample.labels["arm"]] = sample.value
    return sums, decisions, policies


@pytest.mark.parametrize("spec", [{}, CONTEXTUAL], ids=["epsilon-greedy", "linucb"])
def test_probability_sums_add_every_served_vector_once(spec: dict[str, Any], tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(**spec), tmp_path) as (runtime, client):
            service = runtime.service
            expected = [0.0] * len(service.arm_names)
            served = 0

            async def decide(count: int) -> None:
                nonlocal served
                for i in range(count):
                    context = [(served % 7) / 7.0, ((i * 3) % 5) - 2.0] if spec else None
                    decision = service.decide(DecideRequest(context=context))
                    for arm, p in enumerate(decision.probabilities):
                        expected[arm] += p
                    served += 1
                    if served % 40 == 0:  # a learned reward changes the vectors the next decisions get
                        await service.rewards([RewardItem(decision.decision_id, 1.0, "")])

            def check(text: str) -> None:
                sums, decisions, policies = scraped(text)
                assert policies == {"banner"}
                assert set(sums) == set(service.arm_names)
                for arm, name in enumerate(service.arm_names):
                    assert math.isclose(sums[name], expected[arm], rel_tol=1e-12, abs_tol=1e-9), (name, sums, expected)
                # Every vector sums to 1: the counter summed over arms counts the decisions.
                assert math.isclose(sum(sums.values()), sum(decisions.values()), rel_tol=1e-9)
                assert sum(decisions.values()) == served

            await decide(25)  # one open run for the non-contextual policy: the scrape adds it
            check((await client.get("/metrics")).text)
            check((await client.get("/metrics")).text)  # and a second scrape does not add it again
            await decide(10)  # the run goes on after a scrape
            check((await client.get("/metrics")).text)
            await decide(500)  # rewards end runs: many runs of different vectors
            check((await client.get("/metrics")).text)
            assert len(set(map(round, expected))) > 1, "the policy gave every arm the same probability"

    run(scenario())
