"""Every formula against an independent reference: scipy and statsmodels to 1e-6, GrowthBook's published sequential
numbers to their 5 decimals, Beta and normal posteriors against Monte Carlo with a stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as distributions
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest

from croupier.stats import Direction, Method, MetricKind, Moments, bayesian, compare_arms, frequentist

RTOL = 1e-6


def _moments(values: np.ndarray) -> tuple[int, float, float]:
    m = Moments.of(values)
    return m.n, m.total, m.sum_of_squares


@pytest.mark.parametrize("seed", range(5))
def test_fixed_horizon_continuous_is_welchs_t_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    treatment = rng.lognormal(1.0, 1.0, size=rng.integers(20, 400))
    control = rng.normal(2.0, 4.0, size=rng.integers(20, 400))
    result = compare_arms(
        Method.FIXED_HORIZON,
        MetricKind.CONTINUOUS,
        Direction.INCREASE,
        _moments(treatment),
        _moments(control),
        alpha=0.1,
    )
    reference = distributions.ttest_ind(treatment, control, equal_var=False)
    interval = reference.confidence_interval(0.9)
    assert result.p_value == pytest.approx(reference.pvalue, rel=RTOL)
    assert result.difference == pytest.approx(treatment.mean() - control.mean(), rel=RTOL)
    assert result.difference_lower == pytest.approx(interval.low, rel=RTOL)
    assert result.difference_upper == pytest.approx(interval.high, rel=RTOL)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2"), [(130, 1000, 100, 1000), (7, 50, 2, 80), (2422, 3461, 1396, 3000)])
def test_fixed_horizon_binary_is_the_two_proportion_z_test(x1: int, n1: int, x2: int, n2: int) -> None:
    result = compare_arms(
        Method.FIXED_HORIZON, MetricKind.BINARY, Direction.INCREASE, (n1, x1, x1), (n2, x2, x2), alpha=0.05
    )
    _, p_value = proportions_ztest([x1, x2], [n1, n2])
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="wald", compare="diff", alpha=0.05)
    assert result.p_value == pytest.approx(p_value, rel=RTOL)
    assert result.difference_lower == pytest.approx(low, rel=RTOL)
    assert result.difference_upper == pytest.approx(high, rel=RTOL)
    # The pooled z-test is Pearson's chi-square on the 2x2 table.
    table = np.array([[x1, n1 - x1], [x2, n2 - x2]])
    assert result.p_value == pytest.approx(distributions.chi2_contingency(table, correction=False).pvalue, rel=RTOL)


@pytest.mark.parametrize("seed", range(3))
def test_srm_chi_square_is_scipys_goodness_of_fit(seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 40, size=rng.integers(2, 16)).astype(float)
    observed = rng.multinomial(20_000, weights / weights.sum())
    statistic, p_value = frequentist.chi_square_goodness_of_fit(observed, weights)
    reference = distributions.chisquare(observed, observed.sum() * weights / weights.sum())
    assert statistic == pytest.approx(reference.statistic, rel=RTOL)
    assert p_value == pytest.approx(reference.pvalue, rel=RTOL)


@pytest.mark.parametrize("seed", range(3))
def test_sequential_srm_is_the_dirichlet_multinomial_bayes_factor(seed: int) -> None:
    # 1 / BF with BF = Dirichlet-multinomial(x; a p) / multinomial(x; p): scipy's pmfs (the multinomial coefficient
    # cancels in the ratio).
    rng = np.random.default_rng(seed)
    weights = rng.integers(1, 40, size=rng.integers(2, 16)).astype(float)
    shares = weights / weights.sum()
    skewed = rng.dirichlet(200 * shares)  # near the split: p-values away from 0 and 1
    observed = rng.multinomial(3_000, skewed)
    n = int(observed.sum())
    log_bayes_factor = distributions.dirichlet_multinomial.logpmf(
        observed, frequentist.SRM_CONCENTRATION * shares, n
    ) - distributions.multinomial.logpmf(observed, n, shares)
    expected = min(1.0, float(np.exp(-log_bayes_factor)))
    assert frequentist.sequential_srm_p_value(observed, weights) == pytest.approx(expected, rel=RTOL)


@pytest.mark.parametrize(("effect", "sd", "alpha", "power"), [(0.1, 1.0, 0.05, 0.8), (2.5, 30.0, 0.01, 0.9)])
def test_samples_per_arm_is_statsmodels_normal_power(effect: float, sd: float, alpha: float, power: float) -> None:
    n = frequentist.samples_per_arm(effect, 2 * sd**2, alpha, power)
    reference = NormalIndPower().solve_power(effect_size=effect / sd, alpha=alpha, power=power, ratio=1.0)
    assert n == pytest.approx(reference, rel=RTOL)
    assert frequentist.power_two_sided(effect, 2 * sd**2, n, alpha) == pytest.approx(power, rel=RTOL)


def test_holm_is_statsmodels_holm() -> None:
    rng = np.random.default_rng(7)
    for size in (1, 2, 5, 15):
        p = rng.uniform(0, 0.2, size=size)
        p[rng.integers(0, size)] = p.min()  # ties
        assert frequentist.holm(p) == pytest.approx(multipletests(p, method="holm")[1], rel=RTOL)


def test_bonferroni_is_statsmodels_bonferroni() -> None:
    p = np.random.default_rng(8).uniform(0, 0.3, size=6)
    assert frequentist.bonferroni(p) == pytest.approx(multipletests(p, method="bonferroni")[1], rel=RTOL)


def test_critical_values_are_the_normal_and_t_quantiles() -> None:
    # Welch's interval half-width is t_{1-alpha/2}(df) standard errors; the Wald one z_{1-alpha/2}.
    test, df = frequentist.welch_t_test((40, 1.0, 4.0), (60, 0.5, 9.0), 0.05)
    half = (test.upper - test.lower) / 2
    assert half / test.standard_error == pytest.approx(distributions.t.ppf(0.975, df), rel=RTOL)
    z = frequentist.two_proportion_z_test(1000, 300, 1000, 250, 0.01)
    assert (z.upper - z.lower) / 2 / z.standard_error == pytest.approx(distributions.norm.ppf(0.995), rel=RTOL)


# ----------------------------------------------------------------------------------------------------------------------
# Sequential: GrowthBook gbstats' published test cases (tests/frequentist/test_tests.py, TestSequentialTTest), which
# report the confidence sequence of the relative lift to 5 decimals.


def test_sequential_matches_growthbook_on_means() -> None:
    result = compare_arms(
        Method.SEQUENTIAL,
        MetricKind.CONTINUOUS,
        Direction.INCREASE,
        (3461, 2422.7, 134698.29),
        (3000, 1396.87, 52377.9767),
        alpha=0.05,
        tuning_parameter=1000,
    )
    assert np.round([result.lift, result.lift_lower, result.lift_upper], 5) == pytest.approx(
        [0.50336, -0.55844, 1.56516], abs=1e-12
    )
    assert result.p_value == 1.0


def test_sequential_matches_growthbook_on_proportions() -> None:
    result = compare_arms(
        Method.SEQUENTIAL,
        MetricKind.BINARY,
        Direction.INCREASE,
        (3461, 2422, 2422),
        (3000, 1396, 1396),
        alpha=0.05,
        tuning_parameter=5000,  # gbstats' default
    )
    assert np.round([result.lift, result.lift_lower, result.lift_upper], 5) == pytest.approx(
        [0.50386, 0.40098, 0.60675], abs=1e-12
    )


def test_sequential_interval_is_tightest_near_the_tuning_parameter() -> None:
    total = 3000 + 3461
    widths = {}
    for tuning in (10, total, 10_000, 1e6):
        result = compare_arms(
            Method.SEQUENTIAL,
            MetricKind.CONTINUOUS,
            Direction.INCREASE,
            (3461, 2422.7, 134698.29),
            (3000, 1396.87, 52377.9767),
            alpha=0.05,
            tuning_parameter=tuning,
        )
        widths[tuning] = float(result.difference_upper - result.difference_lower)
    assert widths[total] == min(widths.values())
    # Always wider than the fixed-horizon interval at the same alpha: the price of peeking.
    fixed = compare_arms(
        Method.FIXED_HORIZON,
        MetricKind.CONTINUOUS,
        Direction.INCREASE,
        (3461, 2422.7, 134698.29),
        (3000, 1396.87, 52377.9767),
        alpha=0.05,
    )
    assert widths[total] > float(fixed.difference_upper - fixed.difference_lower) * 1.5


@pytest.mark.parametrize("seed", range(4))
def test_sequential_p_value_is_the_alpha_at_which_the_interval_touches_zero(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_t, n_c = rng.integers(1000, 5000, size=2)
    treatment = rng.normal(0.15, 1.0, size=n_t)
    control = rng.normal(0.0, 1.3, size=n_c)
    p_value = compare_arms(
        Method.SEQUENTIAL, MetricKind.CONTINUOUS, Direction.INCREASE, _moments(treatment), _moments(control), alpha=0.05
    ).p_value
    assert 0 < p_value < 1
    # The interval at alpha = p has an end at 0, the tuning parameter's rho held fixed (it depends on alpha).
    rho = frequentist.sequential_rho(0.05, 5000)
    se = np.sqrt(treatment.var(ddof=1) / n_t + control.var(ddof=1) / n_c)
    difference = treatment.mean() - control.mean()
    half = frequentist.sequential_halfwidth(se, n_t + n_c, float(p_value), rho)
    assert half == pytest.approx(abs(difference), rel=1e-9)


# ----------------------------------------------------------------------------------------------------------------------
# Bayesian. Monte Carlo with 2,000,000 draws: a probability's standard error is at most 0.00035, so the tolerance of
# 0.002 is more than 5 standard errors; an expected loss's is checked to 3% of its value plus 1e-5.

DRAWS = 2_000_000


@pytest.mark.parametrize(
    ("x_t", "n_t", "x_c", "n_c"), [(130, 1000, 100, 1000), (3, 40, 0, 40), (5020, 50_000, 5000, 50_000), (9, 10, 1, 3)]
)
def test_beta_probability_and_loss_against_monte_carlo(x_t: int, n_t: int, x_c: int, n_c: int) -> None:
    rng = np.random.default_rng(11)
    prior = (1.0, 1.0)
    a_t, b_t = bayesian.beta_posterior(n_t, x_t, prior)
    a_c, b_c = bayesian.beta_posterior(n_c, x_c, prior)
    t = rng.beta(a_t, b_t, DRAWS)
    c = rng.beta(a_c, b_c, DRAWS)
    increase = compare_arms(
        Method.BAYESIAN, MetricKind.BINARY, Direction.INCREASE, (n_t, x_t, x_t), (n_c, x_c, x_c), alpha=0.05
    )
    decrease = compare_arms(
        Method.BAYESIAN, MetricKind.BINARY, Direction.DECREASE, (n_t, x_t, x_t), (n_c, x_c, x_c), alpha=0.05
    )
    assert increase.probability_to_beat == pytest.approx(np.mean(t > c), abs=0.002)
    assert decrease.probability_to_beat == pytest.approx(np.mean(t < c), abs=0.002)
    loss_up, loss_down = np.mean(np.maximum(c - t, 0)), np.mean(np.maximum(t - c, 0))
    assert increase.expected_loss == pytest.approx(loss_up, rel=0.03, abs=1e-5)
    assert decrease.expected_loss == pytest.approx(loss_down, rel=0.03, abs=1e-5)
    assert increase.difference == pytest.approx(a_t / (a_t + b_t) - a_c / (a_c + b_c), rel=RTOL)


@pytest.mark.parametrize(("a1", "b1", "a2", "b2"), [(131, 871, 101, 901), (1, 500, 2, 10), (4000, 1000, 3990, 1010)])
def test_beta_probability_against_adaptive_quadrature(a1: float, b1: float, a2: float, b2: float) -> None:
    reference, _ = integrate.quad(
        lambda x: distributions.beta.pdf(x, a1, b1) * distributions.beta.cdf(x, a2, b2),
        0,
        1,
        limit=500,
        points=[distributions.beta.mean(a1, b1), distributions.beta.mean(a2, b2)],
        epsabs=1e-12,
    )
    assert bayesian.beta_probability_greater(a1, b1, a2, b2) == pytest.approx(reference, abs=1e-7)


def test_normal_posterior_probability_and_loss_against_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    treatment = rng.gamma(2.0, 3.0, size=800)
    control = rng.gamma(2.0, 2.9, size=900)
    result = compare_arms(
        Method.BAYESIAN, MetricKind.CONTINUOUS, Direction.INCREASE, _moments(treatment), _moments(control), alpha=0.05
    )
    # Flat prior, plug-in variance: the posterior of each mean is Normal(mean, s^2 / n).
    t = rng.normal(treatment.mean(), treatment.std(ddof=1) / np.sqrt(treatment.size), DRAWS)
    c = rng.normal(control.mean(), control.std(ddof=1) / np.sqrt(control.size), DRAWS)
    assert result.probability_to_beat == pytest.approx(np.mean(t > c), abs=0.002)
    assert result.expected_loss == pytest.approx(np.mean(np.maximum(c - t, 0)), rel=0.03, abs=1e-5)
