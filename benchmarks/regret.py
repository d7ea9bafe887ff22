"""Cumulative regret of Croupier's policies next to MABWiser and Vowpal Wabbit, on the same draws.

Two seeded environments, each run for every seed with every implementation on identical randomness (the same
contexts and the same reward draw for a given step and arm), so differences come from the policies alone:

* ``bernoulli``: K = 10 arms with success rates drawn uniformly from [0.1, 0.6]; pseudo-regret
  ``Σ_t (p* - p_{a_t})``.
* ``linear``: K = 10 arms, d = 20 features (an intercept plus 19 standard-normal features scaled by 1/sqrt(19)),
  coefficients ``θ_a ~ N(0, 0.5²·I)``, reward ``θ_aᵀx + N(0, 0.5²)``; regret ``Σ_t (max_a θ_aᵀx_t - θ_{a_t}ᵀx_t)``.

Every implementation first plays each arm once (round robin, same rewards for all), then decides on its own and
learns online after every step (MABWiser ``partial_fit`` with one row, VW ``learn`` on the labelled ADF example with
the probability VW gave the chosen action). Croupier rows use the library defaults of ``build_policy`` unless
labelled otherwise: ``(default)`` rows use the DecisionPolicy API defaults, the others the values a sweep on separate
tuning seeds preferred (``--sweep``). MABWiser rows are shown with their own defaults and with the same values where
the algorithm is the same, so a tuned parameter is never the only difference.

Run ``uv run --group bench python benchmarks/regret.py`` (``--quick`` for a short smoke run, ``--sweep`` for the
parameter sweep on the tuning seeds (97-99, never reported) that chose Croupier's defaults, ``--floor 0.01`` for
Croupier alone at ``exploration.minProbability = 0.01`` under the floor rule in force, ``max(f, c·p)``, next to the
rule it replaced, a mix with uniform).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import vowpalwabbit
from mabwiser.mab import MAB, LearningPolicy

from croupier.runtime.policies import DEFAULT_PARAMS, build_policy

K = 10
D = 20
TUNING_SEEDS = (97, 98, 99)
FloatArray = npt.NDArray[np.float64]


@dataclass
class Environment:
    """Pre-drawn randomness of one run: contexts (linear only), expected rewards and observed rewards."""

    kind: str
    contexts: FloatArray | None  # (T, D)
    expected: FloatArray  # (T, K): expected reward of every arm at every step
    observed: FloatArray  # (T, K): the reward an implementation sees if it plays that arm at that step

    @classmethod
    def bernoulli(cls, steps: int, seed: int) -> Environment:
        rng = np.random.default_rng(seed)
        rates = rng.uniform(0.1, 0.6, size=K)
        expected = np.broadcast_to(rates, (steps, K)).copy()
        observed = (rng.random((steps, K)) < rates).astype(np.float64)
        return cls("bernoulli", None, expected, observed)

    @classmethod
    def linear(cls, steps: int, seed: int) -> Environment:
        rng = np.random.default_rng(seed)
        theta = rng.normal(scale=0.5, size=(K, D))
        contexts = np.empty((steps, D))
        contexts[:, 0] = 1.0
        contexts[:, 1:] = rng.normal(size=(steps, D - 1)) / np.sqrt(D - 1)
        expected = contexts @ theta.T
        observed = expected + rng.normal(scale=0.5, size=(steps, K))
        return cls("linear", contexts, expected, observed)

    @property
    def steps(self) -> int:
        return int(self.expected.shape[0])


@dataclass
class Learner:
    """``decide(t) -> arm`` and ``learn(t, arm, reward)`` over one implementation's state."""

    decide: Callable[[int], int]
    learn: Callable[[int, int, float], None]


Factory = Callable[[Environment, int], Learner]


def croupier(algorithm: str, params: dict[str, Any] | None = None, floor: float = 0.0) -> Factory:
    def factory(env: Environment, seed: int) -> Learner:
        contextual = env.contexts is not None
        policy = build_policy(
            algorithm,
            params or {},
            [f"arm{i}" for i in range(K)],
            dimension=D if contextual else 0,
            min_probability=floor,
            seed=seed + 1,
        )
        contexts = env.contexts
        if contexts is None:
            return Learner(lambda t: policy.decide().arm, lambda t, arm, r: policy.update(arm, r))
        return Learner(lambda t: policy.decide(contexts[t]).arm, lambda t, arm, r: policy.update(arm, r, contexts[t]))

    return factory


