"""Fixtures for runtime unit tests: policies built in memory, a runtime on a temporary state dir, an ASGI client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import ServedPolicy, parse_policy
from croupier.runtime.settings import RuntimeSettings


def policy_document(name: str = "banner", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "arms": [{"name": "blue"}, {"name": "green"}, {"name": "red"}],
        "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.1}},
    }
    body.update(spec)
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": "games", "generation": 2},
        "spec": body,
    }


def served_policy(**spec: Any) -> ServedPolicy:
    return parse_policy(policy_document(**spec))


CONTEXTUAL = {
    "algorithm": {"type": "LinUCB"},
    "context": {"features": ["level", "spend"]},
    "reward": {"type": "Continuous"},
}


@asynccontextmanager
async def running(
    served: ServedPolicy, state_dir: Path, **settings: Any
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A started runtime (real engine, real SQLite) and an HTTP client speaking to its ASGI app in process."""
    options: dict[str, Any] = {"state_dir": state_dir, "seed": 7, "sweep_interval_seconds": 0.05}
    options.update(settings)
    runtime = Runtime(RuntimeSettings(**options), served, metrics=RuntimeMetrics())
    await runtime.start()
    transport = httpx.ASGITransport(app=HttpApp(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
            yield runtime, client
    finally:
        await runtime.stop()


@pytest.fixture
def run() -> Callable[[Any], Any]:
    """Run a coroutine to completion (the suite has no asyncio plugin)."""
    return asyncio.run
