"""croupier.stats speaks the Experiment API's vocabulary without importing it: the same enum values and defaults, so
the operator maps spec and status by value."""

from __future__ import annotations

from croupier.api import experiment as api
from croupier.stats import AnalysisConfig, AnalysisState, Direction, Method, MetricKind


def test_enum_values_match_the_api() -> None:
    assert {m.value for m in MetricKind} == {m.value for m in api.MetricType}
    assert {d.value for d in Direction} == {d.value for d in api.Direction}
    assert {m.value for m in Method} == {m.value for m in api.AnalysisMethod}


def test_withheld_states_are_condition_reasons() -> None:
    reasons = {r.value for r in api.Reason}
    assert AnalysisState.INSUFFICIENT_TRAFFIC.value in reasons
    assert AnalysisState.SAMPLE_RATIO_MISMATCH.value in reasons


def test_defaults_match_the_api() -> None:
    spec, config = api.AnalysisSpec(), AnalysisConfig()
    assert config.method.value == spec.method.value
    assert (config.alpha, config.power) == (spec.alpha, spec.power)
    assert config.minimum_samples_per_variant == spec.minimum_samples_per_variant
    assert config.srm_threshold == spec.srm_threshold
    assert Direction.INCREASE.value == api.MetricSpec(name="m", type=api.MetricType.BINARY).direction.value