def mixed_floor(algorithm: str, params: dict[str, Any] | None, floor: float) -> Factory:
    """Croupier's policy under the floor rule it replaced, ``p' = f + (1 - K·f)·p`` (a mix with uniform even when every
    arm is already above ``f``): the unfloored vector is mixed and sampled here."""

    def factory(env: Environment, seed: int) -> Learner:
        contexts = env.contexts
        policy = build_policy(
            algorithm,
            params or {},
            [f"arm{i}" for i in range(K)],
            dimension=0 if contexts is None else D,
            seed=seed + 1,
        )
        rng = np.random.default_rng(seed + 3)
        scale = 1.0 - K * floor

        def decide(t: int) -> int:
            p = floor + scale * policy.probabilities(None if contexts is None else contexts[t])
            return min(int(np.searchsorted(np.cumsum(p), rng.random(), side="right")), K - 1)

        def learn(t: int, arm: int, reward: float) -> None:
            policy.update(arm, reward, None if contexts is None else contexts[t])

        return Learner(decide, learn)

    return factory


def mabwiser(learning_policy: Any) -> Factory:
    def factory(env: Environment, seed: int) -> Learner:
        mab = MAB(list(range(K)), learning_policy, seed=seed + 2)
        contexts = env.contexts
        # MABWiser needs a fit before it predicts: the round robin over the first K steps.
        decisions = list(range(K))
        rewards = [float(env.observed[t, t]) for t in range(K)]
        rows = None if contexts is None else contexts[:, None, :]
        if rows is None:
            mab.fit(decisions, rewards)
        else:
            mab.fit(decisions, rewards, rows[:K, 0, :])

        def decide(t: int) -> int:
            return int(mab.predict() if rows is None else mab.predict(rows[t]))

        def learn(t: int, arm: int, reward: float) -> None:
            if t < K:  # learned by the fit above
                return
            if rows is None:
                mab.partial_fit([arm], [reward])
            else:
                mab.partial_fit([arm], [reward], rows[t])

        return Learner(decide, learn)

    return factory


def vowpal(flags: str) -> Factory:
    def factory(env: Environment, seed: int) -> Learner:
        contexts = env.contexts
        interactions = "" if contexts is None else "-q sa"
        vw = vowpalwabbit.Workspace(f"--cb_explore_adf {interactions} --quiet --random_seed {seed} {flags}")
        actions = [f"|a a{k}" for k in range(K)]
        rng = np.random.default_rng(seed + 3)
        chosen: dict[int, float] = {}

        def example(t: int) -> list[str]:
            if contexts is None:
                return list(actions)
            shared = "shared |s " + " ".join(f"f{i}:{v:.6f}" for i, v in enumerate(contexts[t].tolist()))
            return [shared, *actions]

        def decide(t: int) -> int:
            pmf = vw.predict(example(t))
            u = rng.random() * sum(pmf)
            acc = 0.0
            arm = len(pmf) - 1
            for index, p in enumerate(pmf):
                acc += p
                if u < acc:
                    arm = index
                    break
            chosen[t] = pmf[arm]
            return arm

        def learn(t: int, arm: int, reward: float) -> None:
            lines = example(t)
            offset = 0 if contexts is None else 1
            probability = chosen.pop(t, 1.0 / K)
            lines[offset + arm] = f"0:{-reward:.6f}:{probability:.6f} {actions[arm]}"
            vw.learn(lines)

        return Learner(decide, learn)

    return factory


@dataclass
class Contender:
    library: str
    label: str
    factory: Factory


# The lowest mean regret over the tuning seeds in the --sweep grid (see docs/benchmarks/policies.md).
TUNED: dict[str, dict[str, Any]] = {
    "EpsilonGreedy": {"epsilon": 0.02},
    "UCB1": {"c": 0.05},
    "Softmax": {"temperature": 0.05},
    "LinUCB": {"alpha": 0.5, "regularization": 1.0},
    "LinearThompson": {"v": 0.25, "regularization": 1.0},
}


