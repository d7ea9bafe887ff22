"""In-process decide/update latency of Croupier's policies next to Vowpal Wabbit and MABWiser, in the same run.

K = 10 arms, d = 20 features. Every implementation is first warmed with the same uniformly logged interactions, then
timed on the same context stream: per call, ``decide`` then ``update`` with the chosen arm's reward, each timed on its
own with ``perf_counter_ns``. Implementations run interleaved in rounds so machine-load drift hits all of them alike.

What is timed, per library:

* Croupier: ``policy.decide(x)`` (full floored probability vector + sampled arm) and ``policy.update(arm, r, x)``.
  Rows marked ``update + prepare()`` time ``update`` followed by ``prepare()``, which computes the decision vector on
  the reward path (what a service applying rewards in the background does), so ``decide`` reuses it.
* MABWiser: ``predict`` (or ``predict_expectations``) and ``partial_fit`` with one row.
* Vowpal Wabbit (``--cb_explore_adf -q sa``, ``--epsilon 0.1`` or ``--squarecb``): ``predict`` on a pre-built text
  example plus sampling the arm from the returned pmf, and ``learn`` on a pre-built labelled example. Building the
  example strings is left out of VW's time (it favours VW).

Run ``uv run --group bench python benchmarks/policies_inprocess.py`` (``--quick`` for a short smoke run).

``--served`` times instead the decide call of the two policies ``benchmarks/http_decide.py`` serves (ThompsonSampling
with 4 arms; LinUCB with 4 arms and a d=8 context plus the intercept; floor 0.01), as the decision service makes it:
``engine.vector(values)`` then ``engine.decide(x, None)``, after 3,000 rewards, in CPU time of the calling thread.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
import numpy.typing as npt
import vowpalwabbit
import yaml
from mabwiser.mab import MAB, LearningPolicy

from croupier.runtime.decisions.engine import build_engine
from croupier.runtime.policies import Policy, build_policy
from croupier.runtime.policy_file import parse_policy

K = 10
D = 20
FloatArray = npt.NDArray[np.float64]


@dataclass
class Environment:
    """A linear environment: ``r = θ_aᵀx + noise`` (contextual) and its Bernoulli twin for the non-contextual rows."""

    contexts: FloatArray
    theta: FloatArray
    noise: FloatArray
    uniforms: FloatArray
    warm_arms: npt.NDArray[np.intp]

    @classmethod
    def make(cls, steps: int, warmup: int, seed: int) -> Environment:
        rng = np.random.default_rng(seed)
        contexts = rng.normal(size=(steps + warmup, D)) / np.sqrt(D)
        contexts[:, 0] = 1.0
        theta = rng.normal(scale=0.5, size=(K, D))
        return cls(
            contexts,
            theta,
            rng.normal(scale=0.3, size=steps + warmup),
            rng.random(steps + warmup),
            rng.integers(0, K, size=warmup),
        )

    def linear_reward(self, t: int, arm: int) -> float:
        return float(self.theta[arm] @ self.contexts[t] + self.noise[t])

    def binary_reward(self, t: int, arm: int) -> float:
        p = 0.2 + 0.06 * arm
        return 1.0 if self.uniforms[t] < p else 0.0


@dataclass
class Contender:
    """One implementation under test: closures over its own state.

    ``decide(t) -> arm`` and ``update(t, arm)`` are timed; ``prepare(t, arm)`` runs between them untimed (VW builds
    its labelled example there).
    """

    library: str
    algorithm: str
    group: str
    decide: Callable[[int], int]
    update: Callable[[int, int], None]
    prepare: Callable[[int, int], None] = lambda t, arm: None
    decide_ns: list[int] = field(default_factory=list)
    update_ns: list[int] = field(default_factory=list)


def croupier_contender(
    label: str, algorithm: str, params: dict[str, object], env: Environment, group: str, *, prepare: bool = False
) -> Contender:
    contextual = algorithm in ("LinUCB", "LinearThompson")
    policy: Policy = build_policy(
        algorithm, params, [f"arm{i}" for i in range(K)], dimension=D if contextual else 0, seed=7
    )
    contexts = env.contexts
    reward = env.linear_reward if contextual else env.binary_reward
    for t, arm in enumerate(env.warm_arms.tolist()):
        policy.update(arm, reward(t, arm), contexts[t] if contextual else None)

    if contextual:

        def decide(t: int) -> int:
            return policy.decide(contexts[t]).arm

        def update(t: int, arm: int) -> None:
            policy.update(arm, reward(t, arm), contexts[t])

    else:

        def decide(t: int) -> int:
            return policy.decide().arm

        def update(t: int, arm: int) -> None:
            policy.update(arm, reward(t, arm))
            if prepare:
                policy.prepare()

    return Contender("Croupier", label, group, decide, update)


def mabwiser_contender(
    label: str, learning_policy: object, env: Environment, group: str, *, contextual: bool, expectations: bool = False
) -> Contender:
    mab = MAB(list(range(K)), learning_policy, seed=7)
    reward = env.linear_reward if contextual else env.binary_reward
    decisions = env.warm_arms.tolist()
    rewards = [reward(t, arm) for t, arm in enumerate(decisions)]
    if contextual:
        mab.fit(decisions, rewards, env.contexts[: len(decisions)])
    else:
        mab.fit(decisions, rewards)

    def best(expected: dict[int, float]) -> int:
        return max(expected, key=expected.__getitem__)

    rows = env.contexts[:, None, :]
    if contextual:

        def decide(t: int) -> int:
            if expectations:
                return best(mab.predict_expectations(rows[t]))
            return int(mab.predict(rows[t]))

        def update(t: int, arm: int) -> None:
            mab.partial_fit([arm], [reward(t, arm)], rows[t])

    else:

        def decide(t: int) -> int:
            if expectations:
                return best(mab.predict_expectations())
            return int(mab.predict())

        def update(t: int, arm: int) -> None:
            mab.partial_fit([arm], [reward(t, arm)])

    name = f"{label} {'predict_expectations' if expectations else 'predict'}"
    return Contender("MABWiser", name, group, decide, update)


def vw_contender(label: str, flags: str, env: Environment, group: str) -> Contender:
    vw = vowpalwabbit.Workspace(f"--cb_explore_adf -q sa --quiet {flags}")
    actions = [f"|a a{k}" for k in range(K)]
    shared = ["shared |s " + " ".join(f"f{i}:{v:.6f}" for i, v in enumerate(row)) for row in env.contexts.tolist()]
    examples = [[line, *actions] for line in shared]
    rng = np.random.default_rng(7)
    chosen_probability: dict[int, float] = {}
    labelled: dict[int, list[str]] = {}

    def label_example(t: int, arm: int, probability: float) -> list[str]:
        lines = list(examples[t])
        lines[1 + arm] = f"0:{-env.linear_reward(t, arm):.6f}:{probability:.6f} {actions[arm]}"
        return lines

    for t, arm in enumerate(env.warm_arms.tolist()):
        vw.learn(label_example(t, arm, 1.0 / K))

    def decide(t: int) -> int:
        pmf = vw.predict(examples[t])
        u = rng.random() * sum(pmf)
        acc = 0.0
        chosen = len(pmf) - 1
        for index, p in enumerate(pmf):
            acc += p
            if u < acc:
                chosen = index
                break
        chosen_probability[t] = pmf[chosen]
        return chosen

    def prepare(t: int, arm: int) -> None:
        labelled[t] = label_example(t, arm, chosen_probability.pop(t))

    def update(t: int, arm: int) -> None:
        vw.learn(labelled.pop(t))

    return Contender("Vowpal Wabbit", label, group, decide, update, prepare)


GROUP_EG = "ε-greedy, K=10"
GROUP_UCB = "UCB1, K=10"
GROUP_SOFTMAX = "Softmax, K=10"
GROUP_TS = "Thompson Bernoulli, K=10"
GROUP_TSG = "Thompson Gaussian, K=10"
GROUP_CTX = "contextual, K=10, d=20"


def build(env: Environment, *, expectations: bool) -> list[Contender]:
    contenders = [
        croupier_contender("EpsilonGreedy", "EpsilonGreedy", {"epsilon": 0.1}, env, GROUP_EG),
        mabwiser_contender("EpsilonGreedy", LearningPolicy.EpsilonGreedy(epsilon=0.1), env, GROUP_EG, contextual=False),
        croupier_contender("UCB1", "UCB1", {"c": 2.0}, env, GROUP_UCB),
        croupier_contender("UCB1, update + prepare()", "UCB1", {"c": 2.0}, env, GROUP_UCB, prepare=True),
        mabwiser_contender("UCB1", LearningPolicy.UCB1(alpha=1.0), env, GROUP_UCB, contextual=False),
        croupier_contender("Softmax", "Softmax", {"temperature": 0.1}, env, GROUP_SOFTMAX),
        mabwiser_contender("Softmax", LearningPolicy.Softmax(tau=0.1), env, GROUP_SOFTMAX, contextual=False),
        croupier_contender("ThompsonSampling", "ThompsonSampling", {"likelihood": "Bernoulli"}, env, GROUP_TS),
        croupier_contender(
            "ThompsonSampling, update + prepare()",
            "ThompsonSampling",
            {"likelihood": "Bernoulli"},
            env,
            GROUP_TS,
            prepare=True,
        ),
        mabwiser_contender("ThompsonSampling", LearningPolicy.ThompsonSampling(), env, GROUP_TS, contextual=False),
        croupier_contender("ThompsonSampling", "ThompsonSampling", {"likelihood": "Gaussian"}, env, GROUP_TSG),
        croupier_contender(
            "ThompsonSampling, update + prepare()",
            "ThompsonSampling",
            {"likelihood": "Gaussian"},
            env,
            GROUP_TSG,
            prepare=True,
        ),
        croupier_contender("LinUCB", "LinUCB", {"alpha": 1.0, "regularization": 1.0}, env, GROUP_CTX),
        croupier_contender("LinearThompson", "LinearThompson", {"v": 0.25, "regularization": 1.0}, env, GROUP_CTX),
        mabwiser_contender("LinUCB", LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0), env, GROUP_CTX, contextual=True),
        mabwiser_contender("LinTS", LearningPolicy.LinTS(alpha=0.25, l2_lambda=1.0), env, GROUP_CTX, contextual=True),
        vw_contender("cb_explore_adf --epsilon 0.1", "--epsilon 0.1", env, GROUP_CTX),
        vw_contender("cb_explore_adf --squarecb", "--squarecb", env, GROUP_CTX),
    ]
    if expectations:
        contenders += [
            mabwiser_contender(
                "EpsilonGreedy",
                LearningPolicy.EpsilonGreedy(epsilon=0.1),
                env,
                GROUP_EG,
                contextual=False,
                expectations=True,
            ),
            mabwiser_contender(
                "ThompsonSampling",
                LearningPolicy.ThompsonSampling(),
                env,
                GROUP_TS,
                contextual=False,
                expectations=True,
            ),
            mabwiser_contender(
                "LinUCB",
                LearningPolicy.LinUCB(alpha=1.0, l2_lambda=1.0),
                env,
                GROUP_CTX,
                contextual=True,
                expectations=True,
            ),
            mabwiser_contender(
                "LinTS",
                LearningPolicy.LinTS(alpha=0.25, l2_lambda=1.0),
                env,
                GROUP_CTX,
                contextual=True,
                expectations=True,
            ),
        ]
    return contenders


def run(contenders: list[Contender], steps: int, warmup: int, rounds: int) -> None:
    per_round = steps // rounds
    clock = time.perf_counter_ns
    for r in range(rounds):
        for contender in contenders:
            decide, prepare, update = contender.decide, contender.prepare, contender.update
            decide_ns, update_ns = contender.decide_ns, contender.update_ns
            gc.collect()
            for t in range(warmup + r * per_round, warmup + (r + 1) * per_round):
                t0 = clock()
                arm = decide(t)
                t1 = clock()
                prepare(t, arm)
                t2 = clock()
                update(t, arm)
                t3 = clock()
                decide_ns.append(t1 - t0)
                update_ns.append(t3 - t2)


def quantile(values: list[int], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000.0


def table(contenders: list[Contender]) -> str:
    lines = [
        "| group | library | algorithm | decide µs median | decide µs p99 | update µs median | update µs p99 |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for contender in contenders:
        lines.append(
            f"| {contender.group} | {contender.library} | {contender.algorithm} "
            f"| {statistics.median(contender.decide_ns) / 1000:.1f} | {quantile(contender.decide_ns, 0.99):.1f} "
            f"| {statistics.median(contender.update_ns) / 1000:.1f} | {quantile(contender.update_ns, 0.99):.1f} |"
        )
    return "\n".join(lines)


def verdict(contenders: list[Contender]) -> str:
    """Per Croupier row: ratio of the fastest reference median in its group to ours (> 1 means we are faster)."""
    lines = [
        "| group | Croupier algorithm | fastest reference decide / ours | fastest reference update / ours |",
        "|---|---|---:|---:|",
    ]
    for ours in (c for c in contenders if c.library == "Croupier"):
        references = [c for c in contenders if c.group == ours.group and c.library != "Croupier"]
        if not references:
            continue
        best_decide = min(statistics.median(c.decide_ns) for c in references)
        best_update = min(statistics.median(c.update_ns) for c in references)
        lines.append(
            f"| {ours.group} | {ours.algorithm} | {best_decide / statistics.median(ours.decide_ns):.1f}x "
            f"| {best_update / statistics.median(ours.update_ns):.1f}x |"
        )
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    blas = {key: os.environ[key] for key in sorted(os.environ) if key.startswith(("OPENBLAS", "OMP_", "MKL_"))}
    load = os.getloadavg()
    return (
        f"nproc={os.cpu_count()}, CPU={cpu}, Python {platform.python_version()}, numpy {np.__version__}, "
        f"mabwiser {version('mabwiser')}, vowpalwabbit {version('vowpalwabbit')}, "
        f"BLAS env={blas or 'none set'}, load average {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}"
    )


def served(blocks: int = 9, calls: int = 20_000) -> None:
    """Per decide call of the HTTP benchmark's policies (see the module docstring): best and median of the blocks."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from http_decide import CONTEXT_BODY, LINUCB, THOMPSON  # noqa: PLC0415

    values: list[float] = json.loads(CONTEXT_BODY)["context"]
    print(f"machine: {machine()}")
    for label, document, context in (("ThompsonSampling, 4 arms", THOMPSON, None), ("LinUCB, d=8", LINUCB, values)):
        engine = build_engine(parse_policy(yaml.safe_load(document)), seed=1)
        rng = random.Random(3)
        for i in range(3000):
            arm = i % 4
            if context is None:
                engine.learn(arm, float(rng.random() < 0.2 + 0.1 * arm), None)
            else:
                row = np.array([rng.random() * 3 for _ in values])
                engine.learn(arm, float(row.sum() * (arm + 1) / 10 + rng.gauss(0, 0.3)), row)
        engine.prepare()
        vector, decide = engine.vector, engine.decide
        clock = time.thread_time_ns
        per_call = []
        for _ in range(blocks):
            gc.collect()
            started = clock()
            if context is None:
                for _ in range(calls):
                    decide(None, None)
            else:
                for _ in range(calls):
                    decide(vector(context), None)
            per_call.append((clock() - started) / calls / 1000)
        print(f"{label}: best {min(per_call):.2f} us, median {statistics.median(per_call):.2f} us per decide call")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short smoke run (300 timed calls per implementation)")
    parser.add_argument("--steps", type=int, default=4000, help="timed decide+update calls per implementation")
    parser.add_argument("--warmup", type=int, default=1000, help="uniformly logged interactions learned first")
    parser.add_argument("--rounds", type=int, default=8, help="interleaving rounds")
    parser.add_argument("--expectations", action="store_true", help="also time MABWiser predict_expectations")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--served", action="store_true", help="time the decide call of http_decide.py's policies")
    args = parser.parse_args(argv)
    if args.served:
        served()
        return 0
    steps, rounds = (300, 3) if args.quick else (args.steps, args.rounds)
    env = Environment.make(steps, args.warmup, args.seed)
    contenders = build(env, expectations=args.expectations)
    print(f"machine: {machine()}", file=sys.stderr)
    run(contenders, steps, args.warmup, rounds)
    print(
        f"K={K}, d={D}, warmup={args.warmup}, timed calls per implementation={steps // rounds * rounds}, "
        f"rounds={rounds}"
    )
    print(f"machine: {machine()}")
    print()
    print(table(contenders))
    print()
    print(verdict(contenders))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
