"""Off-policy value estimators over logged bandit feedback, each with a confidence interval and effective sample size.

Notation: n rewarded rows; in row i the logging policy chose `a_i` with probability `mu_i(a_i)` from its full vector
`mu_i`, the reward was `r_i`; the candidate's distribution is `pi_i`; `w_i = pi_i(a_i) / mu_i(a_i)`; `q_i(a)` is the
reward model's (cross-fitted) prediction and `q_i(pi) = sum_a pi_i(a) q_i(a)`.

| estimator | value                                    | interval                                     |
|-----------|------------------------------------------|----------------------------------------------|
| IPS       | mean(w r)                                | normal, variance of the per-row terms        |
| SNIPS     | sum(w r) / sum(w)                        | normal, delta-method influence function      |
| DM        | mean(q(pi))                              | bootstrap percentile over rows (model fixed) |
| DR        | mean(q(pi) + w (r - q(a)))               | normal, variance of the per-row terms        |
| SNDR      | mean(q(pi)) + sum(w (r - q(a))) / sum(w) | normal, delta-method influence function      |
| Switch-DR | mean(q(pi) + w (r - q(a)) 1[w <= tau])   | bootstrap percentile over rows (tau fixed)   |

The per-row terms of IPS and DR are independent given the contexts, so their sample variance over n is the variance of
the estimate (the influence function of a mean is its centred term). SNIPS and SNDR are ratios: their influence function
is the linearisation `w_i (r_i - V) / mean(w)` (plus the centred model term for SNDR). DM and Switch-DR are resampled
(rows with replacement, the reward model and tau held fixed): their intervals leave out the reward model's own error,
which is what makes DM narrow and possibly wrong; DR's interval does not depend on the model being right.
Switch-DR's tau minimises the estimated variance plus the squared bias bound (Wang, Agarwal and Dudik, 2017) over a grid
of the observed weights; the interval does not account for that choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

from .log import FloatArray, IntArray

ESTIMATORS = ("IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR")

NORMAL = "normal"
BOOTSTRAP = "bootstrap"


@dataclass(frozen=True)
class Feedback:
    """Logged bandit feedback over K arms and a candidate's distributions: the estimators' only input."""

    actions: IntArray
    rewards: FloatArray
    logged: FloatArray
    """(n, K): the logging policy's full probability vectors."""
    target: FloatArray
    """(n, K): the candidate's probability vectors."""
    predictions: FloatArray | None = None
    """(n, K): the reward model's predictions for every arm (DM and the doubly robust estimators)."""

    def __post_init__(self) -> None:
        n = len(self.actions)
        if n == 0:
            raise ValueError("no rewarded rows to evaluate")
        shapes = {"logged": self.logged.shape, "target": self.target.shape}
        if self.predictions is not None:
            shapes["predictions"] = self.predictions.shape
        if len(set(shapes.values())) != 1 or self.logged.shape[0] != n or self.rewards.shape != (n,):
            raise ValueError(f"inconsistent shapes: {n} actions, {self.rewards.shape} rewards, {shapes}")
        if not (self.logged[np.arange(n), self.actions] > 0.0).all():
            raise ValueError("a chosen arm has logged probability 0")

    @property
    def size(self) -> int:
        return len(self.actions)

    @property
    def propensities(self) -> FloatArray:
        return self.logged[np.arange(self.size), self.actions]

    @property
    def weights(self) -> FloatArray:
        return self.target[np.arange(self.size), self.actions] / self.propensities

    def model(self) -> FloatArray:
        if self.predictions is None:
            raise ValueError("this estimator needs reward model predictions")
        return self.predictions


@dataclass(frozen=True)
class Estimate:
    estimator: str
    value: float
    low: float
    high: float
    std_error: float
    interval: str
    """How the interval was computed: `normal` (influence function) or `bootstrap` (percentile)."""
    effective_sample_size: float
    """(sum w)^2 / sum w^2 of the importance weights the estimator uses (n for DM, which uses none)."""
    parameter: float | None = None
    """Switch-DR's threshold tau."""


def effective_sample_size(weights: FloatArray) -> float:
    total, squares = float(weights.sum()), float((weights**2).sum())
    return total * total / squares if squares > 0.0 else 0.0


