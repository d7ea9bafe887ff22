"""Experiment statistics: pure functions from per-variant sufficient statistics (n, sum, sum of squares) to results.

``analyze`` runs one analysis (SRM, traffic, FixedHorizon / Sequential / Bayesian comparisons, Holm, guardrails,
winner); ``compare_arms`` is its vectorised core. docs/statistics.md has the formulas and their verification.

Importing the package loads no numpy: the inputs and the result types are plain; the computing names (``analyze``,
``compare_arms``, ...) import their modules, and numpy with them, when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from croupier.stats.results import (
    Analysis,
    AnalysisState,
    Comparison,
    GuardrailResult,
    GuardrailState,
    Interval,
    VariantResult,
)

if TYPE_CHECKING:
    from croupier.stats.analysis import (
        analyze,
        guardrail_interval_alpha,
        guardrail_states,
        planned_samples_per_variant,
    )
    from croupier.stats.comparison import ArmComparison, compare_arms, mean_and_variance

# The computing half loads numpy (and, on first use, scipy.special): imported when one of its names is first used.
_COMPUTED = {
    "analyze": "croupier.stats.analysis",
    "guardrail_interval_alpha": "croupier.stats.analysis",
    "guardrail_states": "croupier.stats.analysis",
    "planned_samples_per_variant": "croupier.stats.analysis",
    "ArmComparison": "croupier.stats.comparison",
    "compare_arms": "croupier.stats.comparison",
    "mean_and_variance": "croupier.stats.comparison",
}
COMPUTING_MODULES = ("croupier.stats.analysis", "scipy.special")
"""What the first analysis imports (numpy with them): a caller on an event loop imports these in a thread first."""


def __getattr__(name: str) -> Any:
    module = _COMPUTED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
