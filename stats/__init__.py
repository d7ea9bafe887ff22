"""Experiment statistics: pure functions from per-variant sufficient statistics (n, sum, sum of squares) to results.

``analyze`` runs one analysis (SRM, traffic, FixedHorizon / Sequential / Bayesian comparisons, Holm, guardrails,
winner); ``compare_arms`` is its vectorised core. docs/statistics.md has the formulas and their verification.
"""

from croupier.stats.analysis import (
    Analysis,
    AnalysisState,
    Comparison,
    GuardrailResult,
    GuardrailState,
    Interval,
    VariantResult,
    analyze,
    guardrail_interval_alpha,
    guardrail_states,
    planned_samples_per_variant,
)
from croupier.stats.comparison import ArmComparison, compare_arms, mean_and_variance
from croupier.stats.inputs import (
    AnalysisConfig,
    Correction,
    Direction,
    Guardrail,
    Method,
    Metric,
    MetricKind,
    Moments,
    StatsInputError,
    VariantData,
)

__all__ = [
    "Analysis",
    "AnalysisConfig",
    "AnalysisState",
    "ArmComparison",
    "Comparison",
    "Correction",
    "Direction",
    "Guardrail",
    "GuardrailResult",
    "GuardrailState",
    "Interval",
    "Method",
    "Metric",
    "MetricKind",
    "Moments",
    "StatsInputError",
    "VariantData",
    "VariantResult",
    "analyze",
    "compare_arms",
    "guardrail_interval_alpha",
    "guardrail_states",
    "mean_and_variance",
    "planned_samples_per_variant",
]
