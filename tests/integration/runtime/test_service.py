"""The decision service over a real SQLite store: decide, log, join, dedupe, reject late, default, restore."""

from __future__ import annotations

import asyncio
import gc
import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from support.policies import CONTEXTUAL, served_policy

from croupier.api import wire
from croupier.runtime.store.export import decision_records, export_jsonl

from .conftest import running

pytestmark = pytest.mark.integration


def _db(runtime: Any) -> sqlite3.Connection:
    return sqlite3.connect(runtime.sqlite.path)


def test_decide_logs_the_full_probability_vector_within_the_flush_bound(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path, decision_flush_interval_ms=20) as (runtime, client):
            response = await client.post("/v1/decide", json={"unitId": "u1", "candidates": ["blue", "red"]})
            assert response.status_code == 200
            body = wire.DecideResponse.model_validate(response.json())
            assert set(body.probabilities) == {"blue", "red"}
            assert sum(body.probabilities.values()) == pytest.approx(1.0)
            assert body.policy_version == runtime.served.version
            await asyncio.sleep(0.2)
            [logged] = decision_records(runtime.sqlite.path)  # the log as typed records, no JSON
            decision, arms = logged.shared.decision, logged.shared.arms
            assert decision.arm == body.arm
            assert decision.unit_id == "u1"
            assert decision.eligible is not None
            assert {arms[i]: decision.probabilities[i] for i in decision.eligible} == body.probabilities
            assert decision.policy_version == runtime.served.version

    run(scenario())


