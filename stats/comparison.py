"""One metric, treatment arms against the control arm, by any of the three methods: the vectorised core that both the
analysis and the simulations in the tests call (arrays of sufficient statistics in, arrays of results out)."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from croupier.stats import bayesian, frequentist
from croupier.stats._special import special
from croupier.stats.inputs import Direction, Method, MetricKind

Array = NDArray[np.float64]


@dataclass(frozen=True)
class ArmComparison:
    """Treatment versus control, elementwise. ``difference`` is treatment minus control in the metric's units,
    ``lift`` the same relative to |control mean| (NaN when control's mean is 0). Frequentist methods fill
    ``p_value`` (two-sided, unadjusted); Bayesian fills ``probability_to_beat`` (in the metric's direction) and
    ``expected_loss`` (what choosing the treatment costs, in the metric's units); the others are NaN."""

    difference: Array
    difference_lower: Array
    difference_upper: Array
    lift: Array
    lift_lower: Array
    lift_upper: Array
    p_value: Array
    probability_to_beat: Array
    expected_loss: Array


def mean_and_variance(
    kind: MetricKind, n: ArrayLike, total: ArrayLike, sum_of_squares: ArrayLike
) -> tuple[Array, Array]:
    """Mean and per-unit variance from the sums: p(1 - p) for Binary (the Bernoulli variance), the sample variance
    (sum of squares about the mean over n - 1) otherwise."""
    n_, s, ss = (np.asarray(x, dtype=np.float64) for x in (n, total, sum_of_squares))
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s / n_
        if kind is MetricKind.BINARY:
            return mean, mean * (1 - mean)
        return mean, np.maximum(ss - s * mean, 0.0) / (n_ - 1)


def compare_arms(
    method: Method,
    kind: MetricKind,
    direction: Direction,
    treatment: tuple[ArrayLike, ArrayLike, ArrayLike],
    control: tuple[ArrayLike, ArrayLike, ArrayLike],
    *,
    alpha: float,
    tuning_parameter: float = 5000.0,
    beta_prior: tuple[float, float] = (1.0, 1.0),
) -> ArmComparison:
    """Compare (n, sum, sum of squares) of treatment against control with two-sided (1 - alpha) intervals.

    FixedHorizon: Binary by the two-proportion z-test, Continuous and Count by Welch's t-test; the lift interval
    uses the delta method with the same critical value (normal for Binary, Welch's t otherwise).
    Sequential: the asymptotic confidence sequence on the difference and on the lift, n = both arms' units.
    Bayesian: posterior means, normal-approximation credible intervals, probability to beat and expected loss.
    A comparison with fewer than two units measured in either arm has no result: every field is NaN."""
    with np.errstate(all="ignore"):
        result = _compare_arms(
            method,
            kind,
            direction,
            treatment,
            control,
            alpha=alpha,
            tuning_parameter=tuning_parameter,
            beta_prior=beta_prior,
        )
    valid = (np.asarray(treatment[0]) >= 2) & (np.asarray(control[0]) >= 2)
    if np.all(valid):
        return result
    return ArmComparison(*(np.where(valid, getattr(result, f.name), np.nan) for f in fields(ArmComparison)))


def _compare_arms(
    method: Method,
    kind: MetricKind,
    direction: Direction,
    treatment: tuple[ArrayLike, ArrayLike, ArrayLike],
    control: tuple[ArrayLike, ArrayLike, ArrayLike],
    *,
    alpha: float,
    tuning_parameter: float,
    beta_prior: tuple[float, float],
) -> ArmComparison:
    n_t, x_t, _ = (np.asarray(v, dtype=np.float64) for v in treatment)
    n_c, x_c, _ = (np.asarray(v, dtype=np.float64) for v in control)
    mean_t, var_t = mean_and_variance(kind, *treatment)
    mean_c, var_c = mean_and_variance(kind, *control)
    nan = np.full(np.broadcast(mean_t, mean_c).shape, np.nan)

    if method is Method.BAYESIAN:
        return _bayesian(
            kind, direction, (n_t, x_t, mean_t, var_t), (n_c, x_c, mean_c, var_c), alpha=alpha, beta_prior=beta_prior
        )

    lift, lift_se = frequentist.relative_lift((n_t, mean_t, var_t), (n_c, mean_c, var_c))
    if method is Method.FIXED_HORIZON:
        if kind is MetricKind.BINARY:
            test = frequentist.two_proportion_z_test(n_t, x_t, n_c, x_c, alpha)
            critical: Array | float = float(special.ndtri(1 - alpha / 2))
        else:
            test, df = frequentist.welch_t_test((n_t, mean_t, var_t), (n_c, mean_c, var_c), alpha)
            critical = special.stdtrit(df, 1 - alpha / 2)
        lift_width = critical * lift_se
        return ArmComparison(
            test.estimate, test.lower, test.upper, lift, lift - lift_width, lift + lift_width, test.p_value, nan, nan
        )

    rho = frequentist.sequential_rho(alpha, tuning_parameter)
    total = n_t + n_c
    difference = mean_t - mean_c
    se = np.sqrt(var_t / n_t + var_c / n_c)
    width = frequentist.sequential_halfwidth(se, total, alpha, rho)
    lift_width = frequentist.sequential_halfwidth(lift_se, total, alpha, rho)
    p_value = frequentist.sequential_p_value(difference, se, total, rho)
    return ArmComparison(
        difference,
        difference - width,
        difference + width,
        lift,
        lift - lift_width,
        lift + lift_width,
        p_value,
        nan,
        nan,
    )


def _bayesian(
    kind: MetricKind,
    direction: Direction,
    treatment: tuple[Array, Array, Array, Array],
    control: tuple[Array, Array, Array, Array],
    *,
    alpha: float,
    beta_prior: tuple[float, float],
) -> ArmComparison:
    """(n, sum, mean, variance) of each arm in; see :func:`compare_arms`."""
    (n_t, x_t, mean_t, var_t), (n_c, x_c, mean_c, var_c) = treatment, control
    nan = np.full(np.broadcast(mean_t, mean_c).shape, np.nan)
    if kind is MetricKind.BINARY:
        a_t, b_t = bayesian.beta_posterior(n_t, x_t, beta_prior)
        a_c, b_c = bayesian.beta_posterior(n_c, x_c, beta_prior)
        post_t, post_c = a_t / (a_t + b_t), a_c / (a_c + b_c)
        pvar_t = bayesian.beta_variance(a_t, b_t)
        pvar_c = bayesian.beta_variance(a_c, b_c)
        if direction is Direction.INCREASE:
            probability = bayesian.beta_probability_greater(a_t, b_t, a_c, b_c)
            loss = bayesian.beta_expected_loss(a_t, b_t, a_c, b_c)
        else:
            probability = bayesian.beta_probability_greater(a_c, b_c, a_t, b_t)
            loss = bayesian.beta_expected_loss(a_c, b_c, a_t, b_t)
    else:
        post_t, post_c = mean_t, mean_c
        pvar_t, pvar_c = var_t / n_t, var_c / n_c
        if direction is Direction.INCREASE:
            probability = bayesian.normal_probability_greater(post_t, pvar_t, post_c, pvar_c)
            loss = bayesian.normal_expected_loss(post_t, pvar_t, post_c, pvar_c)
        else:
            probability = bayesian.normal_probability_greater(post_c, pvar_c, post_t, pvar_t)
            loss = bayesian.normal_expected_loss(post_c, pvar_c, post_t, pvar_t)
    z = float(special.ndtri(1 - alpha / 2))
    difference = post_t - post_c
    width = z * np.sqrt(pvar_t + pvar_c)
    # Posterior variances of the means take the place of var / n in the delta method.
    lift, lift_se = frequentist.relative_lift((1.0, post_t, pvar_t), (1.0, post_c, pvar_c))
    return ArmComparison(
        difference,
        difference - width,
        difference + width,
        lift,
        lift - z * lift_se,
        lift + z * lift_se,
        nan,
        np.asarray(probability, dtype=np.float64),
        np.asarray(loss, dtype=np.float64),
    )
