"""The one SQLite writer of both embedded stores (`croupier.runtime.store.sqlite.GroupCommitWriter`) when a commit
fails for real: another connection holds the database's write lock past the busy timeout. The waiting request is
answered 503 `StoreError` and nothing of it is counted, readiness names the failure, and once the lock is gone the
writer commits again, the queued records first."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support.policies import served_policy

from croupier.api.assignment import assign

from .conftest import running
from .experiments.conftest import VARIANTS, serving, write_experiment

pytestmark = pytest.mark.integration


def _locked(path: Path) -> sqlite3.Connection:
    """A second writer holding the write lock (the stores' connections wait 5 s for it, then fail)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def _until(check: Callable[[], bool], timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("timed out")


def test_a_failed_commit_of_the_decision_log_answers_503_and_recovers(tmp_path: Path, run: Any) -> None:
    async def scenario() -> None:
        async with running(served_policy(), tmp_path) as (runtime, client):
            decision = (await client.post("/v1/decide", json={})).json()
            await _until(lambda: runtime.service.stats()["totals"]["decisions"] == 1)
            await asyncio.sleep(0.2)  # the decision's commit
            holder = _locked(runtime.sqlite.path)
            try:
                refused = await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
                assert refused.status_code == 503 and refused.json()["error"] == "StoreError", refused.text
                assert "database is locked" in (runtime.sqlite.health() or "")
                assert (await client.get("/readyz")).status_code == 503
                assert runtime.service.stats()["totals"]["rewards"] == 0
            finally:
                holder.rollback()
                holder.close()
            accepted = await client.post("/v1/rewards", json={"decisionId": decision["decisionId"], "reward": 1})
            assert accepted.status_code == 200 and accepted.json()["accepted"] == 1, accepted.text
            assert runtime.sqlite.health() is None and runtime.service.stats()["totals"]["rewards"] == 1

    run(scenario())


def test_a_failed_commit_of_the_experiment_store_answers_503_and_recovers(tmp_path: Path, run: Any) -> None:
    path = write_experiment(tmp_path / "exp.yaml")
    weights = [(str(v["name"]), int(str(v["weight"]))) for v in VARIANTS]
    unit = "user-1"
    variant = assign(unit, "checkout-2026", weights)

    async def scenario() -> None:
        async with serving(path, tmp_path / "state") as (runtime, client):
            holder = _locked(runtime.store.path)
            try:
                # Assign queues the exposure (committed within the flush interval): answered, not yet durable.
                assert (await client.post("/v1/assign", json={"unitId": unit})).json()["variant"] == variant
                refused = await client.post("/v1/outcomes", json={"unitId": unit, "metric": "revenue", "value": 5})
                assert refused.status_code == 503 and refused.json()["error"] == "StoreError", refused.text
                assert "database is locked" in (runtime.store.health() or "")
                assert runtime.service.exposures[variant] == 0 and not runtime.service.sums
            finally:
                holder.rollback()
                holder.close()
            # The queued exposure went back to the queue: committed now, then the outcome joins it.
            await _until(lambda: runtime.service.exposures[variant] == 1)
            accepted = await client.post("/v1/outcomes", json={"unitId": unit, "metric": "revenue", "value": 5})
            assert accepted.status_code == 200 and accepted.json()["accepted"] == 1, accepted.text
            assert runtime.store.health() is None
        with sqlite3.connect(runtime.store.path) as db:
            assert db.execute("SELECT count(*) FROM exposures").fetchone() == (1,)
            assert db.execute("SELECT count(*) FROM outcomes").fetchone() == (1,)

    run(scenario())
