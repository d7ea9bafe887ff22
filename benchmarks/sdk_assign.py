"""Local experiment assignment in the Python SDK, per call, beside the bare hash in the same run.

    uv run python benchmarks/sdk_assign.py [--units 200000] [--rounds 5]

For each algorithm (sha256-v1, fnv1a32-v2, fnv1a32-v1) and a three-variant split (34/33/33), times over the same
unit ids, in interleaved rounds (median of the rounds reported):

- `LocalAssigner.assign`: what a service calls (`croupier.client.LocalAssigner`, built once from an Experiment
  manifest);
- `bare hash (C)`: the hash function alone on the unit's bytes, in C: `hashlib.sha256(salt + ":" + unit).digest()`,
  or one `fnv_hash_fast.fnv1a_32(salt + unit)` (fnv1a32-v2 hashes twice): the floor of any Python implementation;
- `contract bucket()`: `croupier.api.assignment.bucket(unit, salt, algorithm)`, the unit's bucket as the contract's
  reference code computes it (pure Python FNV);
- `contract assign()`: `croupier.api.assignment.assign(unit, salt, weights, algorithm)`, the one-shot function that
  checks the weights on each call.

Goal: under 5 µs per LocalAssigner.assign call. Before timing, every unit's variant is checked equal across the three.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections.abc import Callable

from fnv_hash_fast import fnv1a_32

from croupier.api import assignment
from croupier.client import LocalAssigner

GOAL_US = 5.0
WEIGHTS = [("control", 34), ("bandit", 33), ("ranker-v2", 33)]
SALT = "checkout-offer-2025-q1"


def manifest(algorithm: str) -> dict[str, object]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "checkout-offer", "namespace": "shop"},
        "spec": {
            "variants": [{"name": name, "weight": weight, "payload": {"v": name}} for name, weight in WEIGHTS],
            "control": "control",
            "assignment": {"unitKey": "userId", "salt": SALT, "algorithm": algorithm},
            "metric": {"name": "conversion", "type": "Binary"},
        },
    }


def bare_hash(algorithm: str) -> Callable[[str], object]:
    if algorithm == assignment.HashAlgorithm.SHA256_V1:
        prefix = f"{SALT}:".encode()
        return lambda u: hashlib.sha256(prefix + u.encode()).digest()
    salt = SALT.encode()
    return lambda u: fnv1a_32(salt + u.encode())


def per_call_us(function: Callable[[str], object], units: list[str]) -> float:
    started = time.perf_counter()
    for unit in units:
        function(unit)
    return (time.perf_counter() - started) / len(units) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    units = [f"user-{i:08d}" for i in range(options.units)]
    rows = []
    for algorithm in assignment.HashAlgorithm:
        local = LocalAssigner.from_manifest(manifest(algorithm))
        targets: dict[str, Callable[[str], object]] = {
            "LocalAssigner.assign": local.assign,
            "bare hash (C)": bare_hash(algorithm),
            "contract bucket()": lambda u, a=algorithm: assignment.bucket(u, SALT, a),
            "contract assign()": lambda u, a=algorithm: assignment.assign(u, SALT, WEIGHTS, a),
        }
        sample = units[:2000]
        if [local.assign(u) for u in sample] != [assignment.assign(u, SALT, WEIGHTS, algorithm) for u in sample]:
            raise SystemExit(f"{algorithm}: LocalAssigner disagrees with croupier.api.assignment.assign")
        times: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(options.rounds):
            for name, function in targets.items():
                times[name].append(per_call_us(function, units))
        for name in targets:
            rows.append((algorithm.value, name, statistics.median(times[name]), min(times[name])))
    print(
        f"{options.units} unit ids, {options.rounds} interleaved rounds, median (min) µs per call; goal < {GOAL_US} µs"
    )
    print(f"{'algorithm':<12} {'target':<22} {'µs/call':>8} {'min':>7}")
    for algorithm, name, median, low in rows:
        print(f"{algorithm:<12} {name:<22} {median:>8.2f} {low:>7.2f}")
    worst = max(median for _, name, median, _ in rows if name == "LocalAssigner.assign")
    verdict = "met" if worst < GOAL_US else "MISSED"
    print(f"slowest LocalAssigner.assign: {worst:.2f} µs: goal {verdict}")
    return 0 if worst < GOAL_US else 1


if __name__ == "__main__":
    sys.exit(main())
