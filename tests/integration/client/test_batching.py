"""The batched reward senders against real runtime processes: a kill -9 of the runtime in the middle of the flushes
loses nothing (rewards land after the restart, those stored before the kill come back as duplicates), a full queue
refuses with an error, a bad reward is set aside alone, and close() hands back what it could not deliver."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from croupier.client import (
    AsyncClient,
    Client,
    NotFound,
    Rejected,
    RetryPolicy,
    RewardQueueFull,
    RewardsNotDelivered,
)

from .conftest import START_TIMEOUT, RuntimeProcess, server_port, write_policy

DECISIONS = 1200


def test_rewards_survive_a_runtime_kill_mid_flush(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]
) -> None:
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml"), state_dir=tmp_path / "state")
    # A port below the ephemeral range: while the runtime is down, the batcher's reconnects cannot take it.
    runtime.port = server_port()
    runtime.url = f"http://127.0.0.1:{runtime.port}"
    runtime.start(START_TIMEOUT)
    client = Client(runtime.url, timeout=5)
    decisions = [client.decide(f"player-{i}") for i in range(DECISIONS)]
    time.sleep(0.5)  # decision records are committed within ~50 ms: all of them are in the log before the kill

    batcher = client.batcher(max_batch=50, flush_interval=0.02, retry=RetryPolicy(base_delay=0.05, max_delay=0.3))

    def send(part: list[int]) -> None:
        for i in part:
            batcher.add(decisions[i], i % 2)
            if i % 40 == 0:
                time.sleep(0.005)

    senders = [threading.Thread(target=send, args=(list(range(k, DECISIONS, 4)),)) for k in range(4)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 60
    while batcher.stats.accepted < DECISIONS // 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    runtime.kill()
    accepted_before_kill = batcher.stats.accepted
    assert 0 < accepted_before_kill < DECISIONS
    time.sleep(1.0)  # the batcher meets a dead runtime: its sends fail and are kept
    assert batcher.stats.failed_sends > 0
    runtime.start(START_TIMEOUT)
    for sender in senders:
        sender.join(60)
    batcher.close(timeout=60)

    stats = batcher.stats
    assert stats.queued == 0
    assert stats.rejected == 0
    assert stats.queue_full == 0
    assert stats.accepted + stats.duplicates == DECISIONS
    served = client.stats()
    assert served.totals.rewards == DECISIONS
    assert sum(arm.reward_sum for arm in served.arms) == DECISIONS // 2
    resent = client.rewards((d, 1) for d in decisions)
    assert resent is not None
    assert (resent.accepted, resent.duplicates) == (0, DECISIONS)
    client.close()


def test_a_full_queue_refuses_and_close_returns_what_was_not_delivered() -> None:
    with Client(f"http://127.0.0.1:{server_port()}", connect_timeout=0.2) as client:
        batcher = client.batcher(max_batch=5, max_queue=10, flush_interval=0.01)
        for i in range(10):
            assert batcher.add(f"decision-{i}", 1)
        with pytest.raises(RewardQueueFull) as full:
            batcher.add("decision-10", 1)
        assert full.value.max_queue == 10
        assert batcher.stats.queue_full == 1
        with pytest.raises(RewardsNotDelivered) as undelivered:
            batcher.close(timeout=0.5)
        assert sorted(r.decision_id for r in undelivered.value.pending) == sorted(f"decision-{i}" for i in range(10))
        assert undelivered.value.last_error is not None
        assert batcher.stats.failed_sends > 0


def test_a_bad_reward_is_set_aside_and_the_rest_lands(policy_runtime: RuntimeProcess) -> None:
    seen: list[Rejected] = []
    with Client(policy_runtime.url) as client:
        decisions = [client.decide() for _ in range(20)]
        with client.batcher(max_batch=100, flush_interval=0.05, on_rejected=seen.append) as batcher:
            for i, decision in enumerate(decisions):
                if i == 7:
                    batcher.add("never-decided", 1)
                batcher.add(decision, 1)
        assert batcher.stats.accepted == 20
        assert batcher.stats.rejected == 1
        assert [r.reward.decision_id for r in seen] == ["never-decided"]
        assert isinstance(seen[0].error, NotFound) and seen[0].error.error == "UnknownDecision"
        assert client.stats().totals.rewards == 20


def test_async_batcher_and_client(policy_runtime: RuntimeProcess) -> None:
    async def scenario() -> None:
        async with AsyncClient(policy_runtime.url, timeout=10, max_connections=20) as client:
            decisions = [
                d
                for k in range(0, 300, 20)
                for d in await asyncio.gather(*(client.decide(f"u{i}") for i in range(k, k + 20)))
            ]
            assert len({d.decision_id for d in decisions}) == 300
            batcher = client.batcher(max_batch=64, flush_interval=0.01)
            for i, decision in enumerate(decisions):
                assert batcher.add(decision, i % 2)
            await batcher.flush()
            assert batcher.stats.accepted == 300
            assert batcher.stats.batches >= 5
            await batcher.close()
            with pytest.raises(RuntimeError):
                batcher.add(decisions[0], 1)
            stats = await client.stats()
            assert stats.totals.rewards == 300
            again = await client.reward(decisions[0], 0)
            assert again is not None and again.duplicates == 1

    asyncio.run(scenario())


def test_async_batcher_keeps_rewards_across_a_restart(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]
) -> None:
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml"), state_dir=tmp_path / "state")
    runtime.port = server_port()
    runtime.url = f"http://127.0.0.1:{runtime.port}"
    runtime.start(START_TIMEOUT)

    async def scenario() -> None:
        async with AsyncClient(runtime.url) as client:
            decisions = [await client.decide() for _ in range(200)]
            await asyncio.sleep(0.5)
            runtime.kill()
            batcher = client.batcher(max_batch=50, flush_interval=0.01, retry=RetryPolicy(max_delay=0.2))
            for decision in decisions:
                batcher.add(decision, 1)
            await asyncio.sleep(0.5)
            assert batcher.stats.failed_sends > 0
            assert batcher.stats.queued == 200
            await asyncio.to_thread(runtime.start, START_TIMEOUT)
            await batcher.close(timeout=60)
            assert batcher.stats.accepted == 200
            assert (await client.stats()).totals.rewards == 200

    asyncio.run(scenario())
