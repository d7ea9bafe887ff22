"""The Analyst's decisions that need no network: nothing to measure, and no pods to measure."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from croupier.api.modeldeployment import ModelDeploymentSpec
from croupier.operator.modeldeployment.canary.analyst import Analyst
from croupier.operator.modeldeployment.canary.engine import advance
from croupier.operator.modeldeployment.canary.measurement import InsufficientData

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def spec(**analysis: Any) -> ModelDeploymentSpec:
    canary: dict[str, Any] = {"version": 2, "weight": 10}
    if analysis:
        canary["analysis"] = analysis
    return ModelDeploymentSpec.model_validate(
        {"model": {"name": "ranker", "storageUri": "file:///m/ranker"}, "stable": {"version": 1}, "canary": canary}
    )


def observe(md: ModelDeploymentSpec, at: datetime) -> object:
    rollout = advance(md, None, None, T0, True).rollout

    async def go() -> object:
        async with httpx.AsyncClient() as client:
            return await Analyst(client, namespace="ml", name="ranker").observe(md, rollout, at, None)

    return asyncio.run(go())


def test_nothing_is_measured_without_analysis_or_before_the_interval_ends() -> None:
    assert observe(spec(), T0 + timedelta(hours=1)) is None
    assert observe(spec(maxErrorRate=0.01), T0 + timedelta(seconds=59)) is None
    prometheus = {
        "type": "Prometheus",
        "prometheus": {"url": "http://p:9090", "queries": {"requests": "x", "errorRate": "y"}},
    }
    assert observe(spec(maxErrorRate=0.01, source=prometheus), T0 + timedelta(seconds=59)) is None


def test_an_interval_without_known_pods_is_insufficient_data() -> None:
    observation = observe(spec(maxErrorRate=0.01), T0 + timedelta(seconds=60))
    assert isinstance(observation, InsufficientData) and "pods are not known" in observation.reason
