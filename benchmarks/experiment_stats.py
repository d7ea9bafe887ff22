"""Time of one full experiment analysis (``croupier.stats.analyze``) at the API's limits: 16 variants (control and 15
treatments) and 8 metrics (a Binary primary metric and 7 guardrails: 3 Continuous, 2 Count, 2 Binary), every method.

One analysis is what the operator runs per Experiment per analysis interval: input validation, the SRM chi-square,
15 comparisons per metric (120 in all), Holm, guardrail decisions and the winner rule. Side by side, in the same run,
the reference: the same 120 comparisons as 120 calls of scipy's ``ttest_ind_from_stats`` (Welch), the per-pair loop
one would otherwise write, which computes p-values only (no intervals, lifts, guardrails or Holm).

Run ``uv run python benchmarks/experiment_stats.py`` (``--repeats`` interleaved rounds; the median and best are shown).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
from scipy import stats as distributions

from croupier.stats import (
    AnalysisConfig,
    AnalysisState,
    Direction,
    Guardrail,
    Method,
    Metric,
    MetricKind,
    Moments,
    VariantData,
    analyze,
)

VARIANTS = 16
EXPOSURES = 50_000
PRIMARY = Metric("conversion", MetricKind.BINARY, minimum_detectable_effect=0.1)
GUARDRAILS = [
    *(Guardrail(f"latency_{i}", MetricKind.CONTINUOUS, Direction.DECREASE, 0.05) for i in range(3)),
    *(Guardrail(f"errors_{i}", MetricKind.COUNT, Direction.DECREASE, 0.1) for i in range(2)),
    *(Guardrail(f"churn_{i}", MetricKind.BINARY, Direction.DECREASE, 0.1) for i in range(2)),
]


def experiment(seed: int = 1) -> list[VariantData]:
    rng = np.random.default_rng(seed)
    variants = []
    for v in range(VARIANTS):
        n = EXPOSURES + int(rng.integers(-200, 200))
        metrics: dict[str, Moments] = {}
        conversions = int(rng.binomial(n, 0.10 + 0.002 * v))
        metrics[PRIMARY.name] = Moments(n, conversions, conversions)
        for g in GUARDRAILS:
            if g.kind is MetricKind.BINARY:
                x = int(rng.binomial(n, 0.05))
                metrics[g.name] = Moments(n, x, x)
            else:
                mean, sd = (120.0, 40.0) if g.kind is MetricKind.CONTINUOUS else (0.3, 0.6)
                total = mean * n + rng.normal(0, sd * np.sqrt(n))
                metrics[g.name] = Moments(n, total, (n - 1) * sd**2 + total**2 / n)
        variants.append(VariantData(f"variant-{v}", 100 / VARIANTS, n, metrics))
    return variants


def reference(variants: list[VariantData]) -> None:
    control = variants[0]
    for metric in [PRIMARY.name, *(g.name for g in GUARDRAILS)]:
        c = control.metrics[metric]
        c_mean = c.total / c.n
        c_sd = np.sqrt((c.sum_of_squares - c.total * c_mean) / (c.n - 1))
        for v in variants[1:]:
            m = v.metrics[metric]
            mean = m.total / m.n
            sd = np.sqrt((m.sum_of_squares - m.total * mean) / (m.n - 1))
            distributions.ttest_ind_from_stats(mean, sd, m.n, c_mean, c_sd, c.n, equal_var=False)


def timed(calls: dict[str, Callable[[], object]], repeats: int) -> dict[str, list[float]]:
    """Interleaved rounds (every row once per round), so drift in the machine's load hits every row alike."""
    samples: dict[str, list[float]] = {label: [] for label in calls}
    for call in calls.values():
        call()  # warm caches and lazy imports
    for _ in range(repeats):
        for label, call in calls.items():
            start = time.perf_counter()
            call()
            samples[label].append(time.perf_counter() - start)
    return samples


def machine() -> str:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{cpu}; {os.cpu_count()} CPUs; load average {load}; Python {platform.python_version()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--repeats", type=int, default=30, help="interleaved rounds, one analysis per row each (default 30)"
    )
    args = parser.parse_args(argv)
    variants = experiment()
    comparisons = (VARIANTS - 1) * (1 + len(GUARDRAILS))
    calls: dict[str, Callable[[], object]] = {}
    for method in Method:
        config = AnalysisConfig(method=method)
        result = analyze(variants, variants[0].name, PRIMARY, GUARDRAILS, config)
        assert result.state is AnalysisState.REPORTED, result.state
        calls[f"analyze, {method}"] = lambda config=config: analyze(
            variants, variants[0].name, PRIMARY, GUARDRAILS, config
        )
    calls["reference: 120 x scipy ttest_ind_from_stats"] = lambda: reference(variants)
    rows = timed(calls, args.repeats)
    print(f"machine: {machine()}")
    print(f"{VARIANTS} variants x {1 + len(GUARDRAILS)} metrics = {comparisons} comparisons per analysis\n")
    print("| what | median ms per analysis | best ms | median us per comparison |")
    print("|---|---:|---:|---:|")
    for label, samples in rows.items():
        median = statistics.median(samples)
        print(f"| {label} | {median * 1e3:.2f} | {min(samples) * 1e3:.2f} | {median / comparisons * 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
