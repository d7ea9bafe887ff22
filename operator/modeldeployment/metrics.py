"""The per-object gauges of a ModelDeployment, from its computed status (``croupier.operator.core.object_metrics``)."""

from __future__ import annotations

from croupier.api.modeldeployment import ModelDeploymentStatus
from croupier.operator import metrics
from croupier.operator.core.object_metrics import Sample


def status_samples(status: ModelDeploymentStatus) -> list[Sample]:
    """Live canary weight, the rollout's state and the latest analysis interval's result and error rates."""
    samples = [Sample(metrics.CANARY_WEIGHT, float(status.canary_weight or 0))]
    rollout = status.rollout
    if rollout is None:
        return samples
    version = str(rollout.canary_version)
    samples.append(Sample(metrics.CANARY_STATE, 1.0, (version, str(rollout.state))))
    latest = rollout.analyses[-1] if rollout.analyses else None
    if latest is not None:
        samples.append(Sample(metrics.CANARY_ANALYSIS, 1.0, (version, str(latest.result))))
        if latest.error_rate is not None:
            samples.append(Sample(metrics.CANARY_ERROR_RATE, latest.error_rate, ("canary",)))
        if latest.stable_error_rate is not None:
            samples.append(Sample(metrics.CANARY_ERROR_RATE, latest.stable_error_rate, ("stable",)))
    return samples
