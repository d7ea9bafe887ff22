"""What the reconcile calls on each pass to get the observation ``advance`` needs: the right source for the spec,
scraped or queried at the right moments.

    observation = await analyst.observe(spec, status.rollout, now, pods)
    outcome = advance(spec, status.rollout, observation, now, canary_available)

One Analyst per ModelDeployment (RuntimeStats keeps the pods' recent scrapes between passes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import httpx

from croupier.api.modeldeployment import MetricsSourceType, ModelDeploymentSpec, RolloutStatus

from .engine import due
from .measurement import InsufficientData, Observation
from .prometheus import PrometheusMetrics
from .runtimestats import TF_SERVING, MetricNames, RuntimeStats, Targets


@dataclass(frozen=True)
class VersionTargets:
    """The metrics endpoints of the canary's and the stable version's pods (RuntimeStats only). ``problem``: why
    these endpoints cannot give exact numbers (an interval that ends meanwhile is InsufficientData with it)."""

    canary: Targets
    stable: Targets
    problem: str | None = None


class Analyst:
    def __init__(
        self, client: httpx.AsyncClient, *, namespace: str, name: str, names: MetricNames = TF_SERVING
    ) -> None:
        self._client = client
        self.namespace, self.name = namespace, name
        self.names = names
        self._stats: RuntimeStats | None = None

    async def observe(
        self,
        spec: ModelDeploymentSpec,
        rollout: RolloutStatus | None,
        now: datetime,
        pods: VersionTargets | None,
    ) -> Observation | None:
        """The measurement of the interval that has ended, or None when none is due. With RuntimeStats every call
        scrapes the pods, so that the next interval has its opening scrape."""
        canary = spec.canary
        if canary is None or canary.analysis is None:
            return None
        window = due(spec, rollout, now)
        source = canary.analysis.source
        if source.type == MetricsSourceType.PROMETHEUS:
            assert source.prometheus is not None
            if window is None:
                return None
            prometheus = PrometheusMetrics(
                source.prometheus, self._client, model=spec.model.name, namespace=self.namespace, name=self.name
            )
            return await prometheus.measure(window)
        stats = self._runtime_stats(spec.model.name)
        if window is None:
            if pods is not None:
                await stats.scrape([pods.canary, pods.stable], now)
            return None
        if pods is None:
            return InsufficientData("the canary's pods are not known yet (no metrics endpoints to scrape)")
        if pods.problem is not None:
            await stats.scrape([pods.canary, pods.stable], now)
            return InsufficientData(pods.problem)
        return await stats.measure(window, pods.canary, pods.stable)

    def _runtime_stats(self, model: str) -> RuntimeStats:
        if self._stats is None or self._stats.model != model:
            self._stats = RuntimeStats(model, self._client, names=self.names)
        return self._stats