def _normal(name: str, value: float, influence: FloatArray, level: float, ess: float) -> Estimate:
    n = len(influence)
    se = float(influence.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    z = float(norm.ppf(0.5 + level / 2))
    return Estimate(name, value, value - z * se, value + z * se, se, NORMAL, ess)


def _bootstrap(
    name: str,
    statistic: Callable[[IntArray], float],
    n: int,
    level: float,
    ess: float,
    *,
    resamples: int,
    seed: int,
) -> tuple[Estimate, FloatArray]:
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    value = statistic(np.arange(n))
    low, high = np.quantile(values, [0.5 - level / 2, 0.5 + level / 2])
    return Estimate(name, value, float(low), float(high), float(values.std(ddof=1)), BOOTSTRAP, ess), values


def _undefined(name: str) -> Estimate:
    """A self-normalised estimate when the candidate gives probability 0 to every logged action (no weight at all)."""
    return Estimate(name, math.nan, math.nan, math.nan, math.nan, NORMAL, 0.0)


def ips(feedback: Feedback, level: float = 0.95) -> Estimate:
    w = feedback.weights
    terms = w * feedback.rewards
    return _normal("IPS", float(terms.mean()), terms, level, effective_sample_size(w))


def snips(feedback: Feedback, level: float = 0.95) -> Estimate:
    w = feedback.weights
    if w.sum() <= 0.0:
        return _undefined("SNIPS")
    value = float((w * feedback.rewards).sum() / w.sum())
    influence = w * (feedback.rewards - value) / w.mean()
    return _normal("SNIPS", value, influence, level, effective_sample_size(w))


def _direct_terms(feedback: Feedback) -> FloatArray:
    terms: FloatArray = (feedback.target * feedback.model()).sum(axis=1)
    return terms


def dm(feedback: Feedback, level: float = 0.95, *, resamples: int = 1000, seed: int = 0) -> Estimate:
    terms = _direct_terms(feedback)
    n = feedback.size
    estimate, _ = _bootstrap(
        "DM", lambda rows: float(terms[rows].mean()), n, level, float(n), resamples=resamples, seed=seed
    )
    return estimate


def _residuals(feedback: Feedback) -> FloatArray:
    residuals: FloatArray = feedback.rewards - feedback.model()[np.arange(feedback.size), feedback.actions]
    return residuals


def dr(feedback: Feedback, level: float = 0.95) -> Estimate:
    w = feedback.weights
    terms = _direct_terms(feedback) + w * _residuals(feedback)
    return _normal("DR", float(terms.mean()), terms, level, effective_sample_size(w))


def sndr(feedback: Feedback, level: float = 0.95) -> Estimate:
    w = feedback.weights
    if w.sum() <= 0.0:
        return _undefined("SNDR")
    direct, residuals = _direct_terms(feedback), _residuals(feedback)
    correction = float((w * residuals).sum() / w.sum())
    value = float(direct.mean()) + correction
    influence = (direct - direct.mean()) + w * (residuals - correction) / w.mean()
    return _normal("SNDR", value, influence, level, effective_sample_size(w))


def switch_terms(feedback: Feedback, tau: float) -> FloatArray:
    w = feedback.weights
    terms: FloatArray = _direct_terms(feedback) + np.where(w <= tau, w * _residuals(feedback), 0.0)
    return terms


def switch_threshold(feedback: Feedback) -> float:
    """The tau that minimises var/n + bias_bound^2, where the bias bound is the candidate's mass on arms whose weight
    exceeds tau (they get the model's value only) times the largest observed |reward - prediction|."""
    n = feedback.size
    ratios = np.divide(
        feedback.target, feedback.logged, out=np.full_like(feedback.target, np.inf), where=feedback.logged > 0.0
    )
    ratios = np.where(feedback.target > 0.0, ratios, 0.0)
    spread = float(np.abs(_residuals(feedback)).max()) or 1.0
    finite = ratios[np.isfinite(ratios) & (ratios > 0.0)]
    grid = np.unique(np.concatenate([np.quantile(finite, np.linspace(0.0, 1.0, 21)) if finite.size else [], [np.inf]]))
    best, best_tau = math.inf, math.inf
    for tau in grid:
        terms = switch_terms(feedback, float(tau))
        excluded = (feedback.target * (ratios > tau)).sum(axis=1).mean()
        risk = terms.var(ddof=1) / n + (spread * excluded) ** 2 if n > 1 else 0.0
        if risk < best:
            best, best_tau = risk, float(tau)
    return best_tau


def switch_dr(
    feedback: Feedback, level: float = 0.95, *, tau: float | None = None, resamples: int = 1000, seed: int = 0
) -> Estimate:
    chosen = switch_threshold(feedback) if tau is None else tau
    terms = switch_terms(feedback, chosen)
    w = feedback.weights
    used = np.where(w <= chosen, w, 0.0)
    estimate, _ = _bootstrap(
        "SwitchDR",
        lambda rows: float(terms[rows].mean()),
        feedback.size,
        level,
        effective_sample_size(used),
        resamples=resamples,
        seed=seed,
    )
    return Estimate(**{**estimate.__dict__, "parameter": chosen})


def estimate_all(
    feedback: Feedback, level: float = 0.95, *, resamples: int = 1000, seed: int = 0, tau: float | None = None
) -> list[Estimate]:
    """Every estimator, in `ESTIMATORS` order (the model-based ones only when `feedback` has predictions)."""
    results = [ips(feedback, level), snips(feedback, level)]
    if feedback.predictions is not None:
        results += [
            dm(feedback, level, resamples=resamples, seed=seed),
            dr(feedback, level),
            sndr(feedback, level),
            switch_dr(feedback, level, tau=tau, resamples=resamples, seed=seed),
        ]
    return results
