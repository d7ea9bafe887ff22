"""Frequentist tests on sufficient statistics, vectorised: every function takes numpy arrays (or floats) of per-arm
counts, means and variances and returns arrays, so one call tests many comparisons (or many simulated experiments).

Arm 1 is the treatment, arm 2 the control; differences are treatment minus control.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from croupier.stats._special import special

Array = NDArray[np.float64]


def _f(x: ArrayLike) -> Array:
    return np.asarray(x, dtype=np.float64)


@dataclass(frozen=True)
class TestResult:
    """Estimate, standard error, two-sided p-value and the (1 - alpha) interval of one or many comparisons."""

    estimate: Array
    standard_error: Array
    p_value: Array
    lower: Array
    upper: Array


ArmMoments = tuple[ArrayLike, ArrayLike, ArrayLike]
"""(n, mean, per-unit variance) of one arm."""


def welch_t_test(arm1: ArmMoments, arm2: ArmMoments, alpha: float) -> tuple[TestResult, Array]:
    """Welch's unequal-variance t-test of mean1 - mean2 (variances with n - 1); also returns the Welch-Satterthwaite
    degrees of freedom. A comparison whose standard error is 0 gets p = 1 and a zero-width interval."""
    (n1, mean1, v1), (n2, mean2, v2) = (tuple(_f(x) for x in arm) for arm in (arm1, arm2))
    a, b = v1 / n1, v2 / n2
    se = np.sqrt(a + b)
    diff = mean1 - mean2
    with np.errstate(divide="ignore", invalid="ignore"):
        df = (a + b) ** 2 / (a**2 / (n1 - 1) + b**2 / (n2 - 1))
        t = diff / se
    df = np.where(se > 0, df, np.inf)
    # scipy.special's t CDF and quantile: scipy.stats.t's, without its per-call argument handling.
    p = np.where(se > 0, 2 * special.stdtr(df, -np.abs(t)), 1.0)
    width = special.stdtrit(df, 1 - alpha / 2) * se
    return TestResult(diff, se, p, diff - width, diff + width), df


def two_proportion_z_test(n1: ArrayLike, x1: ArrayLike, n2: ArrayLike, x2: ArrayLike, alpha: float) -> TestResult:
    """Two-proportion z-test of p1 - p2: the p-value uses the pooled proportion (the score test, Pearson's chi-square
    on the 2x2 table), the interval the unpooled (Wald) standard error. Standard error 0 gives p = 1."""
    n1, n2, x1, x2 = _f(n1), _f(n2), _f(x1), _f(x2)
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se0 = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    se = np.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    diff = p1 - p2
    with np.errstate(divide="ignore", invalid="ignore"):
        z = diff / se0
    p = np.where(se0 > 0, 2 * special.ndtr(-np.abs(z)), 1.0)
    width = special.ndtri(1 - alpha / 2) * se
    return TestResult(diff, se, p, diff - width, diff + width)


def relative_lift(arm1: ArmMoments, arm2: ArmMoments) -> tuple[Array, Array]:
    """(mean1 - mean2) / |mean2| and its delta-method standard error (NaN where mean2 == 0).

    Var = var1 / (n1 mean2^2) + var2 mean1^2 / (n2 mean2^4): the first-order expansion of the ratio of two
    independent means (the same whether mean2 is positive or negative, since only squares enter)."""
    (n1, m1, var1), (n2, m2, var2) = (tuple(_f(x) for x in arm) for arm in (arm1, arm2))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        lift = np.where(m2 != 0, (m1 - m2) / np.abs(m2), np.nan)
        # The same expression as sqrt(Var), arranged so that a tiny mean2 cannot overflow m2^4.
        se = np.sqrt(var1 / n1 + var2 * (m1 / m2) ** 2 / n2) / np.abs(m2)
    return lift, np.where(m2 != 0, se, np.nan)


# ----------------------------------------------------------------------------------------------------------------------
# Sequential: the asymptotic confidence sequence of Waudby-Smith et al. (2023), as GrowthBook's gbstats uses it.


def sequential_rho(alpha: float, tuning_parameter: float) -> float:
    """The normal mixture's rho that makes the confidence sequence tightest at ``tuning_parameter`` total units:
    rho = sqrt((-2 ln alpha + ln(1 - 2 ln alpha)) / N)."""
    log_alpha = np.log(alpha)
    return float(np.sqrt((-2 * log_alpha + np.log(1 - 2 * log_alpha)) / tuning_parameter))


def sequential_halfwidth(standard_error: ArrayLike, n: ArrayLike, alpha: float, rho: float) -> Array:
    """Half-width of the two-sided always-valid (1 - alpha) interval for an estimate with this standard error after
    ``n`` total units: sqrt(s2) sqrt(2 (n rho^2 + 1) / (n rho)^2 ln(sqrt(n rho^2 + 1) / alpha)), s2 = SE^2 n."""
    n = _f(n)
    s2 = _f(standard_error) ** 2 * n
    nr2 = n * rho**2
    return np.sqrt(s2) * np.sqrt(2 * (nr2 + 1) / (n**2 * rho**2) * np.log(np.sqrt(nr2 + 1) / alpha))


def sequential_p_value(estimate: ArrayLike, standard_error: ArrayLike, n: ArrayLike, rho: float) -> Array:
    """The always-valid p-value: the smallest alpha whose confidence sequence excludes 0,
    p = min(1, sqrt(n rho^2 + 1) exp(-rho^2 n z^2 / (2 (n rho^2 + 1)))), z = estimate / SE."""
    n, se = _f(n), _f(standard_error)
    with np.errstate(divide="ignore", invalid="ignore"):
        z2 = np.where(se > 0, (_f(estimate) / se) ** 2, 0.0)
    nr2 = n * rho**2
    log_p = 0.5 * np.log1p(nr2) - rho**2 * n * z2 / (2 * (nr2 + 1))
    return np.minimum(1.0, np.exp(log_p))


# ----------------------------------------------------------------------------------------------------------------------
# Planning and multiple comparisons


def power_two_sided(effect: float, variance_sum: float, n: float, alpha: float) -> float:
    """Power of a two-sided z-test at level alpha with ``n`` units per arm, SE^2 = variance_sum / n (both tails)."""
    z = special.ndtri(1 - alpha / 2)
    shift = abs(effect) / np.sqrt(variance_sum / n)
    return float(special.ndtr(shift - z) + special.ndtr(-z - shift))


def samples_per_arm(effect: float, variance_sum: float, alpha: float, power: float) -> float:
    """Units per arm (equal arms) at which a two-sided z-test at level alpha has ``power`` against a difference of
    ``effect`` with Var(arm1) + Var(arm2) = variance_sum; not rounded (the caller rounds up)."""
    if effect == 0 or variance_sum <= 0:
        raise ValueError("samples_per_arm needs a non-zero effect and a positive variance")
    if power <= alpha:
        raise ValueError(f"power {power} must exceed alpha {alpha}: a test has that much power with no data")
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    upper = max(z**2 * variance_sum / effect**2, 1e-6)
    # The closed form ignores the far tail; solve the exact two-tailed power for the planned n.
    while power_two_sided(effect, variance_sum, upper, alpha) < power:
        upper *= 2
    from scipy import optimize  # noqa: PLC0415  (only planning needs it: the operator imports this module)

    return float(optimize.brentq(lambda n: power_two_sided(effect, variance_sum, n, alpha) - power, 1e-9, upper))


def bonferroni(p_values: ArrayLike) -> Array:
    """Bonferroni's adjusted p-values: p * m, capped at 1."""
    p = _f(p_values)
    return np.minimum(1.0, p * p.size)


