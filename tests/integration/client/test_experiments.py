"""The SDK's experiment calls against a real `croupier-runtime --experiment` process: remote assignment, local
assignment agreeing with it unit for unit, exposures, outcomes retried only with an eventId, statistics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from croupier.client import (
    AsyncClient,
    Client,
    ExperimentStatsResponse,
    InvalidArgument,
    InvalidRequest,
    LocalAssigner,
    RetryPolicy,
    RuntimeUnreachable,
)

from .conftest import START_TIMEOUT, ExperimentProcess, Relay, write_experiment

FAST_RETRY = RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.05)


def settled(client: Client, exposures: int, timeout: float = 10.0) -> ExperimentStatsResponse:
    """The statistics once they count ``exposures`` (assign logs its exposure without waiting for the commit)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = client.experiment_stats()
        if stats.total_exposures >= exposures or time.monotonic() > deadline:
            return stats
        time.sleep(0.05)


def test_remote_and_local_assignment_agree(experiment_file: Path, experiment_runtime: ExperimentProcess) -> None:
    local = LocalAssigner.from_file(experiment_file)
    with Client(experiment_runtime.url) as client:
        for i in range(150):
            remote = client.assign(f"user-{i}")
            assert remote.variant == local.assign(f"user-{i}")
            assert remote.epoch == local.epoch
            assert remote.counted
            assert remote.payload == ({"offer": "none"} if remote.variant == "control" else {"offer": "10%"})
        stats = settled(client, 150)
        assert stats.total_exposures == 150
        assert stats.epoch == local.epoch
        assert {v.name: v.exposures for v in stats.variants} == {
            name: sum(1 for i in range(150) if local(f"user-{i}") == name) for name in local.variants
        }


def test_exposures_from_local_assignment(experiment_file: Path, experiment_runtime: ExperimentProcess) -> None:
    local = LocalAssigner.from_file(experiment_file)
    with Client(experiment_runtime.url) as client:
        first = client.exposures([local.exposure(f"u{i}") for i in range(10)])
        assert first.recorded == 10
        again = client.expose("u0", local("u0"), local.epoch)
        assert again.results[0].outcome == "duplicate"
        other = "discount" if local("u1") == "control" else "control"
        assert client.expose("u1", other, local.epoch).results[0].outcome == "mismatch"
        assert client.expose("u11", local("u11"), "0123456789ab").results[0].outcome == "stale"
        with pytest.raises(InvalidRequest) as unknown:
            client.expose("u12", "no-such-variant")
        assert unknown.value.field == "variant"
        assert client.experiment_stats().total_exposures == 10


def test_outcomes_are_retried_only_with_an_event_id(experiment_runtime: ExperimentProcess) -> None:
    with Relay(experiment_runtime.url) as relay, Client(relay.url, retry=FAST_RETRY) as client:
        client.assign("buyer-1")
        relay.drop["/v1/outcomes"] = 1
        answer = client.outcome("buyer-1", "revenue", 20.0, event_id="order-1")
        assert relay.seen["/v1/outcomes"] == 2
        assert answer.results[0].outcome == "duplicate"  # the first attempt stored it

        relay.drop["/v1/outcomes"] = 1
        with pytest.raises(RuntimeUnreachable):
            client.outcome("buyer-1", "revenue", 5.0)  # no eventId: a resend would count it twice
        assert relay.seen["/v1/outcomes"] == 3

        relay.drop["/v1/assign"] = 1
        assert client.assign("buyer-2").variant in ("control", "discount")
        assert relay.seen["/v1/assign"] == 3

        stats = settled(client, 2)
        revenue = {v.name: v.metrics[0] for v in stats.variants}
        assert sum(m.sum for m in revenue.values()) == 25.0  # 20 once, and 5 once
        assert stats.total_exposures == 2


def test_local_assignment_of_a_paused_experiment(
    tmp_path: Path, experiment_process: Callable[..., ExperimentProcess]
) -> None:
    path = write_experiment(tmp_path / "paused.yaml", state="Paused")
    local = LocalAssigner.from_file(path)
    runtime = experiment_process(path).start(START_TIMEOUT)
    with Client(runtime.url) as client:
        for i in range(20):
            assert client.assign(f"u{i}").variant == local(f"u{i}") == "control"


def test_async_experiment_calls(experiment_file: Path, experiment_runtime: ExperimentProcess) -> None:
    local = LocalAssigner.from_file(experiment_file)

    async def scenario() -> None:
        async with AsyncClient(experiment_runtime.url) as client:
            answers = await asyncio.gather(*(client.assign(f"a{i}") for i in range(20)))
            assert [a.variant for a in answers] == [local(f"a{i}") for i in range(20)]
            exposed = await client.expose("b0", local("b0"), local.epoch)
            assert exposed.recorded == 1
            outcome = await client.outcome("a0", "converted", 1, event_id="e-1")
            assert outcome.accepted == 1
            assert (await asyncio.to_thread(settled, Client(experiment_runtime.url), 21)).total_exposures == 21

    asyncio.run(scenario())


def test_assign_by_attributes_alone_through_both_clients(
    experiment_file: Path, experiment_runtime: ExperimentProcess
) -> None:
    """No unitId: the unit is attributes[spec.assignment.unitKey] (userId here), on the runtime and in the local
    assigner alike; neither client ever sends unitId as null, and a request with no unit is refused before it is
    sent, naming unitId as the runtime would."""
    local = LocalAssigner.from_file(experiment_file)
    assert local.unit_key == "userId"
    with Client(experiment_runtime.url) as client:
        for i in range(20):
            attributes = {"userId": f"attr-{i}", "tier": "gold"}
            answer = client.assign(attributes=attributes)
            assert answer.variant == local.assign(local.unit(attributes=attributes)) == local(f"attr-{i}")
            assert answer.counted
        for nothing in ({}, {"attributes": {}}):
            with pytest.raises(InvalidArgument) as missing:
                client.assign(**nothing)
            assert missing.value.field == "unitId"
        with pytest.raises(InvalidRequest) as without_key:  # the runtime's own answer: the unitKey attribute is absent
            client.assign(attributes={"tier": "gold"})
        assert without_key.value.field == "unitId" and "attributes.userId" in str(without_key.value)
        # The local exposure of a unit given by attributes names the unit: a duplicate of the remote assignment's.
        exposed = client.exposures([local.exposure(attributes={"userId": "attr-0"})])
        assert exposed.results[0].unit_id == "attr-0" and exposed.results[0].outcome == "duplicate"
        with pytest.raises(InvalidArgument) as no_key:
            local.exposure(attributes={"tier": "gold"})
        assert no_key.value.field == "unitId"
        assert settled(client, 20).total_exposures == 20

    async def remote() -> list[str]:
        async with AsyncClient(experiment_runtime.url) as aclient:
            answers = await asyncio.gather(*(aclient.assign(attributes={"userId": f"async-{i}"}) for i in range(10)))
            return [a.variant for a in answers]

    assert asyncio.run(remote()) == [local(f"async-{i}") for i in range(10)]
