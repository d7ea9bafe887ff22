"""Simulated experiments for the statistics' calibration: vectorised over experiments, each arm kept as its running
sufficient statistics (n, sum, sum of squares), exactly what the runtime records and the analysis reads.

Used by tests/unit/stats/test_simulations.py (sized for CI) and benchmarks/experiment_stats_robustness.py (the same
simulations, larger, with ``--slow``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from croupier.stats import Direction, Method, MetricKind, compare_arms

ALPHA = 0.05


@dataclass
class Arm:
    """Running sufficient statistics of one arm in every simulated experiment."""

    n: np.ndarray
    total: np.ndarray
    squares: np.ndarray

    def as_tuple(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.n, self.total, self.squares

    def __add__(self, other: Arm) -> Arm:
        return Arm(self.n + other.n, self.total + other.total, self.squares + other.squares)


Sampler = Callable[[np.random.Generator, int, int, float], Arm]
"""(rng, experiments, units per experiment, scale) -> one batch: every unit's value multiplied by ``scale``."""


def _from_values(values: np.ndarray) -> Arm:
    return Arm(np.full(values.shape[0], float(values.shape[1])), values.sum(axis=1), np.square(values).sum(axis=1))


@dataclass(frozen=True)
class HeavyTail:
    """A positive, right-skewed metric (revenue per user, latency): its unit draws, mean and standard deviation."""

    name: str
    draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray]
    mean: float
    sd: float
    skewness: float  # inf when the third moment does not exist

    def sampler(self) -> Sampler:
        def sample(rng: np.random.Generator, experiments: int, size: int, scale: float) -> Arm:
            values = self.draw(rng, (experiments, size))
            if scale != 1.0:
                values *= scale
            return _from_values(values)

        return sample


def lognormal(sigma: float = 2.0) -> HeavyTail:
    """exp(N(0, sigma^2)): mean e^(sigma^2/2), variance (e^(sigma^2) - 1) e^(sigma^2)."""
    s2 = sigma**2
    return HeavyTail(
        f"lognormal(sigma={sigma:g})",
        lambda rng, shape: rng.lognormal(0.0, sigma, shape),
        float(np.exp(s2 / 2)),
        float(np.sqrt((np.exp(s2) - 1) * np.exp(s2))),
        float((np.exp(s2) + 2) * np.sqrt(np.exp(s2) - 1)),
    )


def pareto(shape: float = 2.5) -> HeavyTail:
    """Pareto with x_m = 1 and this shape: finite variance for shape > 2, no third moment for shape <= 3."""
    mean = shape / (shape - 1)
    variance = shape / ((shape - 1) ** 2 * (shape - 2))
    skew = float("inf") if shape <= 3 else 2 * (1 + shape) / (shape - 3) * np.sqrt((shape - 2) / shape)
    return HeavyTail(
        f"Pareto(shape={shape:g})",
        lambda rng, size: rng.pareto(shape, size) + 1.0,
        mean,
        float(np.sqrt(variance)),
        skew,
    )


def normal_like(tail: HeavyTail) -> HeavyTail:
    """A normal metric with the same mean and standard deviation: the reference the heavy tail is measured against."""
    return HeavyTail(
        f"normal(mean={tail.mean:.3g}, sd={tail.sd:.3g})",
        lambda rng, shape: rng.normal(tail.mean, tail.sd, shape),
        tail.mean,
        tail.sd,
        0.0,
    )


def exact_normal(mean: float, sd: float) -> Sampler:
    """Normal units by their exact sufficient statistics (the sum and a chi-square within-batch sum of squares): the
    cost does not grow with the batch."""

    def sample(rng: np.random.Generator, experiments: int, size: int, scale: float) -> Arm:
        m, s = mean * scale, sd * scale
        total = rng.normal(size * m, s * np.sqrt(size), experiments)
        within = s**2 * rng.chisquare(size - 1, experiments)
        return Arm(np.full(experiments, float(size)), total, within + total**2 / size)

    return sample


