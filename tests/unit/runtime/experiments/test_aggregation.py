"""The per-unit aggregation rule: the variant's sums always equal the sums over the units' current values."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.runtime.errors import InvalidOutcome
from croupier.runtime.experiments import aggregation
from croupier.runtime.experiments.aggregation import BINARY, COUNT, KINDS, MEAN, SUM


def _value_of(kind: str, values: list[float]) -> float:
    if kind == MEAN:
        return sum(values) / len(values)
    if kind == BINARY:
        return max(values)
    return sum(values)


def _values(kind: str) -> st.SearchStrategy[float]:
    if kind == BINARY:
        return st.sampled_from([0.0, 1.0])
    if kind == COUNT:
        return st.integers(0, 50).map(float)
    return st.floats(-1e4, 1e4, allow_nan=False).map(lambda x: round(x, 3))


@pytest.mark.parametrize("kind", KINDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_sums_equal_the_sums_over_unit_values(kind: str, data: st.DataObject) -> None:
    events = data.draw(st.lists(st.tuples(st.integers(0, 5), _values(kind)), max_size=40))
    units: dict[int, aggregation.UnitValue] = {}
    raw: dict[int, list[float]] = defaultdict(list)
    count, total, squares = 0, 0.0, 0.0
    for unit, value in events:
        units[unit], delta = aggregation.observe(kind, units.get(unit), value)
        raw[unit].append(value)
        count, total, squares = count + delta.units, total + delta.sum, squares + delta.sum_squares
    expected = [_value_of(kind, values) for values in raw.values()]
    assert count == (len(raw) if kind == MEAN else 0)
    assert total == pytest.approx(sum(expected), rel=1e-9, abs=1e-6)
    assert squares == pytest.approx(sum(v * v for v in expected), rel=1e-9, abs=1e-3)
    assert {u: v.value for u, v in units.items()} == pytest.approx({u: _value_of(kind, raw[u]) for u in raw})


def test_binary_counts_a_unit_once_and_negative_continuous_values_are_fine() -> None:
    one, delta = aggregation.observe(BINARY, None, 1.0)
    assert (one.value, delta.sum) == (1.0, 1.0)
    again, delta = aggregation.observe(BINARY, one, 1.0)
    assert (again.value, delta.sum, delta.sum_squares) == (1.0, 0.0, 0.0)
    loss, delta = aggregation.observe(SUM, None, -12.5)
    assert (loss.value, delta.sum, delta.sum_squares) == (-12.5, -12.5, 156.25)


@pytest.mark.parametrize(("kind", "value"), [(BINARY, 0.5), (BINARY, 2.0), (COUNT, -1.0), (COUNT, 1.5)])
def test_values_a_type_forbids_are_refused_naming_the_field(kind: str, value: float) -> None:
    with pytest.raises(InvalidOutcome) as raised:
        aggregation.check_value(kind, value, "outcomes[2].value")
    assert raised.value.field == "outcomes[2].value"
    assert aggregation.check_value(MEAN, -3.0, "value") == -3.0