def test_rewards_are_joined_once_and_bad_batches_change_nothing(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (runtime, client):
            ids = [(await client.post("/v1/decide", json={})).json()["decisionId"] for _ in range(3)]
            first = await client.post("/v1/rewards", json={"decisionId": ids[0], "reward": 1})
            assert first.status_code == 200
            assert first.json() == {
                "accepted": 1,
                "duplicates": 0,
                "results": [{"decisionId": ids[0], "outcome": "accepted"}],
            }
            again = await client.post("/v1/rewards", json={"decisionId": ids[0], "reward": 0})
            assert again.json()["duplicates"] == 1

            bad = await client.post(
                "/v1/rewards",
                json={"rewards": [{"decisionId": ids[1], "reward": 1}, {"decisionId": "nope", "reward": 1}]},
            )
            assert bad.status_code == 404
            assert bad.json()["error"] == "UnknownDecision"
            assert bad.json()["field"] == "rewards[1].decisionId"
            stored = _db(runtime).execute("SELECT decision_id FROM rewards ORDER BY seq").fetchall()
            assert stored == [(ids[0],)]

            batch = await client.post(
                "/v1/rewards",
                json={"rewards": [{"decisionId": i, "reward": 1} for i in (ids[1], ids[2], ids[1])]},
            )
            assert batch.status_code == 200
            assert [r["outcome"] for r in batch.json()["results"]] == ["accepted", "accepted", "duplicate"]
            stats = wire.StatsResponse.model_validate((await client.get("/v1/stats")).json())
            assert stats.totals.rewards == 3
            assert stats.totals.decisions == 3
            assert int(runtime.engine.stats.n.sum()) == 3

            assert (await client.post("/v1/rewards", json={"decisionId": ids[0], "reward": 0.5})).status_code == 422

    run(scenario())


def test_late_rewards_are_rejected_and_expired_decisions_get_the_default_once(tmp_path: Path, run: Any) -> None:
    served = served_policy(reward={"attributionWindowSeconds": 1, "defaultReward": 0})

    async def scenario() -> None:
        async with running(served, tmp_path) as (runtime, client):
            ids = [(await client.post("/v1/decide", json={})).json()["decisionId"] for _ in range(4)]
            assert (await client.post("/v1/rewards", json={"decisionId": ids[0], "reward": 1})).status_code == 200
            await asyncio.sleep(1.4)
            late = await client.post("/v1/rewards", json={"decisionId": ids[1], "reward": 1})
            assert late.status_code == 409
            assert late.json()["error"] == "AttributionWindowExpired"
            assert "default reward" in late.json()["message"]
            await asyncio.sleep(0.2)
            stats = (await client.get("/v1/stats")).json()
            assert stats["totals"] == {"decisions": 4, "rewards": 4, "defaultRewards": 3}
            rows = _db(runtime).execute("SELECT is_default, COUNT(*) FROM rewards GROUP BY is_default").fetchall()
            assert dict(rows) == {0: 1, 1: 3}
            assert int(runtime.engine.stats.n.sum()) == 4

    run(scenario())


def test_a_restart_restores_learned_statistics_and_counters(tmp_path: Path, run: Any) -> None:
    """From the last periodic checkpoint plus the rewards stored after it (replayed): both must take part."""
    served = served_policy()

    async def first_life() -> tuple[np.ndarray, dict[str, Any]]:
        async with running(served, tmp_path, checkpoint_interval_seconds=3600) as (runtime, client):
            for i in range(40):
                decision = (await client.post("/v1/decide", json={})).json()
                await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": i % 2})
                if i == 20:
                    runtime.checkpoint()  # as the periodic task does; the rest is replayed from the tail
                    await asyncio.sleep(0.3)
            stats = (await client.get("/v1/stats")).json()
            flat = runtime.engine.stats.to_flat()
            # Crash-like stop: the store commits what it has, but no final checkpoint is taken.
            await runtime.stop(checkpoint=False)
            return flat, stats

    flat, stats = run(first_life())

    async def second_life() -> None:
        async with running(served, tmp_path) as (runtime, client):
            assert runtime.started is not None
            # The checkpoint taken after the 21st reward (store sequence 21), then the 19 rewards after it.
            assert runtime.started.checkpoint_seq == 21
            assert runtime.started.replayed_rewards == 19
            np.testing.assert_allclose(runtime.engine.stats.to_flat(), flat)
            restored = (await client.get("/v1/stats")).json()
            assert restored["arms"] == stats["arms"]
            assert restored["totals"] == stats["totals"]

    run(second_life())


def test_paused_policies_log_rewards_without_learning(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(paused=True), tmp_path) as (runtime, client):
            decision = (await client.post("/v1/decide", json={})).json()
            assert (
                await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
            ).is_success
            assert runtime.engine.stats.is_zero()
            assert (await client.get("/v1/stats")).json()["paused"] is True

    run(scenario())


def test_contextual_rewards_learn_the_context_of_their_decision(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(**CONTEXTUAL), tmp_path) as (runtime, client):
            decision = await client.post("/v1/decide", json={"context": {"level": 3, "spend": 0.5}})
            assert decision.status_code == 200
            arm = runtime.service.arm_index[decision.json()["arm"]]
            reward = await client.post("/v1/rewards", json={"decisionId": decision.json()["decisionId"], "reward": 2})
            assert reward.status_code == 200
            stats = runtime.engine.stats
            np.testing.assert_allclose(stats.b[arm], [6.0, 1.0, 2.0])  # reward x (level, spend, intercept)
            wrong = await client.post("/v1/decide", json={"context": [1.0]})
            assert wrong.status_code == 422
            assert wrong.json()["field"] == "context"

    run(scenario())


def test_export_writes_one_evaluable_line_per_decision(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (runtime, client):
            ids = [(await client.post("/v1/decide", json={"unitId": f"u{i}"})).json()["decisionId"] for i in range(3)]
            await client.post("/v1/rewards", json={"decisionId": ids[1], "reward": 1})
            await asyncio.sleep(0.15)
            out = io.BytesIO()
            assert export_jsonl(runtime.sqlite.path, out) == 3
            lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
            assert [line["decisionId"] for line in lines] == ids
            assert [line["reward"] for line in lines] == [None, 1.0, None]
            for line in lines:
                assert line["propensity"] == line["probabilities"][line["arm"]]
                assert line["policyVersion"] == runtime.served.version
            assert lines[0]["unitId"] == "u0"

    run(scenario())


def test_the_default_reward_sweep_resumes_after_a_restart_without_repeating(tmp_path: Path, run: Any) -> None:
    served = served_policy(reward={"attributionWindowSeconds": 1, "defaultReward": 0})

    async def first_life() -> list[str]:
        async with running(served, tmp_path) as (_runtime, client):
            ids = [(await client.post("/v1/decide", json={})).json()["decisionId"] for _ in range(6)]
            await client.post("/v1/rewards", json={"decisionId": ids[0], "reward": 1})  # settled at the head
            await asyncio.sleep(1.3)
            assert (await client.get("/v1/stats")).json()["totals"]["defaultRewards"] == 5
            return ids

    ids = run(first_life())

    async def second_life() -> None:
        async with running(served, tmp_path) as (runtime, client):
            fresh = (await client.post("/v1/decide", json={})).json()["decisionId"]
            await asyncio.sleep(1.3)
            totals = (await client.get("/v1/stats")).json()["totals"]
            assert totals == {"decisions": 7, "rewards": 7, "defaultRewards": 6}
            rows = _db(runtime).execute("SELECT decision_id FROM rewards WHERE is_default = 1").fetchall()
            assert sorted(r[0] for r in rows) == sorted([*ids[1:], fresh])

    run(second_life())


class _RowsCounted:
    """A cursor that counts the rows a caller takes from it, whether one by one or all at once."""

    def __init__(self, cursor: sqlite3.Cursor, counted: list[int]) -> None:
        self._cursor = cursor
        self._counted = counted

    def __iter__(self) -> Iterator[Any]:
        for row in self._cursor:
            self._counted[0] += 1
            yield row

    def fetchall(self) -> list[Any]:
        rows = self._cursor.fetchall()
        self._counted[0] += len(rows)
        return rows

    def close(self) -> None:
        self._cursor.close()


class _SweepReads:
    """A connection whose decision scans count the rows read."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.rows = [0]

    def execute(self, sql: str, parameters: tuple[Any, ...] = ()) -> Any:
        cursor = self.conn.execute(sql, parameters)
        return _RowsCounted(cursor, self.rows) if sql.startswith("SELECT id") else cursor


def test_the_default_reward_sweep_stops_reading_at_the_first_decision_inside_its_window(
    tmp_path: Path, run: Any
) -> None:
    """The sweep runs every second under load; it must not read a batch of rows to find that the first one waits."""

    async def scenario() -> None:
        async with running(served_policy(), tmp_path, sweep_interval_seconds=60) as (runtime, client):
            for _ in range(40):
                assert (await client.post("/v1/decide", json={})).status_code == 200
            await asyncio.sleep(0.2)  # flushed (50 ms bound)
            with _db(runtime) as raw:
                conn = _SweepReads(raw)
                found: list[Any] = []
                assert runtime.sqlite._sweep(conn, found) == 0
                assert found == []
                assert conn.rows == [1]

    run(scenario())


def test_starting_an_embedded_runtime_leaves_the_process_heap_collectable(tmp_path: Path, run: Any) -> None:
    """Freezing the start-up heap is the server's choice (its CLI entry point), not every embedder's."""
    frozen = gc.get_freeze_count()

    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (_runtime, client):
            assert (await client.post("/v1/decide", json={})).status_code == 200
            assert gc.get_freeze_count() == frozen

    run(scenario())


def test_rewards_stored_while_paused_are_never_learned_not_even_after_the_pause(tmp_path: Path, run: Any) -> None:
    async def paused() -> None:
        async with running(served_policy(paused=True), tmp_path) as (runtime, client):
            decision = (await client.post("/v1/decide", json={})).json()
            reward = await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
            assert reward.json()["accepted"] == 1
            assert runtime.engine.stats.is_zero()
            await runtime.stop(checkpoint=False)  # no checkpoint: the restart reads the stored rewards themselves

    async def resumed() -> None:
        async with running(served_policy(), tmp_path) as (runtime, client):
            assert runtime.started is not None and runtime.started.replayed_rewards == 0
            assert runtime.engine.stats.is_zero()
            assert (await client.get("/v1/stats")).json()["totals"]["rewards"] == 1

    run(paused())
    run(resumed())


def test_a_decision_log_of_the_json_layout_is_kept_aside_and_the_runtime_starts(tmp_path: Path, run: Any) -> None:
    served = served_policy()
    path = tmp_path / "games.banner.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE decisions (id TEXT PRIMARY KEY, ts REAL NOT NULL, arm TEXT NOT NULL, "
            "expires_at REAL NOT NULL, state INTEGER NOT NULL DEFAULT 0, features BLOB, request BLOB NOT NULL, "
            "response BLOB NOT NULL) WITHOUT ROWID"
        )
        old.execute("INSERT INTO decisions VALUES ('old-1', 1.0, 'blue', 2.0, 0, NULL, '{}', '{}')")

    async def scenario() -> None:
        async with running(served, tmp_path) as (runtime, client):
            assert runtime.sqlite.path == path
            decision = (await client.post("/v1/decide", json={})).json()
            assert (
                await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
            ).is_success
            assert (await client.post("/v1/rewards", json={"decisionId": "old-1", "reward": 1})).status_code == 404

    run(scenario())
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT id FROM decisions_layout1").fetchall() == [("old-1",)]
        assert db.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
