"""One analysis end to end: SRM withholds, traffic gates (FixedHorizon's plan), Holm, guardrails and the winner rule,
and bad input named."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower

from croupier.stats import (
    AnalysisConfig,
    AnalysisState,
    Correction,
    Direction,
    Guardrail,
    GuardrailState,
    Method,
    Metric,
    MetricKind,
    Moments,
    StatsInputError,
    VariantData,
    analyze,
    frequentist,
)

CONVERSION = Metric("conversion", MetricKind.BINARY)
LATENCY = Guardrail("latency_ms", MetricKind.CONTINUOUS, Direction.DECREASE, threshold=0.05)


def binary(name: str, weight: float, exposures: int, conversions: int, **guardrails: Moments) -> VariantData:
    return VariantData(
        name, weight, exposures, {"conversion": Moments(exposures, conversions, conversions), **guardrails}
    )


def latency(seed: int, n: int, mean: float) -> Moments:
    return Moments.of(np.random.default_rng(seed).normal(mean, 20.0, size=n))


def test_sample_ratio_mismatch_withholds_every_result() -> None:
    variants = [binary("control", 50, 5000, 500), binary("b", 50, 4400, 900)]
    result = analyze(variants, "control", CONVERSION)
    expected = frequentist.sequential_srm_p_value([5000, 4400], [50, 50])
    assert result.srm_p_value == pytest.approx(expected, rel=1e-9) and expected < 1e-6
    assert result.state is AnalysisState.SAMPLE_RATIO_MISMATCH
    assert result.winner is None
    assert all(v.comparison is None for v in result.variants)
    # Descriptive numbers stay: exposures and means are facts, not inferences.
    assert [v.mean for v in result.variants] == [0.1, pytest.approx(900 / 4400)]


def test_matching_split_passes_the_srm_check() -> None:
    variants = [binary("control", 20, 2000, 200), binary("b", 80, 8050, 805)]
    result = analyze(variants, "control", CONVERSION)
    assert result.srm_p_value == 1.0  # the data favour the expected split: no evidence of a mismatch
    assert result.state is AnalysisState.REPORTED


def test_exposures_on_a_variant_without_weight_are_a_mismatch() -> None:
    variants = [binary("control", 50, 1000, 100), binary("b", 50, 1000, 100), binary("off", 0, 3, 0)]
    result = analyze(variants, "control", CONVERSION)
    assert result.srm_p_value == 0.0
    assert result.state is AnalysisState.SAMPLE_RATIO_MISMATCH


def test_variant_without_weight_and_traffic_gets_no_comparison() -> None:
    variants = [binary("control", 50, 1000, 100), binary("b", 50, 1000, 180), binary("off", 0, 0, 0)]
    result = analyze(variants, "control", CONVERSION)
    by_name = {v.name: v for v in result.variants}
    assert by_name["b"].comparison is not None
    assert by_name["off"].comparison is None
    assert by_name["off"].mean is None
    assert result.winner == "b"


def test_too_few_exposures_report_progress_instead_of_results() -> None:
    variants = [binary("control", 50, 60, 6), binary("b", 50, 45, 40)]
    result = analyze(variants, "control", CONVERSION, config=AnalysisConfig(minimum_samples_per_variant=100))
    assert result.state is AnalysisState.INSUFFICIENT_TRAFFIC
    assert result.progress == pytest.approx(0.45)
    assert result.winner is None
    assert all(v.comparison is None for v in result.variants)


def test_fixed_horizon_reports_only_once_the_planned_sample_size_is_reached() -> None:
    metric = Metric("conversion", MetricKind.BINARY, minimum_detectable_effect=0.1)
    config = AnalysisConfig(method=Method.FIXED_HORIZON, alpha=0.05, power=0.8)
    # Plan from control's rate 0.1 against 0.11, two arms, alpha 0.05, power 0.8 (statsmodels' normal power).
    sd = math.sqrt((0.1 * 0.9 + 0.11 * 0.89) / 2)
    reference = NormalIndPower().solve_power(effect_size=0.01 / sd, alpha=0.05, power=0.8, ratio=1.0)
    early = analyze([binary("control", 50, 7000, 700), binary("b", 50, 7000, 800)], "control", metric, config=config)
    assert early.planned_samples_per_variant == math.ceil(reference)
    assert early.state is AnalysisState.INSUFFICIENT_TRAFFIC
    assert early.progress == pytest.approx(7000 / math.ceil(reference))
    assert early.winner is None

    assert early.planned_samples_per_variant is not None
    n = math.ceil(early.planned_samples_per_variant / 10) * 10  # control's rate stays exactly 0.1
    done = analyze(
        [binary("control", 50, n, n // 10), binary("b", 50, n, n // 10 + 200)], "control", metric, config=config
    )
    assert done.state is AnalysisState.REPORTED
    assert done.progress == 1.0
    assert done.winner == "b"


def test_fixed_horizon_plan_frozen_by_the_caller_does_not_move_with_controls_mean() -> None:
    metric = Metric("conversion", MetricKind.BINARY, minimum_detectable_effect=0.1)
    config = AnalysisConfig(method=Method.FIXED_HORIZON)
    variants = [binary("control", 50, 15_000, 1400), binary("b", 50, 15_000, 1650)]
    moving = analyze(variants, "control", metric, config=config)
    assert moving.state is AnalysisState.INSUFFICIENT_TRAFFIC  # control's 9.3% needs more units than planned at 10%
    assert moving.planned_samples_per_variant is not None and moving.planned_samples_per_variant > 15_000
    frozen = analyze(variants, "control", metric, config=config, planned_samples=14_749)
    assert frozen.state is AnalysisState.REPORTED
    assert frozen.planned_samples_per_variant == 14_749
    assert frozen.winner == "b"
    with pytest.raises(StatsInputError, match="plannedSamples: must be a positive integer"):
        analyze(variants, "control", metric, config=config, planned_samples=0)


def test_fixed_horizon_plan_splits_alpha_over_the_treatments() -> None:
    metric = Metric("conversion", MetricKind.BINARY, minimum_detectable_effect=0.1)
    config = AnalysisConfig(method=Method.FIXED_HORIZON)
    two = analyze([binary("control", 50, 10, 1), binary("b", 50, 10, 1)], "control", metric, config=config)
    four = analyze(
        [binary("control", 25, 10, 1), *(binary(f"v{i}", 25, 10, 1) for i in range(3))],
        "control",
        metric,
        config=config,
    )
    sd = math.sqrt((0.1 * 0.9 + 0.11 * 0.89) / 2)
    reference = NormalIndPower().solve_power(effect_size=0.01 / sd, alpha=0.05 / 3, power=0.8, ratio=1.0)
    assert four.planned_samples_per_variant == math.ceil(reference)
    assert four.planned_samples_per_variant > (two.planned_samples_per_variant or 0)


def test_holm_adjusts_the_p_values_across_variants_and_the_best_significant_variant_wins() -> None:
    variants = [
        binary("control", 25, 4000, 400),
        binary("same", 25, 4000, 410),
        binary("better", 25, 4000, 520),
        binary("best", 25, 4000, 560),
    ]
    for method in (Method.FIXED_HORIZON, Method.SEQUENTIAL):
        result = analyze(variants, "control", CONVERSION, config=AnalysisConfig(method=method))
        comparisons = [v.comparison for v in result.variants[1:]]
        raw = [c.p_value for c in comparisons if c is not None]
        adjusted = [c.adjusted_p_value for c in comparisons if c is not None]
        assert adjusted == pytest.approx(list(multipletests(raw, method="holm")[1]), rel=1e-9)
        assert [c.significant for c in comparisons if c is not None] == [False, True, True]
        assert result.winner == "best"
        assert result.variants[0].comparison is None


def test_a_variant_significant_only_before_holm_does_not_win() -> None:
    # Three treatments; the one with an effect has p just under alpha, so Holm's factor of 3 lifts it above.
    variants = [binary("control", 25, 5000, 500), binary("a", 25, 5000, 500), binary("b", 25, 5000, 500)]
    variants.append(binary("c", 25, 5000, 570))
    result = analyze(variants, "control", CONVERSION, config=AnalysisConfig(method=Method.FIXED_HORIZON))
    c = result.variants[3].comparison
    assert c is not None and c.p_value is not None and c.adjusted_p_value is not None
    assert c.p_value < 0.05 < c.adjusted_p_value
    assert result.winner is None


@pytest.mark.parametrize(
    ("correction", "reference"),
    [(Correction.BONFERRONI, "bonferroni"), (Correction.HOLM, "holm"), (Correction.NONE, None)],
)
def test_the_multiple_comparison_rule_is_the_configured_one(correction: Correction, reference: str | None) -> None:
    variants = [binary("control", 25, 5000, 500), binary("a", 25, 5000, 520), binary("b", 25, 5000, 560)]
    variants.append(binary("c", 25, 5000, 570))
    config = AnalysisConfig(method=Method.FIXED_HORIZON, correction=correction)
    comparisons = [v.comparison for v in analyze(variants, "control", CONVERSION, config=config).variants[1:]]
    raw = [c.p_value for c in comparisons if c is not None]
    adjusted = [c.adjusted_p_value for c in comparisons if c is not None]
    expected = raw if reference is None else list(multipletests(raw, method=reference)[1])
    assert adjusted == pytest.approx(expected, rel=1e-9)


def test_control_beating_every_variant_is_no_winner() -> None:
    result = analyze([binary("control", 50, 4000, 600), binary("b", 50, 4000, 400)], "control", CONVERSION)
    comparison = result.variants[1].comparison
    assert comparison is not None and comparison.p_value is not None and comparison.p_value < 1e-6
    assert not comparison.significant
    assert result.winner is None


def test_direction_decrease_makes_the_lower_mean_win() -> None:
    metric = Metric("bounce", MetricKind.BINARY, Direction.DECREASE)
    variants = [
        VariantData("control", 50, 4000, {"bounce": Moments(4000, 1200, 1200)}),
        VariantData("b", 50, 4000, {"bounce": Moments(4000, 1000, 1000)}),
    ]
    for method in Method:
        result = analyze(variants, "control", metric, config=AnalysisConfig(method=method))
        assert result.winner == "b", method


def test_bayesian_reports_probability_to_beat_control_and_loss() -> None:
    variants = [binary("control", 50, 3000, 300), binary("b", 50, 3000, 360)]
    result = analyze(variants, "control", CONVERSION, config=AnalysisConfig(method=Method.BAYESIAN))
    comparison = result.variants[1].comparison
    assert comparison is not None
    assert comparison.p_value is None
    assert comparison.probability_to_beat_control is not None and comparison.probability_to_beat_control > 0.99
    assert comparison.expected_loss is not None and 0 <= comparison.expected_loss < 1e-4
    assert result.winner == "b"
    close = analyze(
        [binary("control", 50, 3000, 300), binary("b", 50, 3000, 310)],
        "control",
        CONVERSION,
        config=AnalysisConfig(method=Method.BAYESIAN),
    )
    assert close.winner is None


def test_guardrail_violation_blocks_the_winner() -> None:
    n = 4000
    variants = [
        binary("control", 50, n, 400, latency_ms=latency(1, n, 100.0)),
        binary("b", 50, n, 560, latency_ms=latency(2, n, 120.0)),
    ]
    for method in Method:
        result = analyze(variants, "control", CONVERSION, [LATENCY], AnalysisConfig(method=method))
        comparison = result.variants[1].comparison
        assert comparison is not None and comparison.significant, method
        (guard,) = result.variants[1].guardrails
        assert guard.state is GuardrailState.VIOLATED, method
        assert guard.lift is not None and guard.lift.lower > 0.05
        assert guard.mean == pytest.approx(120.0, abs=1.5)
        assert result.winner is None, method


def test_guardrail_shown_harmless_lets_the_winner_through() -> None:
    n = 4000
    variants = [
        binary("control", 50, n, 400, latency_ms=latency(1, n, 100.0)),
        binary("b", 50, n, 560, latency_ms=latency(2, n, 100.0)),
    ]
    for method in Method:
        result = analyze(variants, "control", CONVERSION, [LATENCY], AnalysisConfig(method=method))
        (guard,) = result.variants[1].guardrails
        assert guard.state is GuardrailState.OK, method
        assert guard.lift is not None and guard.lift.upper < 0.05
        assert result.winner == "b", method


def test_guardrail_not_yet_decided_holds_the_winner_back() -> None:
    # 200 units cannot show that latency is within 5%: neither violated nor ok.
    n = 200
    variants = [
        binary("control", 50, n, 20, latency_ms=latency(1, n, 100.0)),
        binary("b", 50, n, 90, latency_ms=latency(2, n, 103.0)),
    ]
    result = analyze(variants, "control", CONVERSION, [LATENCY], AnalysisConfig(method=Method.SEQUENTIAL))
    (guard,) = result.variants[1].guardrails
    assert guard.state is GuardrailState.INSUFFICIENT
    assert result.variants[1].comparison is not None and result.variants[1].comparison.significant
    assert result.winner is None


def test_guardrails_are_undecided_while_results_are_withheld() -> None:
    variants = [
        binary("control", 50, 50, 5, latency_ms=latency(1, 50, 100.0)),
        binary("b", 50, 50, 9, latency_ms=latency(2, 50, 300.0)),
    ]
    result = analyze(variants, "control", CONVERSION, [LATENCY])
    assert result.state is AnalysisState.INSUFFICIENT_TRAFFIC
    assert [g.state for g in result.variants[1].guardrails] == [GuardrailState.INSUFFICIENT]


def test_lift_is_relative_to_the_magnitude_of_a_negative_control_mean() -> None:
    metric = Metric("delta", MetricKind.CONTINUOUS)
    rng = np.random.default_rng(5)
    variants = [
        VariantData("control", 50, 3000, {"delta": Moments.of(rng.normal(-2.0, 1.0, 3000))}),
        VariantData("b", 50, 3000, {"delta": Moments.of(rng.normal(-1.0, 1.0, 3000))}),
    ]
    result = analyze(variants, "control", metric, config=AnalysisConfig(method=Method.FIXED_HORIZON))
    comparison = result.variants[1].comparison
    assert comparison is not None and comparison.lift is not None
    assert comparison.lift.estimate == pytest.approx(0.5, abs=0.05)
    assert comparison.lift.lower < comparison.lift.estimate < comparison.lift.upper
    assert result.winner == "b"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"control": "nope"}, "control: 'nope' is not one of the variants"),
        ({"names": ["a", "a"]}, "duplicate variant names ['a']"),
        ({"conversions": 2000}, "variants[control].metrics[conversion].sum: a Binary metric counts units"),
        ({"squares": 107.0}, "sumOfSquares: a Binary metric's values are 0 or 1"),
        ({"exposures": -1}, "variants[control].exposures: must be an integer >= 0"),
        ({"n": 1001}, "variants[control].metrics[conversion].n: 1001 units measured but only 1000 exposed"),
        ({"extra": True}, "variants[control].metrics: unknown metrics ['revenue']"),
        ({"missing": True}, "variants[control].metrics: missing 'conversion'"),
        ({"weight": -5.0}, "variants[control].weight: must be a number >= 0"),
        ({"control_weight": 0.0}, "variants[control].weight: control needs a weight above 0"),
        ({"sum": math.nan}, "variants[control].metrics[conversion].sum: must be a finite number"),
        ({"config": AnalysisConfig(alpha=0.7)}, "alpha: must be in (0, 0.5)"),
        ({"config": AnalysisConfig(sequential_tuning_parameter=0)}, "sequentialTuningParameter: must be a positive"),
        ({"config": AnalysisConfig(beta_prior=(0.0, 1.0))}, "betaPrior: both parameters must be positive"),
        ({"mde": -0.1}, "metric.minimumDetectableEffect: must be a positive number"),
        ({"guardrail_threshold": -1.0}, "guardrails[latency_ms].threshold: must be a number >= 0"),
    ],
)
def test_bad_input_is_named(change: dict[str, object], message: str) -> None:
    names = change.get("names", ["control", "b"])
    assert isinstance(names, list)
    conversions = change.get("conversions", 100)
    squares = change.get("squares", conversions)
    total = change.get("sum", conversions)
    metrics: dict[str, Moments] = {
        "conversion": Moments(change.get("n", 1000), total, squares),  # type: ignore[arg-type]
        "latency_ms": Moments(1000, 1000.0, 2000.0),
    }
    if change.get("extra"):
        metrics["revenue"] = Moments(1000, 1.0, 1.0)
    if change.get("missing"):
        del metrics["conversion"]
    weight = change.get("weight", change.get("control_weight", 50.0))
    variants = [
        VariantData(names[0], weight, change.get("exposures", 1000), metrics),  # type: ignore[arg-type]
        VariantData(names[1], 50.0, 1000, {"conversion": Moments(1000, 100, 100), "latency_ms": metrics["latency_ms"]}),
    ]
    metric = Metric("conversion", MetricKind.BINARY, minimum_detectable_effect=change.get("mde"))  # type: ignore[arg-type]
    guardrail = Guardrail(
        "latency_ms", MetricKind.CONTINUOUS, Direction.DECREASE, change.get("guardrail_threshold", 0.05)
    )  # type: ignore[arg-type]
    config = change.get("config", AnalysisConfig())
    assert isinstance(config, AnalysisConfig)
    with pytest.raises(StatsInputError) as error:
        analyze(variants, str(change.get("control", "control")), metric, [guardrail], config)
    assert message in str(error.value)


def test_impossible_sums_are_rejected() -> None:
    # Three values cannot sum to 30 with squares summing to 10 (n * sum of squares >= sum^2).
    variants = [
        VariantData("control", 50, 3, {"x": Moments(3, 30.0, 10.0)}),
        VariantData("b", 50, 3, {"x": Moments(3, 1.0, 1.0)}),
    ]
    with pytest.raises(
        StatsInputError, match=r"variants\[control\]\.metrics\[x\]: sum 30.0 and sumOfSquares 10.0 cannot come"
    ):
        analyze(variants, "control", Metric("x", MetricKind.CONTINUOUS))
    count = [VariantData("control", 50, 3, {"x": Moments(3, -3.0, 3.0)}), variants[1]]
    with pytest.raises(StatsInputError, match="a Count metric cannot be negative"):
        analyze(count, "control", Metric("x", MetricKind.COUNT))


def test_the_docs_example_prints_what_the_docs_say(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parents[3] / "docs" / "statistics.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.DOTALL)
    assert block is not None
    code = block.group(1)
    expected = re.search(r"^# (.*)$", code, re.MULTILINE)
    assert expected is not None
    exec(compile(code, "docs/statistics.md", "exec"), {})
    assert capsys.readouterr().out.strip() == expected.group(1)


@pytest.mark.parametrize("method", list(Method))
def test_a_metric_measured_on_fewer_than_two_units_has_no_result(method: Method) -> None:
    guardrail = Guardrail("g", MetricKind.CONTINUOUS, Direction.DECREASE, 0.05)
    variants = [
        binary("control", 50, 1000, 100, g=Moments(1, 3.0, 9.0)),
        binary("b", 50, 1000, 180, g=Moments(500, 1000.0, 2100.0)),
    ]
    result = analyze(variants, "control", CONVERSION, [guardrail], AnalysisConfig(method=method))
    (guard,) = result.variants[1].guardrails
    assert guard.state is GuardrailState.INSUFFICIENT
    assert guard.lift is None
    assert guard.mean == 2.0
    comparison = result.variants[1].comparison
    assert comparison is not None and comparison.significant  # the primary metric is unaffected
    assert result.winner is None  # but an undecided guardrail holds the winner back


def test_treatments_without_weight_leave_nothing_to_compare() -> None:
    variants = [binary("control", 100, 1000, 100), binary("b", 0, 0, 0)]
    for method in Method:
        result = analyze(variants, "control", CONVERSION, config=AnalysisConfig(method=method))
        assert result.state is AnalysisState.REPORTED
        assert [v.comparison for v in result.variants] == [None, None]
        assert result.winner is None