def contenders(kind: str) -> list[Contender]:
    eps, ucb, softmax = DEFAULT_PARAMS["EpsilonGreedy"], DEFAULT_PARAMS["UCB1"], DEFAULT_PARAMS["Softmax"]
    linucb, lints = DEFAULT_PARAMS["LinUCB"], DEFAULT_PARAMS["LinearThompson"]
    # MABWiser's UCB1 bonus is alpha·sqrt(2·ln N / n); Croupier's (the API's) is sqrt(c·ln N / n): alpha = sqrt(c / 2).
    same_alpha = math.sqrt(TUNED["UCB1"]["c"] / 2.0)
    if kind == "bernoulli":
        return [
            Contender("Croupier", f"EpsilonGreedy epsilon={eps['epsilon']} (default)", croupier("EpsilonGreedy")),
            Contender(
                "Croupier",
                f"EpsilonGreedy epsilon={TUNED['EpsilonGreedy']['epsilon']}",
                croupier("EpsilonGreedy", TUNED["EpsilonGreedy"]),
            ),
            Contender("Croupier", f"UCB1 c={ucb['c']} (default)", croupier("UCB1")),
            Contender("Croupier", f"UCB1 c={TUNED['UCB1']['c']}", croupier("UCB1", TUNED["UCB1"])),
            Contender("Croupier", "ThompsonSampling Bernoulli", croupier("ThompsonSampling")),
            Contender(
                "Croupier", "ThompsonSampling Gaussian", croupier("ThompsonSampling", {"likelihood": "Gaussian"})
            ),
            Contender("Croupier", f"Softmax tau={softmax['temperature']} (default)", croupier("Softmax")),
            Contender(
                "Croupier", f"Softmax tau={TUNED['Softmax']['temperature']}", croupier("Softmax", TUNED["Softmax"])
            ),
            Contender("MABWiser", "EpsilonGreedy epsilon=0.1 (default)", mabwiser(LearningPolicy.EpsilonGreedy())),
            Contender(
                "MABWiser",
                f"EpsilonGreedy epsilon={TUNED['EpsilonGreedy']['epsilon']}",
                mabwiser(LearningPolicy.EpsilonGreedy(epsilon=TUNED["EpsilonGreedy"]["epsilon"])),
            ),
            Contender("MABWiser", "UCB1 alpha=1 (default, = c 2)", mabwiser(LearningPolicy.UCB1())),
            Contender(
                "MABWiser",
                f"UCB1 alpha={same_alpha:.3f} (= c {TUNED['UCB1']['c']})",
                mabwiser(LearningPolicy.UCB1(alpha=same_alpha)),
            ),
            Contender("MABWiser", "ThompsonSampling", mabwiser(LearningPolicy.ThompsonSampling())),
            Contender("MABWiser", "Softmax tau=1 (default)", mabwiser(LearningPolicy.Softmax())),
            Contender(
                "MABWiser",
                f"Softmax tau={TUNED['Softmax']['temperature']}",
                mabwiser(LearningPolicy.Softmax(tau=TUNED["Softmax"]["temperature"])),
            ),
            Contender("Vowpal Wabbit", "cb_explore_adf --epsilon 0.1", vowpal("--epsilon 0.1")),
            Contender("Vowpal Wabbit", "cb_explore_adf --squarecb", vowpal("--squarecb")),
        ]
    return [
        Contender("Croupier", f"LinUCB alpha={linucb['alpha']} (default)", croupier("LinUCB")),
        Contender("Croupier", f"LinUCB alpha={TUNED['LinUCB']['alpha']}", croupier("LinUCB", TUNED["LinUCB"])),
        Contender("Croupier", f"LinearThompson v={lints['v']} (default)", croupier("LinearThompson")),
        Contender("MABWiser", "LinUCB alpha=1 (default)", mabwiser(LearningPolicy.LinUCB())),
        Contender(
            "MABWiser",
            f"LinUCB alpha={TUNED['LinUCB']['alpha']}",
            mabwiser(LearningPolicy.LinUCB(alpha=TUNED["LinUCB"]["alpha"])),
        ),
        Contender("MABWiser", "LinTS alpha=1 (default)", mabwiser(LearningPolicy.LinTS())),
        Contender("MABWiser", f"LinTS alpha={lints['v']} (= v)", mabwiser(LearningPolicy.LinTS(alpha=lints["v"]))),
        Contender("Vowpal Wabbit", "cb_explore_adf -q sa --epsilon 0.1", vowpal("--epsilon 0.1")),
        Contender("Vowpal Wabbit", "cb_explore_adf -q sa --squarecb", vowpal("--squarecb")),
    ]


