"""The per-object gauges of an Experiment, from its computed status (``croupier.operator.core.object_metrics``)."""

from __future__ import annotations

from croupier.api.experiment import ExperimentStatus
from croupier.operator import metrics
from croupier.operator.core.object_metrics import Sample


def status_samples(status: ExperimentStatus) -> list[Sample]:
    """Exposures per variant, the SRM p-value and each variant's guardrails, once an analysis has run."""
    samples: list[Sample] = []
    for variant in status.variants or ():
        samples.append(Sample(metrics.EXPERIMENT_EXPOSURES, float(variant.exposures), (variant.name,)))
        for guardrail in variant.guardrails or ():
            violated = 1.0 if guardrail.violated else 0.0
            samples.append(Sample(metrics.EXPERIMENT_GUARDRAIL_VIOLATED, violated, (variant.name, guardrail.name)))
    if status.srm_p_value is not None:
        samples.append(Sample(metrics.EXPERIMENT_SRM_P_VALUE, status.srm_p_value))
    return samples
