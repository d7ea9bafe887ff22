"""The statistics under settings that break naive assumptions, by simulation (the tables in docs/statistics.md,
"Settings that break naive assumptions"):

1. Sequential with a mis-tuned tuning parameter (10x too small, right, 10x too large against the realised units):
   A/A false positive rate under peeking at every look, and power at the MDE, Binary and Continuous (normal).
2. Heavy-tailed Continuous metrics, lognormal (sigma 2) and Pareto (shape 2.5, finite variance, no third moment), for
   FixedHorizon, Sequential and Bayesian: A/A false positive rate, power at an effect, and how the FixedHorizon
   interval's misses of the true difference split between its two sides, by units per arm; each beside a normal
   metric of the same mean and standard deviation, in the same run.

The same simulators as tests/unit/stats/test_simulations.py (tests/support/statsim.py), which asserts the CI-sized
run. ``--slow`` runs 10,000 experiments of up to 20,000 units per arm (simulation standard error near 5%: 0.22 points).

    uv run python benchmarks/experiment_stats_robustness.py [--slow] [--experiments N --looks L --batch B]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support import statsim

from croupier.stats import AnalysisConfig, Metric, MetricKind, Moments, planned_samples_per_variant

ALPHA = statsim.ALPHA
MISTUNED = {"N/10": 0.1, "N": 1.0, "10N": 10.0}
HEAVY = {"lognormal": (statsim.lognormal(2.0), 0.3), "pareto": (statsim.pareto(2.5), 0.04)}


def mistuned(experiments: int, looks: int, batch: int) -> None:
    print(f"\n1. Sequential tuning parameter vs N = realised units (both arms); {experiments} experiments")
    print(f"A/A, {looks} looks of {batch} units per arm (N = {2 * looks * batch}): false positives at any look")
    print("| metric | " + " | ".join(f"tuning {name}" for name in MISTUNED) + " |")
    print("|---|" + "---:|" * len(MISTUNED))
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        sampler = statsim.exact_binary(0.1) if kind is MetricKind.BINARY else statsim.exact_normal(1.0, 2.0)
        tunings = {name: f * 2.0 * looks * batch for name, f in MISTUNED.items()}
        run = statsim.run(
            sampler, experiments=experiments, looks=looks, batch=batch, kind=kind, tunings=tunings, seed=41,
            bayesian=False,
        )  # fmt: skip
        print(f"| {kind} | " + " | ".join(f"{run.ever[name]:.2%}" for name in MISTUNED) + " |")
    print("Power at the MDE (10% relative), 20 looks up to FixedHorizon's planned sample size (N = both arms there)")
    print("| metric | units per arm | " + " | ".join(f"tuning {name}" for name in MISTUNED) + " |")
    print("|---|---:|" + "---:|" * len(MISTUNED))
    for kind in (MetricKind.BINARY, MetricKind.CONTINUOUS):
        mean, sd = (0.1, 0.0) if kind is MetricKind.BINARY else (10.0, 20.0)
        sampler = statsim.exact_binary(mean) if kind is MetricKind.BINARY else statsim.exact_normal(mean, sd)
        n0 = 10_000
        baseline = (
            Moments(n0, n0 * mean, n0 * mean)
            if kind is MetricKind.BINARY
            else Moments(n0, n0 * mean, (n0 - 1) * sd**2 + n0 * mean**2)
        )
        planned = planned_samples_per_variant(
            Metric("m", kind, minimum_detectable_effect=0.1), baseline, 1, AnalysisConfig(alpha=ALPHA, power=0.8)
        )
        assert planned is not None
        plan_looks = 20
        plan_batch = -(-planned // plan_looks)
        tunings = {name: f * 2.0 * plan_batch * plan_looks for name, f in MISTUNED.items()}
        run = statsim.run(
            sampler, experiments=experiments, looks=plan_looks, batch=plan_batch, lift=0.1, kind=kind,
            tunings=tunings, seed=43, bayesian=False,
        )  # fmt: skip
        cells = " | ".join(f"{run.ever[name]:.2%}" for name in MISTUNED)
        print(f"| {kind} | {plan_batch * plan_looks} | {cells} |")


def heavy_tails(experiments: int, looks: int, batch: int) -> None:
    print(f"\n2. Heavy-tailed Continuous metrics: {experiments} experiments, {looks} looks of {batch} units per arm")
    marks = sorted({0, len(range(looks)) // 10, len(range(looks)) // 4, looks // 2, looks - 1})
    for label, (tail, lift) in HEAVY.items():
        skew = "none (infinite)" if tail.skewness == float("inf") else f"{tail.skewness:.0f}"
        print(
            f"\n{tail.name}: mean {tail.mean:.3g}, sd {tail.sd:.3g}, skewness {skew}; effect: +{lift:.0%} (x{1 + lift})"
        )
        runs = {}
        started = time.perf_counter()
        for name, sampler in (("heavy", tail.sampler()), ("normal", statsim.exact_normal(tail.mean, tail.sd))):
            for effect in (False, True):
                runs[(name, effect)] = statsim.run(
                    sampler, experiments=experiments, looks=looks, batch=batch, lift=lift if effect else 0.0,
                    true_difference=tail.mean * lift if effect else 0.0, seed=53 + 2 * effect + len(label),
                )  # fmt: skip
        print(f"({time.perf_counter() - started:.0f} s)")
        print(
            "| metric | A/A: Sequential, any look | A/A: FixedHorizon, worst single look "
            "| A/A: Bayesian, worst single look | power: Sequential, any look | power: FixedHorizon, last look "
            "| power: Bayesian, last look |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|")
        for name in ("heavy", "normal"):
            a_a, effect = runs[(name, False)], runs[(name, True)]
            print(
                f"| {tail.name if name == 'heavy' else 'normal, same mean and sd'} | {a_a.ever['sequential']:.2%} "
                f"| {max(a_a.at_look['fixed']):.2%} | {max(a_a.at_look['bayesian']):.2%} "
                f"| {effect.ever['sequential']:.2%} | {effect.at_look['fixed'][-1]:.2%} "
                f"| {effect.at_look['bayesian'][-1]:.2%} |"
            )
        print("FixedHorizon interval (95%) on the difference, at the effect: misses below / above the true difference")
        print("| units per arm | " + " | ".join(str(runs[("heavy", True)].units_per_arm[i]) for i in marks) + " |")
        print("|---|" + "---:|" * len(marks))
        for name in ("heavy", "normal"):
            misses = runs[(name, True)].misses["fixed"]
            cells = " | ".join(f"{misses[i][0]:.2%} / {misses[i][1]:.2%}" for i in marks)
            print(f"| {tail.name if name == 'heavy' else 'normal'} | {cells} |")
        a_a = runs[("heavy", False)]
        for method in ("fixed", "bayesian"):
            held = statsim.first_n_holding(a_a, method, ALPHA + 0.01)
            print(f"A/A {method}: single-look false positive rate <= alpha + 1 point from {held} units per arm on")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slow", action="store_true", help="10,000 experiments, 80 looks of 250 units per arm")
    parser.add_argument("--experiments", type=int, default=2_000)
    parser.add_argument("--looks", type=int, default=40)
    parser.add_argument("--batch", type=int, default=250)
    args = parser.parse_args()
    if args.slow:
        args.experiments, args.looks, args.batch = 10_000, 80, 250
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}")
    started = time.perf_counter()
    mistuned(args.experiments, args.looks, args.batch)
    heavy_tails(args.experiments, args.looks, args.batch)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