def floored_contenders(kind: str, floor: float) -> list[Contender]:
    """Croupier's rows at ``minProbability = floor``: the floor rule in force next to the rule it replaced."""
    eps, ucb, softmax = DEFAULT_PARAMS["EpsilonGreedy"], DEFAULT_PARAMS["UCB1"], DEFAULT_PARAMS["Softmax"]
    linucb, lints = DEFAULT_PARAMS["LinUCB"], DEFAULT_PARAMS["LinearThompson"]
    policies: list[tuple[str, str, dict[str, Any]]] = (
        [
            ("EpsilonGreedy", f"epsilon={eps['epsilon']} (default)", {}),
            ("EpsilonGreedy", f"epsilon={TUNED['EpsilonGreedy']['epsilon']}", TUNED["EpsilonGreedy"]),
            ("UCB1", f"c={ucb['c']} (default)", {}),
            ("UCB1", f"c={TUNED['UCB1']['c']}", TUNED["UCB1"]),
            ("ThompsonSampling", "Bernoulli", {}),
            ("Softmax", f"tau={softmax['temperature']} (default)", {}),
        ]
        if kind == "bernoulli"
        else [
            ("LinUCB", f"alpha={linucb['alpha']} (default)", {}),
            ("LinUCB", f"alpha={TUNED['LinUCB']['alpha']}", TUNED["LinUCB"]),
            ("LinearThompson", f"v={lints['v']} (default)", {}),
        ]
    )
    rows = []
    for algorithm, label, params in policies:
        rows.append(Contender("Croupier", f"{algorithm} {label}, floor {floor}", croupier(algorithm, params, floor)))
        rows.append(
            Contender(
                "Croupier, previous floor (mix)",
                f"{algorithm} {label}, floor {floor}",
                mixed_floor(algorithm, params, floor),
            )
        )
    return rows


def regret(learner: Learner, env: Environment) -> FloatArray:
    """Cumulative regret after every step."""
    best = env.expected.max(axis=1)
    losses = np.empty(env.steps)
    for t in range(env.steps):
        arm = t if t < K else learner.decide(t)
        learner.learn(t, arm, float(env.observed[t, arm]))
        losses[t] = best[t] - env.expected[t, arm]
    return np.cumsum(losses)


def environment(kind: str, steps: int, seed: int) -> Environment:
    return Environment.bernoulli(steps, seed) if kind == "bernoulli" else Environment.linear(steps, seed)


