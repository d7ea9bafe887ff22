"""The experiment service through its HTTP adapter, in process, on its real SQLite store: assignment follows the hash
contract, exposures count once per unit and epoch, outcomes are joined in the attribution window, deduplicated by
eventId and aggregated per metric type, bad input changes nothing, and Paused/Concluded/epochs behave as documented."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from croupier.api.assignment import assign

from .conftest import VARIANTS, serving, write_experiment

SALT = "checkout-2026"
WEIGHTS = [(v["name"], v["weight"]) for v in VARIANTS]


async def _assign(client: httpx.AsyncClient, unit: str) -> dict[str, Any]:
    response = await client.post("/v1/assign", json={"unitId": unit})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _settled(client: httpx.AsyncClient, exposures: int) -> dict[str, Any]:
    """/v1/stats once the queued exposures are committed (within the flush interval)."""
    for _ in range(200):
        stats = (await client.get("/v1/stats")).json()
        if stats["totalExposures"] >= exposures:
            return dict(stats)
        await asyncio.sleep(0.01)
    raise AssertionError(f"exposures never reached {exposures}: {stats}")


def _metric(stats: dict[str, Any], variant: str, metric: str) -> dict[str, Any]:
    (entry,) = [v for v in stats["variants"] if v["name"] == variant]
    (found,) = [m for m in entry["metrics"] if m["name"] == metric]
    return dict(found)


def test_assignment_follows_the_hash_contract_and_exposes_once(tmp_path: Path, run: Callable[[Any], Any]) -> None:
    path = write_experiment(tmp_path / "exp.yaml")

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (runtime, client):
            units = [f"user-{i}" for i in range(300)]
            first = [await _assign(client, u) for u in units]
            again = [await _assign(client, u) for u in units]
            for unit, answer, repeat in zip(units, first, again, strict=True):
                assert answer["variant"] == assign(unit, SALT, WEIGHTS) == repeat["variant"]
                assert answer["counted"] is True
                assert answer["payload"] == {"offer": "none" if answer["variant"] == "control" else "10%"}
                assert answer["epoch"] == runtime.served.epoch
            stats = await _settled(client, len(units))
            expected = {name: sum(1 for a in first if a["variant"] == name) for name, _ in WEIGHTS}
            assert {v["name"]: v["exposures"] for v in stats["variants"]} == expected
            assert stats["totalExposures"] == len(units)  # the second round exposed nobody again

    run(scenario())


def _reference(events: list[tuple[str, str, float]], variant_of: dict[str, str]) -> dict[tuple[str, str], list[float]]:
    """count/sum/sum of squares per (variant, metric), recomputed from the documented rules and the raw outcomes."""
    per_unit: dict[tuple[str, str], list[float]] = defaultdict(list)
    for unit, metric, value in events:
        per_unit[(unit, metric)].append(value)
    exposed = defaultdict(int)
    for variant in variant_of.values():
        exposed[variant] += 1
    sums: dict[tuple[str, str], list[float]] = {}
    for name, _ in WEIGHTS:
        for metric in ("revenue", "refunds", "latency_ms", "converted"):
            sums[(name, metric)] = [0 if metric == "latency_ms" else exposed[name], 0.0, 0.0]
    for (unit, metric), values in per_unit.items():
        if metric == "latency_ms":
            value = sum(values) / len(values)
            sums[(variant_of[unit], metric)][0] += 1
        elif metric == "converted":
            value = float(max(values))
        else:
            value = sum(values)
        entry = sums[(variant_of[unit], metric)]
        entry[1] += value
        entry[2] += value * value
    return sums


def test_outcomes_aggregate_per_metric_type_and_event_ids_count_once(tmp_path: Path, run: Callable[[Any], Any]) -> None:
    path = write_experiment(tmp_path / "exp.yaml")
    rng = random.Random(11)

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (_, client):
            units = [f"u{i}" for i in range(60)]
            variant_of = {u: (await _assign(client, u))["variant"] for u in units}
            events: list[tuple[str, str, float]] = []
            sent: list[dict[str, Any]] = []
            for i in range(400):
                unit = rng.choice(units)
                metric = rng.choice(["revenue", "refunds", "latency_ms", "converted"])
                value: float
                if metric == "revenue":
                    value = round(rng.uniform(-50, 80), 2)  # negative values are outcomes too
                elif metric == "refunds":
                    value = rng.randint(0, 3)
                elif metric == "latency_ms":
                    value = round(rng.uniform(10, 500), 1)
                else:
                    value = rng.randint(0, 1)
                outcome = {"unitId": unit, "metric": metric, "value": value, "eventId": f"ev-{i}"}
                sent.append(outcome)
                events.append((unit, metric, value))
            for start in range(0, len(sent), 37):
                response = await client.post("/v1/outcomes", json={"outcomes": sent[start : start + 37]})
                assert response.status_code == 200, response.text
                assert response.json()["accepted"] == len(sent[start : start + 37])
            # Every outcome again (a client's retry): all duplicates, nothing counted twice.
            retry = await client.post("/v1/outcomes", json={"outcomes": sent[:200]})
            assert retry.json()["accepted"] == 0
            assert {r["outcome"] for r in retry.json()["results"]} == {"duplicate"}
            stats = await _settled(client, len(units))
            for (variant, metric), (count, total, squares) in _reference(events, variant_of).items():
                got = _metric(stats, variant, metric)
                assert got["count"] == count, (variant, metric)
                assert got["sum"] == pytest.approx(total, rel=1e-9, abs=1e-9), (variant, metric)
                assert got["sumSquares"] == pytest.approx(squares, rel=1e-9, abs=1e-6), (variant, metric)

    run(scenario())


def test_outcomes_outside_the_window_or_without_exposure_are_not_counted(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    path = write_experiment(tmp_path / "exp.yaml", outcomes={"attributionWindowSeconds": 1})

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (_, client):
            variant = (await _assign(client, "early"))["variant"]
            first = await client.post("/v1/outcomes", json={"unitId": "early", "metric": "revenue", "value": 5})
            assert first.json()["results"][0]["outcome"] == "accepted"
            nobody = await client.post("/v1/outcomes", json={"unitId": "stranger", "metric": "revenue", "value": 5})
            assert nobody.json() == {"accepted": 0, "results": [{"unitId": "stranger", "outcome": "unexposed"}]}
            await asyncio.sleep(1.2)
            late = await client.post("/v1/outcomes", json={"unitId": "early", "metric": "revenue", "value": 7})
            assert late.json()["results"][0]["outcome"] == "late"
            stats = await _settled(client, 1)
            assert _metric(stats, variant, "revenue")["sum"] == 5

    run(scenario())


BAD_OUTCOMES = [
    ({"unitId": "a", "metric": "clicks", "value": 1}, 422, "UnknownMetric", "metric"),
    ({"unitId": "a", "metric": "converted", "value": 0.5}, 422, "InvalidOutcome", "value"),
    ({"unitId": "a", "metric": "refunds", "value": -1}, 422, "InvalidOutcome", "value"),
    ({"unitId": "a", "metric": "revenue", "value": True}, 422, "InvalidField", "value"),
    ({"unitId": "a", "metric": "revenue", "value": 1e13}, 422, "InvalidField", "value"),
    ({"unitId": "a", "metric": "revenue"}, 422, "MissingField", "value"),
    ({"unitId": "a", "metric": "revenue", "value": 1, "extra": 1}, 422, "UnknownField", "extra"),
    ({"outcomes": [{"unitId": "a", "metric": "revenue", "value": 1}, {"unitId": "a", "metric": "x", "value": 1}]},
     422, "UnknownMetric", "outcomes[1].metric"),
    ({"outcomes": []}, 422, "InvalidField", "outcomes"),
]  # fmt: skip


def test_bad_input_is_refused_naming_the_field_and_changes_nothing(tmp_path: Path, run: Callable[[Any], Any]) -> None:
    path = write_experiment(tmp_path / "exp.yaml")

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (_, client):
            await _assign(client, "a")
            before = await _settled(client, 1)
            for body, status, code, field in BAD_OUTCOMES:
                response = await client.post("/v1/outcomes", json=body)
                assert (response.status_code, response.json()["error"], response.json().get("field")) == (
                    status,
                    code,
                    field,
                ), body
            for raw, field in [
                (b'{"unitId": "a", "metric": "revenue", "value": NaN}', None),
                (b'{"unitId": "a", "metric": "revenue", "value": Infinity}', None),
                (b'{"unitId": "a", "unitId": "b", "metric": "revenue", "value": 1}', "unitId"),
            ]:
                response = await client.post("/v1/outcomes", content=raw)
                assert response.status_code in (400, 422), raw
                assert response.json().get("field") == field
            for body, field in [
                ({}, "unitId"),
                ({"unitId": 7}, "unitId"),
                ({"unitId": "a", "context": [1, "x"]}, "context[1]"),
                ({"unitId": "a", "attributes": {"tier": [1]}}, "attributes.tier"),
                ({"unitId": "a", "colour": "red"}, "colour"),
            ]:
                response = await client.post("/v1/assign", json=body)
                assert response.status_code == 422 and response.json()["field"] == field, response.text
            bad_exposure = await client.post(
                "/v1/exposures",
                json={"exposures": [{"unitId": "n1", "variant": "control"}, {"unitId": "n2", "variant": "gold"}]},
            )
            assert (bad_exposure.status_code, bad_exposure.json()["field"]) == (422, "exposures[1].variant")
            assert (await client.get("/v1/stats")).json() == before

    run(scenario())


def test_local_assignment_exposures_are_durable_and_idempotent(tmp_path: Path, run: Callable[[Any], Any]) -> None:
    path = write_experiment(tmp_path / "exp.yaml")

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (runtime, client):
            units = [f"sdk-{i}" for i in range(20)]
            local = [{"unitId": u, "variant": assign(u, SALT, WEIGHTS), "epoch": runtime.served.epoch} for u in units]
            wrong = {
                "unitId": "sdk-x",
                "variant": "discount" if assign("sdk-x", SALT, WEIGHTS) == "control" else "control",
            }
            stale = {"unitId": "sdk-y", "variant": assign("sdk-y", SALT, WEIGHTS), "epoch": "0000deadbeef"}
            response = await client.post("/v1/exposures", json={"exposures": [*local, wrong, stale]})
            assert response.status_code == 200
            body = response.json()
            assert body["recorded"] == len(units)
            assert [r["outcome"] for r in body["results"]] == ["recorded"] * len(units) + ["mismatch", "stale"]
            # Acknowledged means durable: the stats (fed by the store after COMMIT) already count them.
            assert (await client.get("/v1/stats")).json()["totalExposures"] == len(units)
            again = await client.post("/v1/exposures", json={"exposures": local})
            assert again.json()["recorded"] == 0
            assert {r["outcome"] for r in again.json()["results"]} == {"duplicate"}
            answer = await _assign(client, units[0])  # the server agrees and exposes nobody twice
            assert answer["variant"] == local[0]["variant"]
            assert (await client.get("/v1/stats")).json()["totalExposures"] == len(units)

    run(scenario())


def test_state_and_sums_survive_a_restart_and_a_new_split_starts_a_new_epoch(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    path = write_experiment(tmp_path / "exp.yaml")
    state = tmp_path / "state"
    units = [f"u{i}" for i in range(40)]

    async def first() -> dict[str, Any]:
        async with serving(path, state) as (_, client):
            for unit in units:
                await _assign(client, unit)
            await client.post(
                "/v1/outcomes", json={"outcomes": [{"unitId": u, "metric": "revenue", "value": 2.5} for u in units]}
            )
            return await _settled(client, len(units))

    async def restarted() -> dict[str, Any]:
        async with serving(path, state) as (_, client):
            return dict((await client.get("/v1/stats")).json())

    before = run(first())
    after = run(restarted())
    assert after == {**before, "replica": after["replica"]}

    # New weights: a new epoch. Sticky units keep their variant but no longer count; new units count.
    write_experiment(
        path,
        variants=[{**VARIANTS[0], "weight": 20}, {**VARIANTS[1], "weight": 80}],
    )

    async def new_epoch() -> None:
        async with serving(path, state) as (runtime, client):
            stats = (await client.get("/v1/stats")).json()
            assert stats["epoch"] == runtime.served.epoch != before["epoch"]
            assert stats["totalExposures"] == 0
            assert all(m["sum"] == 0 for v in stats["variants"] for m in v["metrics"])
            old = await _assign(client, units[0])
            assert old["variant"] == assign(units[0], SALT, WEIGHTS)  # sticky: the first variant
            assert old["counted"] is False
            fresh = await _assign(client, "newcomer")
            assert fresh["variant"] == assign("newcomer", SALT, [("control", 20), ("discount", 80)])
            assert fresh["counted"] is True
            uncounted = await client.post("/v1/outcomes", json={"unitId": units[0], "metric": "revenue", "value": 1})
            assert uncounted.json()["results"][0]["outcome"] == "notCounted"
            stats = await _settled(client, 1)
            assert stats["totalExposures"] == 1

    run(new_epoch())

    # A removed variant: its sticky units get the hash's variant among the rest (remembered anew, still uncounted).
    write_experiment(
        path,
        variants=[VARIANTS[0], {"name": "bundle", "weight": 50, "payload": {"offer": "bundle"}}],
    )
    moved = next(u for u in units if assign(u, SALT, WEIGHTS) == "discount")

    async def removed() -> None:
        async with serving(path, state) as (_, client):
            answer = await _assign(client, moved)
            assert answer["variant"] == assign(moved, SALT, [("control", 50), ("bundle", 50)])
            assert answer["counted"] is False

    run(removed())


def test_paused_serves_control_and_concluded_serves_the_winner_without_counting(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    paused = write_experiment(tmp_path / "paused.yaml", state="Paused")
    concluded = write_experiment(
        tmp_path / "concluded.yaml", state="Concluded", onConclude="KeepWinner", status={"winner": "discount"}
    )
    nothing = write_experiment(tmp_path / "nothing.yaml", state="Concluded", onConclude="Nothing")

    async def scenario() -> None:
        for path, expected in [(paused, lambda u: "control"), (concluded, lambda u: "discount"),
                               (nothing, lambda u: assign(u, SALT, WEIGHTS))]:  # fmt: skip
            async with serving(path, tmp_path / f"state-{path.stem}") as (_, client):
                for unit in ("a", "b", "c", "d", "e", "f"):
                    answer = await _assign(client, unit)
                    assert (answer["variant"], answer["counted"]) == (expected(unit), False), path.stem
                outcome = await client.post("/v1/outcomes", json={"unitId": "a", "metric": "revenue", "value": 1})
                assert outcome.json()["results"][0]["outcome"] == "unexposed"
                exposure = await client.post("/v1/exposures", json={"unitId": "z", "variant": expected("z")})
                assert exposure.json()["results"][0]["outcome"] == "notCounting"
                await asyncio.sleep(0.1)
                assert (await client.get("/v1/stats")).json()["totalExposures"] == 0

    run(scenario())
