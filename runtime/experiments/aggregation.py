"""How outcomes become per-unit values and per-variant sufficient statistics: the rule, written once for every store.

A unit's value of a metric (stored per epoch, unit and metric) changes with each counted outcome; the variant's
(count, sum, sum of squares) change by the difference, so they always equal the sums over the units' current values:

- Binary: the unit's value is 1 once any of its outcomes is 1 (counted once), else 0.
- Count and Continuous with aggregation Sum: the sum of the unit's outcomes.
- Continuous with aggregation Mean: the mean of the unit's outcomes; a unit enters the sample (count) with its first.

For Binary, Count and Sum, every counted exposure is in the sample with value 0 until its outcomes arrive, so the
sample size of those metrics is the variant's exposures and `Delta.units` stays 0
(see `MetricRule.counts_every_exposure`).
"""

from __future__ import annotations

from typing import NamedTuple

from croupier.api.experiment import MetricType
from croupier.runtime.errors import InvalidOutcome

BINARY = MetricType.BINARY.value
COUNT = MetricType.COUNT.value
MEAN = f"{MetricType.CONTINUOUS.value}:Mean"
SUM = f"{MetricType.CONTINUOUS.value}:Sum"
KINDS = (BINARY, COUNT, SUM, MEAN)


class UnitValue(NamedTuple):
    total: float
    """Sum of the unit's outcome values (Binary: its value)."""
    events: int
    """How many outcomes of the metric the unit had."""
    value: float
    """The unit's value in the statistics."""


class Delta(NamedTuple):
    units: int
    """Change of the sample size (Mean metrics: 1 for a unit's first outcome)."""
    sum: float
    sum_squares: float


def check_value(kind: str, value: float, field: str) -> float:
    """The outcome value if the metric's type allows it (the wire already refused NaN, infinities, |x| > 1e12)."""
    if kind == BINARY and value not in (0, 1):
        raise InvalidOutcome(f"a Binary metric's outcome is 0 or 1, got {value}", field=field)
    if kind == COUNT and (value < 0 or value != int(value)):
        raise InvalidOutcome(f"a Count metric's outcome is a non-negative integer, got {value}", field=field)
    return float(value)


def observe(kind: str, prior: UnitValue | None, value: float) -> tuple[UnitValue, Delta]:
    """The unit's value after one more outcome, and what it changes in the variant's sums."""
    if kind == MEAN:
        if prior is None:
            return UnitValue(value, 1, value), Delta(1, value, value * value)
        total, events = prior.total + value, prior.events + 1
        new = total / events
        return UnitValue(total, events, new), Delta(0, new - prior.value, new * new - prior.value * prior.value)
    old = 0.0 if prior is None else prior.value
    events = 1 if prior is None else prior.events + 1
    if kind == BINARY:
        new = max(old, value)
        return UnitValue(new, events, new), Delta(0, new - old, new * new - old * old)
    if kind in (COUNT, SUM):
        new = old + value
        return UnitValue(new, events, new), Delta(0, value, new * new - old * old)
    raise ValueError(f"unknown metric kind {kind!r}")
