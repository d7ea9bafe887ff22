"""croupier.stats speaks the Experiment API's vocabulary without importing it: the same enum values and defaults, so
the operator maps spec and status by value."""

from __future__ import annotations

from croupier.api import experiment as api
from croupier.stats import (
    AnalysisConfig,
    AnalysisState,
    Direction,
    Guardrail,
    Method,
    Metric,
    MetricKind,
    Moments,
    VariantData,
    analyze,
)


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


def test_every_setting_the_api_accepts_is_accepted() -> None:
    # The API's bounds, at their edges: what admission lets through must not make the analysis fail.
    variants = [
        VariantData("control", 50, 3000, {"m": Moments(3000, 300, 300), "g": Moments(3000, 0.0, 0.0)}),
        VariantData("b", 50, 3000, {"m": Moments(3000, 360, 360), "g": Moments(3000, 30.0, 30.0)}),
    ]
    guardrail = Guardrail("g", MetricKind.COUNT, Direction.DECREASE, threshold=0.0)
    for spec in (
        api.AnalysisSpec(alpha=0.0001, power=0.0001, minimum_samples_per_variant=1, srm_threshold=0.0001),
        api.AnalysisSpec(alpha=0.4999, power=0.9999, minimum_samples_per_variant=1_000_000_000, srm_threshold=0.4999),
    ):
        for method in Method:
            config = AnalysisConfig(
                method=method,
                alpha=spec.alpha,
                power=spec.power,
                minimum_samples_per_variant=spec.minimum_samples_per_variant,
                srm_threshold=spec.srm_threshold,
            )
            for mde in (1e-9, 10.0):
                metric = Metric("m", MetricKind.BINARY, minimum_detectable_effect=mde)
                analyze(variants, "control", metric, [guardrail], config)
