"""Calibration by simulation, vectorised over experiments: A/A false positive rates under peeking after every batch,
and power at the MDE for each method. Draws are exact sufficient statistics (binomial counts; for normal data the sum
and a chi-square within-batch sum of squares), so 2,000 experiments with 40 looks each take well under a second.

`pytest tests/unit/stats/test_simulations.py -s` prints the table quoted in docs/statistics.md. With 2,000
experiments a rate near 5% has a simulation standard error of 0.49 points (near 80%: 0.89 points)."""

from __future__ import annotations

from functools import cache

import numpy as np
from support import statsim

from croupier.stats import (
    AnalysisConfig,
    Direction,
    Guardrail,
    GuardrailState,
    Method,
    Metric,
    MetricKind,
    Moments,
    compare_arms,
    frequentist,
    guardrail_interval_alpha,
    guardrail_states,
    planned_samples_per_variant,
)

EXPERIMENTS = 2_000
LOOKS = 40
BATCH = 250
ALPHA = statsim.ALPHA
Arm = statsim.Arm


def draw(rng: np.random.Generator, kind: MetricKind, size: int, mean: float, sd: float) -> Arm:
    """One batch of ``size`` units per experiment: Bernoulli(mean), or Normal(mean, sd^2) by its sufficient stats."""
    n = np.full(EXPERIMENTS, float(size))
    if kind is MetricKind.BINARY:
        total = rng.binomial(size, mean, EXPERIMENTS).astype(float)
        return Arm(n, total, total.copy())
    total = rng.normal(size * mean, sd * np.sqrt(size), EXPERIMENTS)
    within = sd**2 * rng.chisquare(size - 1, EXPERIMENTS)
    return Arm(n, total, within + total**2 / size)


def rejections(method: Method, kind: MetricKind, treatment: Arm, control: Arm, tuning: float) -> np.ndarray:
    """Which experiments reject "no difference" (two-sided) at this look."""
    result = compare_arms(
        method, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA, tuning_parameter=tuning
    )
    return np.asarray(result.p_value < ALPHA)


@cache
def a_a(kind: MetricKind) -> dict[str, float]:
    """A/A experiments, LOOKS looks of BATCH units per arm: rates of ever rejecting (two-sided) by method."""
    rng = np.random.default_rng(20261130 + len(kind.value))
    mean, sd = (0.1, 0.0) if kind is MetricKind.BINARY else (1.0, 2.0)
    control = treatment = None
    ever = {"sequential": np.zeros(EXPERIMENTS, bool), "fixed_peeking": np.zeros(EXPERIMENTS, bool)}
    tuning = 2.0 * LOOKS * BATCH
    for _ in range(LOOKS):
        c, t = draw(rng, kind, BATCH, mean, sd), draw(rng, kind, BATCH, mean, sd)
        control = c if control is None else control + c
        treatment = t if treatment is None else treatment + t
        ever["sequential"] |= rejections(Method.SEQUENTIAL, kind, treatment, control, tuning)
        ever["fixed_peeking"] |= rejections(Method.FIXED_HORIZON, kind, treatment, control, tuning)
        if kind is MetricKind.CONTINUOUS:  # closed form, cheap enough to watch at every look
            ever.setdefault("bayesian_peeking", np.zeros(EXPERIMENTS, bool))
            bayes = compare_arms(
                Method.BAYESIAN, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA
            )
            ever["bayesian_peeking"] |= bayes.probability_to_beat >= 1 - ALPHA
    assert control is not None and treatment is not None
    rates = {name: float(hits.mean()) for name, hits in ever.items()}
    rates["fixed_final_look"] = float(rejections(Method.FIXED_HORIZON, kind, treatment, control, tuning).mean())
    bayes = compare_arms(
        Method.BAYESIAN, kind, Direction.INCREASE, treatment.as_tuple(), control.as_tuple(), alpha=ALPHA
    )
    rates["bayesian_final_look"] = float(np.mean(bayes.probability_to_beat >= 1 - ALPHA))
    return rates


