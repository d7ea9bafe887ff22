"""Invariances every analysis must have, for any input hypothesis finds: the order of the variants does not matter,
and neither do the metric's unit (scaling by c > 0) or, for differences, its origin (adding a constant)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.stats import (
    Analysis,
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

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True)  # fixed examples: a failure reproduces
GUARDRAIL = Guardrail("g", MetricKind.CONTINUOUS, Direction.DECREASE, 0.05)


def normal_moments(n: int, mean: float, sd: float) -> Moments:
    return Moments(n, n * mean, (n - 1) * sd**2 + n * mean**2)


@st.composite
def experiments(draw: st.DrawFn, kind: MetricKind) -> list[VariantData]:
    count = draw(st.integers(2, 5))
    variants = []
    for i in range(count):
        n = draw(st.integers(100, 20_000))
        if kind is MetricKind.BINARY:
            x = draw(st.integers(0, n))
            primary = Moments(n, x, x)
        else:
            low = 0.0 if kind is MetricKind.COUNT else -50.0
            primary = normal_moments(n, draw(st.floats(low, 50)), draw(st.floats(0.5, 50)))
        guard = normal_moments(n, draw(st.floats(20, 50)), draw(st.floats(0.5, 10)))
        variants.append(VariantData(f"v{i}", 1.0, n, {"m": primary, "g": guard}))
    # Weights proportional to the exposures: no sample ratio mismatch, so the results are reported.
    total = sum(v.exposures for v in variants)
    return [dataclasses.replace(v, weight=100 * v.exposures / total) for v in variants]


def scaled(variants: list[VariantData], name: str, c: float = 1.0, k: float = 0.0) -> list[VariantData]:
    """Every value x of metric ``name`` becomes c x + k."""
    out = []
    for v in variants:
        m = v.metrics[name]
        moments = Moments(m.n, c * m.total + k * m.n, c**2 * m.sum_of_squares + 2 * c * k * m.total + m.n * k**2)
        out.append(dataclasses.replace(v, metrics={**v.metrics, name: moments}))
    return out


def assert_close(a: Any, b: Any, path: str = "") -> None:
    """Structural equality with floats compared to 1e-6 relative (sums of squares lose digits to cancellation)."""
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        assert type(a) is type(b), path
        for f in dataclasses.fields(a):
            assert_close(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and not isinstance(a, bool):
        assert isinstance(b, float), path
        assert b == pytest.approx(a, rel=1e-6, abs=1e-9), path
    else:
        assert a == b, path


def run(variants: list[VariantData], kind: MetricKind, method: Method) -> Analysis:
    return analyze(variants, "v0", Metric("m", kind), [GUARDRAIL], AnalysisConfig(method=method))


@PROPERTY
@given(st.data(), st.sampled_from(list(MetricKind)), st.sampled_from(list(Method)))
def test_permuting_the_variants_permutes_the_results(data: st.DataObject, kind: MetricKind, method: Method) -> None:
    variants = data.draw(experiments(kind))
    order = data.draw(st.permutations(range(len(variants))))
    before = run(variants, kind, method)
    assert before.state is AnalysisState.REPORTED
    after = run([variants[i] for i in order], kind, method)
    assert_close(tuple(before.variants[i] for i in order), after.variants)
    assert_close(dataclasses.replace(before, variants=()), dataclasses.replace(after, variants=()))


@PROPERTY
@given(
    experiments(MetricKind.CONTINUOUS),
    st.sampled_from(list(Method)),
    st.floats(1e-3, 1e3),
)
def test_scaling_a_metric_leaves_p_values_and_probabilities_unchanged(
    variants: list[VariantData], method: Method, c: float
) -> None:
    before = run(variants, MetricKind.CONTINUOUS, method)
    assert before.state is AnalysisState.REPORTED
    after = run(scaled(scaled(variants, "m", c=c), "g", c=c), MetricKind.CONTINUOUS, method)
    assert after.winner == before.winner
    for b, a in zip(before.variants, after.variants, strict=True):
        assert_close(b.guardrails[0].state, a.guardrails[0].state)
        if b.comparison is None:
            assert a.comparison is None
            continue
        assert a.comparison is not None
        for field in ("p_value", "adjusted_p_value", "probability_to_beat_control", "significant", "lift"):
            assert_close(getattr(b.comparison, field), getattr(a.comparison, field), field)
        assert a.comparison.difference is not None and b.comparison.difference is not None
        # Means up to 50 in size: a difference of 0 comes back as rounding noise of that order.
        assert a.comparison.difference.estimate == pytest.approx(
            c * b.comparison.difference.estimate, rel=1e-6, abs=c * 50 * 1e-12
        )
        if b.comparison.expected_loss is not None:
            assert a.comparison.expected_loss == pytest.approx(c * b.comparison.expected_loss, rel=1e-6, abs=1e-12)


@PROPERTY
@given(
    experiments(MetricKind.CONTINUOUS),
    st.sampled_from(list(Method)),
    st.floats(-100, 100).filter(lambda k: not math.isclose(k, 0)),
)
def test_adding_a_constant_leaves_difference_p_values_unchanged(
    variants: list[VariantData], method: Method, k: float
) -> None:
    before = run(variants, MetricKind.CONTINUOUS, method)
    after = run(scaled(variants, "m", k=k), MetricKind.CONTINUOUS, method)
    for b, a in zip(before.variants, after.variants, strict=True):
        if b.comparison is None:
            assert a.comparison is None
            continue
        assert a.comparison is not None
        for field in ("p_value", "adjusted_p_value", "probability_to_beat_control", "difference", "expected_loss"):
            assert_close(getattr(b.comparison, field), getattr(a.comparison, field), field)
