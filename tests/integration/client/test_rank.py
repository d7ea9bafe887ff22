"""`rank` against a real `croupier-runtime` (POST /v1/rank): a slate of k distinct arms with conditional
propensities, rewards per position by decisionId (a position passed as is, or in a batch), typed errors, and no retry
(each position is a logged decision)."""

from __future__ import annotations

import asyncio

import pytest

from croupier.client import AsyncClient, Client, InvalidRequest, RetryPolicy, RuntimeUnreachable

from .conftest import Relay, RuntimeProcess


def test_rank_and_reward_positions(policy_runtime: RuntimeProcess) -> None:
    with Client(policy_runtime.url) as client:
        ranking = client.rank("player-1", k=3)
        assert [p.position for p in ranking.slate] == [1, 2, 3]
        assert sorted(p.arm for p in ranking.slate) == ["blue", "green", "red"]
        assert ranking.policy_version.startswith("g1-")
        assert ranking.slate[0].probabilities[ranking.slate[0].arm] == pytest.approx(ranking.slate[0].propensity)
        assert ranking.slate[-1].propensity == pytest.approx(1.0)  # one arm left for the last position
        assert len({p.decision_id for p in ranking.slate}) == 3

        clicked = client.reward(ranking.slate[1], 1)  # a click on position 2
        assert clicked is not None and clicked.accepted == 1
        rest = client.rewards([(ranking.slate[0], 0), (ranking.slate[2].decision_id, 0)])
        assert rest is not None and rest.accepted == 2
        again = client.reward(ranking.slate[1], 1)
        assert again is not None and again.duplicates == 1

        two = client.rank(k=2, candidates=["blue", "red"])
        assert {p.arm for p in two.slate} == {"blue", "red"}

        with pytest.raises(InvalidRequest) as too_many:
            client.rank(k=4)
        assert (too_many.value.error, too_many.value.field) == ("InvalidField", "k")

        stats = client.stats()
        assert stats.totals.decisions == 5  # each position is a decision
        assert stats.totals.rewards == 3


def test_rank_is_not_retried(relay: Relay, policy_runtime: RuntimeProcess) -> None:
    with Client(relay.url, retry=RetryPolicy(attempts=4, base_delay=0.01)) as client:
        relay.drop["/v1/rank"] = 1
        with pytest.raises(RuntimeUnreachable):
            client.rank("player-1", k=2)
        assert relay.seen["/v1/rank"] == 1
    with Client(policy_runtime.url) as direct:
        assert direct.stats().totals.decisions == 2  # the one ranking's two positions, logged once


def test_async_rank(policy_runtime: RuntimeProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient(policy_runtime.url) as client:
            rankings = await asyncio.gather(*(client.rank(f"p{i}", k=2) for i in range(5)))
            batcher = client.batcher(max_batch=100, flush_interval=0.01)
            for ranking in rankings:
                for position in ranking.slate:
                    batcher.add(position, 1 if position.position == 1 else 0)
            await batcher.close()
            assert batcher.stats.accepted == 10
            assert (await client.stats()).totals.rewards == 10

    asyncio.run(scenario())
