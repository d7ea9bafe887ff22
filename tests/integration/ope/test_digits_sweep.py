"""The estimators across 100 logs of the digits bandit problem (the numbers in docs/ope.md come from
`python -m croupier.ope.supervised --seeds 100`, the same computation)."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binom

from croupier.ope.supervised import sweep

pytestmark = pytest.mark.integration

SEEDS = 100


def test_ips_covers_at_its_nominal_rate_is_unbiased_and_dr_errs_less() -> None:
    _truth, rows = sweep(SEEDS, resamples=300)
    by_name = {row.estimator: row for row in rows}
    ips, dr = by_name["IPS"], by_name["DR"]
    # 95 % intervals over 100 independent logs: fewer than 90 covering has probability below 2 %
    assert binom.cdf(89, SEEDS, 0.95) < 0.02
    assert ips.coverage >= 0.90
    assert abs(ips.bias) < 3 * ips.bias_std_error
    assert dr.mean_absolute_error < ips.mean_absolute_error
    assert by_name["DR"].coverage >= 0.90
    assert all(math.isfinite(row.bias) for row in rows)
