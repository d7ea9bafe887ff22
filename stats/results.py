"""What one analysis reports: the frozen result types of :func:`croupier.stats.analysis.analyze`.

Kept apart from the computation (numpy, scipy.special) so that code which only reads or writes results, such as the
operator's Experiment status, can import them without loading numpy.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from croupier.stats.inputs import Method


class AnalysisState(StrEnum):
    """What the analysis could report; the values match the Experiment's condition reasons."""

    REPORTED = "Reported"
    INSUFFICIENT_TRAFFIC = "InsufficientTraffic"
    SAMPLE_RATIO_MISMATCH = "SampleRatioMismatch"


class GuardrailState(StrEnum):
    OK = "Ok"
    """Non-inferiority shown: the harm's one-sided upper bound is below the threshold."""
    VIOLATED = "Violated"
    """The harm's one-sided lower bound is above the threshold."""
    INSUFFICIENT = "Insufficient"
    """Neither yet (or no result: too little traffic, SRM, control's mean is 0)."""


@dataclass(frozen=True)
class Interval:
    estimate: float
    lower: float
    upper: float


@dataclass(frozen=True)
class Comparison:
    """A treatment against control on the primary metric.

    ``difference`` is in the metric's units (None when an arm has fewer than two units measured), ``lift`` relative
    to |control mean| (None also when that is 0).
    ``p_value`` and ``adjusted_p_value`` (Holm across the treatments) are set by FixedHorizon and Sequential,
    ``probability_to_beat_control`` and ``expected_loss`` by Bayesian. ``significant``: the treatment beats
    control in the metric's direction by the method's rule (before guardrails)."""

    difference: Interval | None
    lift: Interval | None
    p_value: float | None
    adjusted_p_value: float | None
    probability_to_beat_control: float | None
    expected_loss: float | None
    significant: bool


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    state: GuardrailState
    mean: float | None
    lift: Interval | None
    """Relative change versus control with the one-sided bounds the decision used (each at level alpha)."""


@dataclass(frozen=True)
class VariantResult:
    name: str
    exposures: int
    n: int
    total: float
    mean: float | None
    variance: float | None
    comparison: Comparison | None
    """None for control, for variants without weight, and whenever results are withheld."""
    guardrails: tuple[GuardrailResult, ...]


@dataclass(frozen=True)
class Analysis:
    method: Method
    state: AnalysisState
    progress: float
    """Fraction of the traffic needed before results are reported (1.0 once reached)."""
    planned_samples_per_variant: int | None
    """FixedHorizon: units per variant from the MDE, alpha and power (None without a plan yet)."""
    srm_p_value: float | None
    variants: tuple[VariantResult, ...]
    winner: str | None