def report(kind: str, steps: int, seeds: list[int], rows: list[Contender]) -> str:
    checkpoints = sorted({min(steps, c) for c in (1000, 5000, steps)})
    results: dict[str, list[FloatArray]] = {}
    seconds: dict[str, float] = {}
    for seed in seeds:
        env = environment(kind, steps, seed)
        for row in rows:
            started = time.perf_counter()
            curve = regret(row.factory(env, seed), env)
            seconds[row.label + row.library] = seconds.get(row.label + row.library, 0.0) + time.perf_counter() - started
            results.setdefault(row.label + row.library, []).append(curve)
            print(f"  {kind} seed {seed} {row.library} {row.label}: {curve[-1]:.1f}", file=sys.stderr)
    head = " | ".join(f"seed {s}" for s in seeds)
    lines = [
        f"| library | algorithm | {head} | mean | "
        + " | ".join(f"mean @ {c}" for c in checkpoints[:-1])
        + " | s/run |",
        "|---|---|" + "---:|" * (len(seeds) + len(checkpoints) + 1),
    ]
    for row in rows:
        curves = results[row.label + row.library]
        finals = [float(c[-1]) for c in curves]
        partial = [statistics.fmean(float(c[cp - 1]) for c in curves) for cp in checkpoints[:-1]]
        lines.append(
            f"| {row.library} | {row.label} | "
            + " | ".join(f"{v:.1f}" for v in finals)
            + f" | **{statistics.fmean(finals):.1f}** | "
            + " | ".join(f"{v:.1f}" for v in partial)
            + f" | {seconds[row.label + row.library] / len(seeds):.1f} |"
        )
    best_ours = min(
        (statistics.fmean(float(c[-1]) for c in results[r.label + r.library]), r.label)
        for r in rows
        if r.library == "Croupier"
    )
    best_theirs = min(
        (statistics.fmean(float(c[-1]) for c in results[r.label + r.library]), f"{r.library} {r.label}")
        for r in rows
        if r.library != "Croupier"
    )
    lines.append("")
    lines.append(
        f"Best Croupier: {best_ours[1]} ({best_ours[0]:.1f}); best reference: {best_theirs[1]} ({best_theirs[0]:.1f}); "
        f"ratio {best_ours[0] / best_theirs[0]:.2f}."
    )
    return "\n".join(lines)


SWEEP: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "bernoulli": [
        *[("EpsilonGreedy", {"epsilon": e}) for e in (0.02, 0.05, 0.1)],
        *[("UCB1", {"c": c}) for c in (0.02, 0.05, 0.125, 0.25, 0.5, 2.0)],
        *[("Softmax", {"temperature": tau}) for tau in (0.01, 0.02, 0.05, 0.1)],
    ],
    "linear": [
        *[("LinUCB", {"alpha": a}) for a in (0.1, 0.25, 0.5, 1.0)],
        *[("LinearThompson", {"v": v}) for v in (0.1, 0.25, 0.5, 1.0)],
    ],
}


def sweep(steps: int) -> str:
    head = " | ".join(f"seed {s}" for s in TUNING_SEEDS)
    lines = [f"| environment | algorithm | parameters | {head} | mean |", "|---|---|---|" + "---:|" * 4]
    for kind, grid in SWEEP.items():
        envs = [environment(kind, steps, seed) for seed in TUNING_SEEDS]
        for algorithm, params in grid:
            finals = [
                float(regret(croupier(algorithm, params)(env, seed), env)[-1])
                for env, seed in zip(envs, TUNING_SEEDS, strict=True)
            ]
            cells = " | ".join(f"{v:.1f}" for v in finals)
            lines.append(f"| {kind} | {algorithm} | {params} | {cells} | {statistics.fmean(finals):.1f} |")
            print(f"  sweep {kind} {algorithm} {params}: {finals}", file=sys.stderr)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 000 steps, one seed")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--env", choices=["bernoulli", "linear", "both"], default="both")
    parser.add_argument(
        "--sweep", action="store_true", help=f"parameter sweep of Croupier on the tuning seeds {TUNING_SEEDS}"
    )
    parser.add_argument(
        "--floor",
        type=float,
        default=None,
        help="only Croupier at exploration.minProbability FLOOR, under the floor rule in force and the one it replaced",
    )
    args = parser.parse_args(argv)
    steps, seeds = (2000, [1]) if args.quick else (args.steps, args.seeds)
    if args.sweep:
        print(f"steps={steps}, tuning seeds={list(TUNING_SEEDS)}, K={K}, d={D}, nproc={os.cpu_count()}")
        print()
        print(sweep(steps))
        return 0
    print(f"steps={steps}, seeds={seeds}, K={K}, d={D}, nproc={os.cpu_count()}")
    kinds = ["bernoulli", "linear"] if args.env == "both" else [args.env]
    for kind in kinds:
        print()
        print(f"### {kind}")
        print()
        rows = contenders(kind) if args.floor is None else floored_contenders(kind, args.floor)
        print(report(kind, steps, seeds, rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