@cache
def power(kind: MetricKind) -> dict[str, float]:
    """Power at the MDE (10% relative) with FixedHorizon's planned sample size: FixedHorizon at the plan, Sequential
    looking 20 times up to the plan (tuning parameter = both arms at the plan), Bayesian at the plan."""
    rng = np.random.default_rng(7 + len(kind.value))
    mean, sd = (0.1, 0.0) if kind is MetricKind.BINARY else (10.0, 20.0)
    metric = Metric("m", kind, minimum_detectable_effect=0.1)
    baseline = Moments(10_000, 1000.0, 1000.0) if kind is MetricKind.BINARY else _normal_moments(10_000, mean, sd)
    planned = planned_samples_per_variant(metric, baseline, 1, AnalysisConfig(alpha=ALPHA, power=0.8))
    assert planned is not None
    looks = 20
    batch = -(-planned // looks)
    control = treatment = None
    sequential = np.zeros(EXPERIMENTS, bool)
    for _ in range(looks):
        c, t = draw(rng, kind, batch, mean, sd), draw(rng, kind, batch, mean * 1.1, sd)
        control = c if control is None else control + c
        treatment = t if treatment is None else treatment + t
        sequential |= _wins(Method.SEQUENTIAL, kind, treatment, control, 2.0 * batch * looks)
    assert control is not None and treatment is not None
    return {
        "planned_per_arm": float(batch * looks),
        "fixed": float(_wins(Method.FIXED_HORIZON, kind, treatment, control, 0).mean()),
        "sequential": float(sequential.mean()),
        "bayesian": float(_wins(Method.BAYESIAN, kind, treatment, control, 0).mean()),
    }


def _wins(method: Method, kind: MetricKind, treatment: Arm, control: Arm, tuning: float) -> np.ndarray:
    result = compare_arms(
        method,
        kind,
        Direction.INCREASE,
        treatment.as_tuple(),
        control.as_tuple(),
        alpha=ALPHA,
        tuning_parameter=tuning or 5000.0,
    )
    if method is Method.BAYESIAN:
        return np.asarray(result.probability_to_beat >= 1 - ALPHA)
    return np.asarray((result.p_value < ALPHA) & (result.difference > 0))


def _normal_moments(n: int, mean: float, sd: float) -> Moments:
    """Moments with exactly this mean and sample standard deviation."""
    return Moments(n, n * mean, (n - 1) * sd**2 + n * mean**2)


def test_sequential_keeps_its_false_positive_rate_under_continuous_peeking() -> None:
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        assert a_a(kind)["sequential"] <= ALPHA + 0.01, kind


SRM_SPLITS = {"50/50": (50, 50), "34/33/33": (34, 33, 33), "10/90": (10, 90)}
SRM_THRESHOLDS = (0.001, 0.05)


@cache
def srm_alarms(split: str, drop: float = 0.0) -> dict[tuple[str, float], float]:
    """EXPERIMENTS experiments, LOOKS looks of 2 x BATCH exposures each, drawn from the split (the last variant losing
    ``drop`` of its exposures: a broken logging path); the share of experiments where the SRM check (the sequential
    mixture test the analysis runs, or a fixed-sample chi-square) raised an alarm at any look, by threshold."""
    weights = np.array(SRM_SPLITS[split], float)
    shares = weights / weights.sum()
    if drop:
        shares[-1] *= 1 - drop
        shares /= shares.sum()
    rng = np.random.default_rng(20261201 + len(split) + int(drop * 100))
    counts = np.zeros((EXPERIMENTS, len(weights)))
    alarms = {(test, t): np.zeros(EXPERIMENTS, bool) for test in ("sequential", "chi-square") for t in SRM_THRESHOLDS}
    for _ in range(LOOKS):
        counts += rng.multinomial(2 * BATCH, shares, size=EXPERIMENTS)
        p_values = {
            "sequential": frequentist.sequential_srm_p_value(counts, weights),
            "chi-square": frequentist.chi_square_goodness_of_fit(counts, weights)[1],
        }
        for test, threshold in alarms:
            alarms[(test, threshold)] |= p_values[test] < threshold
    return {key: float(hits.mean()) for key, hits in alarms.items()}


def test_sequential_srm_keeps_its_false_alarm_rate_when_checked_at_every_look() -> None:
    # Always valid (Ville's inequality): at most the threshold however often it is read; asserted within the
    # threshold + 1 point of simulation error, for two and three variants, equal and unequal weights.
    for split in SRM_SPLITS:
        rates = srm_alarms(split)
        for threshold in SRM_THRESHOLDS:
            assert rates[("sequential", threshold)] <= threshold + 0.01, (split, threshold, rates)
    # The fixed-sample chi-square re-run at every look is why: at 0.05 it raises a false alarm in about a quarter of
    # these experiments (documented in docs/statistics.md).
    assert srm_alarms("50/50")[("chi-square", 0.05)] > 3 * 0.05


def test_sequential_srm_finds_a_broken_split() -> None:
    # One variant losing 10% of its exposures (a broken logging path): found at the default threshold in nearly every
    # experiment within the 40 looks (40,000 exposures).
    for split in ("50/50", "34/33/33"):
        assert srm_alarms(split, drop=0.1)[("sequential", 0.001)] > 0.95, split


def test_peeking_at_a_fixed_horizon_test_inflates_its_false_positive_rate() -> None:
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        rates = a_a(kind)
        assert rates["fixed_peeking"] > 3 * ALPHA, kind
        # Looked at once, at the end, the same test holds its level (3 simulation standard errors).
        assert abs(rates["fixed_final_look"] - ALPHA) < 0.015, kind
        assert rates["bayesian_final_look"] < ALPHA + 0.015, kind
    # P(beat control) >= 1 - alpha is no error guarantee under peeking either.
    assert a_a(MetricKind.CONTINUOUS)["bayesian_peeking"] > 2 * ALPHA


def test_fixed_horizon_reaches_its_planned_power_at_the_mde() -> None:
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        assert abs(power(kind)["fixed"] - 0.8) < 0.03, kind


def test_sequential_and_bayesian_power_at_the_fixed_horizon_plan() -> None:
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        result = power(kind)
        # Always-valid intervals are wider: less power at the same n, but far from none.
        assert 0.4 < result["sequential"] < result["fixed"], kind
        # P(beat) >= 1 - alpha is a one-sided rule: more power than the two-sided test.
        assert result["bayesian"] > result["fixed"], kind


@cache
def guardrail_rates(method: Method, harm: float) -> dict[GuardrailState, float]:
    """Share of each guardrail state over 2,000 experiments of 2,000 units per arm: a latency guardrail (lower is
    better, threshold 5%) whose true harm is ``harm`` (control mean 100, sd 20, normal)."""
    rng = np.random.default_rng(99 + int(harm * 1000) + len(method.value))
    guardrail = Guardrail("latency", MetricKind.CONTINUOUS, Direction.DECREASE, threshold=0.05)
    control = draw(rng, MetricKind.CONTINUOUS, 2000, 100.0, 20.0)
    treatment = draw(rng, MetricKind.CONTINUOUS, 2000, 100.0 * (1 + harm), 20.0)
    result = compare_arms(
        method,
        MetricKind.CONTINUOUS,
        Direction.DECREASE,
        treatment.as_tuple(),
        control.as_tuple(),
        alpha=guardrail_interval_alpha(method, ALPHA),
        tuning_parameter=4000.0,
    )
    states, _ = guardrail_states(guardrail, result)
    return {state: states.count(state) / len(states) for state in GuardrailState}


def test_guardrail_errors_stay_within_alpha_at_the_threshold() -> None:
    # True harm exactly at the threshold is the worst case for both errors: neither "violated" (harm > 5%) nor "ok"
    # (harm < 5%) is true, and each may be declared in at most alpha of the experiments.
    for method in Method:
        rates = guardrail_rates(method, 0.05)
        assert rates[GuardrailState.VIOLATED] <= ALPHA + 0.015, method
        assert rates[GuardrailState.OK] <= ALPHA + 0.015, method
    # Far from the threshold the right answer comes out.
    for method in Method:
        assert guardrail_rates(method, 0.0)[GuardrailState.OK] > 0.9, method
        assert guardrail_rates(method, 0.12)[GuardrailState.VIOLATED] > 0.9, method


def test_print_calibration_table() -> None:
    print(f"\nA/A: {EXPERIMENTS} experiments, {LOOKS} looks of {BATCH} units per arm, alpha {ALPHA}")
    print(
        "| metric | Sequential, any look | FixedHorizon, any look | FixedHorizon, last look | Bayesian, any look "
        "| Bayesian, last look |"
    )
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        r = a_a(kind)
        bayes_any = f"{r['bayesian_peeking']:.2%}" if "bayesian_peeking" in r else "-"
        print(
            f"| {kind} | {r['sequential']:.2%} | {r['fixed_peeking']:.2%} | {r['fixed_final_look']:.2%} "
            f"| {bayes_any} | {r['bayesian_final_look']:.2%} |"
        )
    print(f"SRM alarms at any of the {LOOKS} looks of {2 * BATCH} exposures, {EXPERIMENTS} experiments")
    print(
        "| split | exposures lost by the last variant | "
        + " | ".join(f"{test} < {t}" for test in ("sequential", "chi-square") for t in SRM_THRESHOLDS)
        + " |"
    )
    for split in SRM_SPLITS:
        for drop in (0.0, 0.05, 0.1):
            rates = srm_alarms(split, drop)
            cells = " | ".join(
                f"{rates[(test, t)]:.2%}" for test in ("sequential", "chi-square") for t in SRM_THRESHOLDS
            )
            print(f"| {split} | {drop:.0%} | {cells} |")
    print(f"Power at MDE 10% relative, {EXPERIMENTS} experiments, planned power 80%")
    print("| metric | units per arm | FixedHorizon | Sequential (20 looks) | Bayesian |")
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        p = power(kind)
        print(
            f"| {kind} | {p['planned_per_arm']:.0f} | {p['fixed']:.2%} | {p['sequential']:.2%} | {p['bayesian']:.2%} |"
        )
    print(f"Guardrail (threshold 5%, {EXPERIMENTS} experiments, 2000 units per arm): Violated / Ok / Insufficient")
    print("| true harm | " + " | ".join(str(m) for m in Method) + " |")
    for harm in (0.0, 0.05, 0.12):
        cells = []
        for method in Method:
            r = guardrail_rates(method, harm)
            cells.append(
                f"{r[GuardrailState.VIOLATED]:.1%} / {r[GuardrailState.OK]:.1%} / {r[GuardrailState.INSUFFICIENT]:.1%}"
            )
        print(f"| {harm:.0%} | " + " | ".join(cells) + " |")


# --- Settings that break naive assumptions ---------------------------------------------------------------------------
# Sized for CI (tests/support/statsim.py holds the simulators; benchmarks/experiment_stats_robustness.py runs the same
# simulations larger, `--slow`). The tables in docs/statistics.md come from that script.

MISTUNED = {"tuning N/10": 0.1, "tuning N": 1.0, "tuning 10N": 10.0}
"""Sequential's tuning parameter against N, the realised units (both arms) at the last look."""


@cache
def mistuned_a_a(kind: MetricKind) -> dict[str, float]:
    sampler = statsim.exact_binary(0.1) if kind is MetricKind.BINARY else statsim.exact_normal(1.0, 2.0)
    realised = 2.0 * LOOKS * BATCH
    tunings = {name: factor * realised for name, factor in MISTUNED.items()}
    run = statsim.run(
        sampler, experiments=EXPERIMENTS, looks=LOOKS, batch=BATCH, kind=kind, tunings=tunings, seed=41, bayesian=False
    )
    return run.ever


@cache
def mistuned_power(kind: MetricKind) -> dict[str, float]:
    """Power at the MDE (10% relative), 20 looks up to FixedHorizon's planned sample size, by tuning parameter."""
    mean, sd = (0.1, 0.0) if kind is MetricKind.BINARY else (10.0, 20.0)
    sampler = statsim.exact_binary(mean) if kind is MetricKind.BINARY else statsim.exact_normal(mean, sd)
    metric = Metric("m", kind, minimum_detectable_effect=0.1)
    baseline = Moments(10_000, 1000.0, 1000.0) if kind is MetricKind.BINARY else _normal_moments(10_000, mean, sd)
    planned = planned_samples_per_variant(metric, baseline, 1, AnalysisConfig(alpha=ALPHA, power=0.8))
    assert planned is not None
    looks = 20
    batch = -(-planned // looks)
    tunings = {name: factor * 2.0 * batch * looks for name, factor in MISTUNED.items()}
    run = statsim.run(
        sampler, experiments=EXPERIMENTS, looks=looks, batch=batch, lift=0.1, kind=kind, tunings=tunings, seed=43,
        bayesian=False,
    )  # fmt: skip
    return {**run.ever, "planned_per_arm": float(batch * looks)}


def test_a_mistuned_sequential_test_keeps_its_false_positive_rate() -> None:
    # The mixture's tuning parameter only moves where the confidence sequence is tightest: validity holds for any
    # value (Ville's inequality), 10x too small or 10x too large, under peeking at every look.
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        rates = mistuned_a_a(kind)
        for name in MISTUNED:
            assert rates[name] <= ALPHA + 0.01, (kind, name, rates)


def test_a_mistuned_sequential_test_pays_in_power_not_in_errors() -> None:
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        power_by_tuning = mistuned_power(kind)
        tuned = power_by_tuning["tuning N"]
        # Tuned for the realised N is the best of the three, up to simulation error (3 standard errors of a
        # difference near 50%: 3 points). The cost is lopsided: 10x too small loses a few points, 10x too large
        # most of the power (the sequence is tightest far beyond the data; numbers in docs/statistics.md).
        for name in ("tuning N/10", "tuning 10N"):
            assert power_by_tuning[name] <= tuned + 0.03, (kind, power_by_tuning)
        assert power_by_tuning["tuning 10N"] < power_by_tuning["tuning N/10"], (kind, power_by_tuning)


HEAVY_LOOKS, HEAVY_BATCH = 40, 250  # up to 10,000 units per arm, looked at every 250
HEAVY_TAILS = {"lognormal": (statsim.lognormal(2.0), 0.3), "pareto": (statsim.pareto(2.5), 0.04)}
"""Each heavy tail with the relative lift its power is measured at (about 80% power for FixedHorizon at 10,000 units
per arm with a normal metric of the same mean and variance)."""


@cache
def heavy(tail_name: str, effect: bool, reference: bool = False) -> statsim.Trajectory:
    """A/A (``effect`` False) or the tail's lift, on the heavy-tailed metric or on a normal one of the same mean and
    standard deviation (``reference``)."""
    tail, lift = HEAVY_TAILS[tail_name]
    sampler = statsim.exact_normal(tail.mean, tail.sd) if reference else tail.sampler()
    lift = lift if effect else 0.0
    return statsim.run(
        sampler, experiments=EXPERIMENTS, looks=HEAVY_LOOKS, batch=HEAVY_BATCH, lift=lift,
        true_difference=tail.mean * lift, seed=53 + 2 * effect + len(tail_name),
    )  # fmt: skip


def test_heavy_tailed_metrics_keep_the_false_positive_rate() -> None:
    # A/A: both arms draw from the same distribution, so the difference of means is symmetric and the two-sided
    # errors stay within alpha; a huge draw inflates the variance estimate with the mean, making the tests conservative
    # at small n rather than liberal.
    for name in HEAVY_TAILS:
        run = heavy(name, effect=False)
        assert run.ever["sequential"] <= ALPHA + 0.01, (name, run.ever)
        for method in ("fixed", "bayesian"):
            # A single look at any n from 250 units per arm: within alpha + 3 simulation standard errors.
            assert max(run.at_look[method]) <= ALPHA + 0.015, (name, method, run.at_look[method])


def test_heavy_tailed_metrics_power_and_interval_coverage_at_an_effect() -> None:
    for name in HEAVY_TAILS:
        run, reference = heavy(name, effect=True), heavy(name, effect=True, reference=True)
        # Every method finds the effect at least about as often as on the normal metric with the same variance
        # (a typical heavy-tailed sample misses the largest draws, so its variance estimate is usually small).
        assert run.ever["sequential"] >= reference.ever["sequential"] - 0.05, (name, run.ever, reference.ever)
        for method in ("fixed", "bayesian"):  # looked at once, at the last look
            found, expected = run.at_look[method][-1], reference.at_look[method][-1]
            assert found >= expected - 0.05, (name, method, found, expected)
        # The two-sided interval's coverage of the true difference holds from 250 units per arm (misses within
        # alpha + 3 standard errors); how lopsided the misses are is in docs/statistics.md.
        for low, high in run.misses["fixed"]:
            assert low + high <= ALPHA + 0.015, (name, run.misses["fixed"])
