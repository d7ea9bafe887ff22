"""When the per-object supervisor resyncs for the first time: at once for a new object (its children are applied
while Kopf adds its finalizer), spread over the initial delay for an object known before a restart."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from croupier.operator.core.controller import Services
from croupier.operator.core.kube import KubeClient
from croupier.operator.core.supervisor import Supervisor
from croupier.operator.decisionpolicy.handlers import CONTROLLER
from croupier.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit


def first_resync_after(body: dict[str, Any], initial_delay: float) -> float | None:
    """Seconds from the daemon's start to its first resync, or None if none came within 0.5 s."""

    async def scenario() -> float | None:
        settings = OperatorSettings(resync_initial_delay_seconds=initial_delay)
        async with httpx.AsyncClient() as http:
            supervisor = Supervisor(KubeClient.__new__(KubeClient), Services(settings=settings, http=http))
            loop = asyncio.get_running_loop()
            started = loop.time()
            resyncs: list[float] = []

            async def resync(controller: Any, body: Any, indexes: Any) -> float | None:
                resyncs.append(loop.time() - started)
                return None

            supervisor.resync = resync  # type: ignore[method-assign]
            daemon = asyncio.create_task(supervisor.supervise(CONTROLLER, body, {}))  # type: ignore[arg-type]
            await asyncio.sleep(0.5)
            daemon.cancel()
            await asyncio.gather(daemon, return_exceptions=True)
            return resyncs[0] if resyncs else None

    return asyncio.run(scenario())


def body(status: dict[str, Any] | None) -> dict[str, Any]:
    meta = {"name": "banner", "namespace": "games", "uid": "u-1", "generation": 1}
    return {"metadata": meta, **({"status": status} if status is not None else {})}


@pytest.mark.parametrize("status", [None, {}, {"conditions": []}])
def test_a_new_object_is_resynced_at_once(status: dict[str, Any] | None) -> None:
    after = first_resync_after(body(status), initial_delay=600)
    assert after is not None and after < 0.25


def test_an_object_reconciled_before_a_restart_waits_for_its_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    spread: list[tuple[float, float]] = []

    def uniform(low: float, high: float, _seen: Callable[..., Any] = spread.append) -> float:
        _seen((low, high))
        return 60.0

    monkeypatch.setattr("croupier.operator.core.supervisor.random.uniform", uniform)
    assert first_resync_after(body({"observedGeneration": 1}), initial_delay=120) is None
    assert spread == [(0, 120)]