def exact_binary(rate: float) -> Sampler:
    def sample(rng: np.random.Generator, experiments: int, size: int, scale: float) -> Arm:
        total = rng.binomial(size, min(1.0, rate * scale), experiments).astype(float)
        return Arm(np.full(experiments, float(size)), total, total.copy())

    return sample


@dataclass
class Trajectory:
    """What every look of a set of simulated experiments showed, per method. ``ever`` counts a rejection at any look
    (a user peeking at every look); ``at_look[i]`` is the rate at look i alone (a test run once, at that n)."""

    units_per_arm: list[int] = field(default_factory=list)
    ever: dict[str, float] = field(default_factory=dict)
    at_look: dict[str, list[float]] = field(default_factory=dict)
    misses: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """FixedHorizon's interval on the difference at each look: share below / above the true difference."""


def run(
    sampler: Sampler,
    *,
    experiments: int,
    looks: int,
    batch: int,
    lift: float = 0.0,
    true_difference: float = 0.0,
    kind: MetricKind = MetricKind.CONTINUOUS,
    tunings: dict[str, float] | None = None,
    seed: int = 0,
    bayesian: bool = True,
) -> Trajectory:
    """``experiments`` experiments with ``looks`` looks of ``batch`` units per arm; the treatment's units are the
    control's distribution times 1 + ``lift`` (0: an A/A test). A rejection counts only in the true direction when
    there is an effect (a win), in either direction in an A/A test (a false positive). Sequential runs once per named
    tuning parameter (``tunings``: name -> total units both arms, default ``{"sequential": 2 * looks * batch}``)."""
    rng = np.random.default_rng(seed)
    tunings = tunings if tunings is not None else {"sequential": 2.0 * looks * batch}
    names = [*tunings, "fixed", *(["bayesian"] if bayesian else [])]
    ever = {name: np.zeros(experiments, bool) for name in names}
    result = Trajectory(at_look={name: [] for name in names}, misses={"fixed": []})
    control = treatment = None
    for look in range(looks):
        c, t = sampler(rng, experiments, batch, 1.0), sampler(rng, experiments, batch, 1.0 + lift)
        control = c if control is None else control + c
        treatment = t if treatment is None else treatment + t
        result.units_per_arm.append((look + 1) * batch)
        outcomes: dict[str, np.ndarray] = {}
        for name, tuning in tunings.items():
            outcomes[name] = _rejects(Method.SEQUENTIAL, kind, treatment, control, tuning=tuning, lift=lift)
        fixed = compare_arms(
            Method.FIXED_HORIZON, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA
        )
        outcomes["fixed"] = _decided(fixed.p_value, fixed.difference, lift)
        low, high = np.asarray(fixed.difference_lower), np.asarray(fixed.difference_upper)
        result.misses["fixed"].append((float(np.mean(high < true_difference)), float(np.mean(low > true_difference))))
        if bayesian:
            bayes = compare_arms(
                Method.BAYESIAN, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA
            )
            outcomes["bayesian"] = np.asarray(bayes.probability_to_beat >= 1 - ALPHA)
        for name, hits in outcomes.items():
            ever[name] |= hits
            result.at_look[name].append(float(hits.mean()))
    result.ever = {name: float(hits.mean()) for name, hits in ever.items()}
    return result


def _decided(p_value: np.ndarray, difference: np.ndarray, lift: float) -> np.ndarray:
    rejected = np.asarray(p_value) < ALPHA
    return rejected if lift == 0 else rejected & (np.asarray(difference) > 0)


def _rejects(
    method: Method, kind: MetricKind, treatment: Arm, control: Arm, *, tuning: float, lift: float
) -> np.ndarray:
    result = compare_arms(
        method, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA, tuning_parameter=tuning
    )
    return _decided(result.p_value, result.difference, lift)


def first_n_holding(trajectory: Trajectory, name: str, limit: float) -> int | None:
    """The smallest units per arm from which the single-look rate stays at or below ``limit`` at every later look."""
    rates = trajectory.at_look[name]
    for i in range(len(rates)):
        if all(r <= limit for r in rates[i:]):
            return trajectory.units_per_arm[i]
    return None