def holm(p_values: ArrayLike) -> Array:
    """Holm's step-down adjusted p-values: sorted ascending, p_(i) * (m - i + 1), running maximum, capped at 1."""
    p = _f(p_values)
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    result = np.empty(m)
    result[order] = adjusted
    return result


def chi_square_goodness_of_fit(observed: ArrayLike, weights: ArrayLike) -> tuple[Array, Array]:
    """Pearson's chi-square statistic of ``observed`` counts (the last axis: k categories) against expected shares
    proportional to ``weights`` (k, all positive) and its p-value with k - 1 degrees of freedom."""
    obs = _f(observed)
    expected = _f(weights) / np.sum(weights) * obs.sum(axis=-1, keepdims=True)
    statistic = np.sum((obs - expected) ** 2 / expected, axis=-1)
    return statistic, special.chdtrc(obs.shape[-1] - 1, statistic)


SRM_CONCENTRATION = 100.0
"""The Dirichlet prior's concentration in `sequential_srm_p_value`: the prior's mean is the expected split and its
weight that of 100 units; a larger one finds small mismatches sooner and large ones later."""


def sequential_srm_p_value(observed: ArrayLike, weights: ArrayLike, concentration: float = SRM_CONCENTRATION) -> Array:
    """Anytime-valid p-value of a sample ratio mismatch: Lindon & Malek, "Anytime-valid inference for multinomial
    count data" (NeurIPS 2022). ``observed`` counts (the last axis: k categories) against the shares ``p``
    proportional to ``weights`` (k, all positive); under a mismatch the shares have a Dirichlet(``concentration`` p)
    prior. The Bayes factor of the Dirichlet-multinomial mixture against the multinomial at ``p``,

        BF = Gamma(a) / Gamma(a + n) * prod_i Gamma(a p_i + x_i) / Gamma(a p_i) / prod_i p_i ** x_i,

    is a nonnegative martingale under no mismatch, so by Ville's inequality P(BF >= 1/alpha at any n) <= alpha:
    p = min(1, 1 / BF) may be computed after every exposure, and compared with a threshold every time, with at most
    the threshold's false alarm rate however often it is read."""
    obs = _f(observed)
    shares = _f(weights) / np.sum(weights)
    prior = concentration * shares
    log_bayes_factor = (
        special.gammaln(concentration)
        - special.gammaln(concentration + obs.sum(axis=-1))
        + np.sum(special.gammaln(prior + obs) - special.gammaln(prior) - special.xlogy(obs, shares), axis=-1)
    )
    result: Array = np.exp(-np.maximum(log_bayes_factor, 0.0))
    return result
