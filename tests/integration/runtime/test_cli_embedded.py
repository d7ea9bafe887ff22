"""The console script around a runtime started in the test process: export of its decision log, and the start-up heap
frozen once the runtime started (both start the SQLite writer thread)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import structlog
import yaml
from support.policies import policy_document

from croupier.runtime.assembly import Runtime
from croupier.runtime.cli import freeze_start_up_heap, main
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import load_policy
from croupier.runtime.settings import RuntimeSettings

from .conftest import running

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _keep_logging_configuration() -> Iterator[None]:
    """`main` configures structlog for the process; give the next tests the configuration they had."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_export_writes_the_decision_log_as_json_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_document()))
    served = load_policy(policy)

    async def decide() -> list[str]:
        async with running(served, tmp_path / "state") as (_runtime, client):
            return [(await client.post("/v1/decide", json={})).json()["decisionId"] for _ in range(3)]

    ids = asyncio.run(decide())
    out = tmp_path / "decisions.jsonl"
    args = ["export", "--policy", str(policy), "--state-dir", str(tmp_path / "state"), "--output", str(out)]
    assert main(args) == 0
    assert [orjson.loads(line)["decisionId"] for line in out.read_bytes().splitlines()] == ids
    assert main([*args[:5], "--output", str(out), "--after", ids[0]]) == 0
    assert len(out.read_bytes().splitlines()) == 2
    assert main(["export", "--database", str(tmp_path / "missing.sqlite3")]) == 2


def test_the_server_freezes_its_start_up_heap_once_the_runtime_started(tmp_path: Path, run: Any) -> None:
    calls: list[int] = []
    served = load_policy(_write(tmp_path, policy_document()))
    runtime = Runtime(RuntimeSettings(state_dir=tmp_path, seed=1), served, metrics=RuntimeMetrics())
    app = HttpApp(runtime, on_started=lambda: calls.append(gc.get_freeze_count()))
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    run(app({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert len(calls) == 1
    before = gc.get_freeze_count()
    try:
        freeze_start_up_heap()
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()


def _write(tmp_path: Path, document: dict[str, Any]) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(document))
    return policy
