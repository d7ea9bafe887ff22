"""Policy core: decisions and their probability vectors, learning, priors, subsets, errors, the factory."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.runtime.policies import (
    ALGORITHMS,
    UCB1,
    ArmPrior,
    EpsilonGreedy,
    LinearThompson,
    LinUCB,
    Policy,
    PolicyConfigError,
    PolicyError,
    PolicyInputError,
    Softmax,
    ThompsonSampling,
    build_policy,
)

pytestmark = pytest.mark.unit

ARMS = ["a", "b", "c", "d", "e"]
K = len(ARMS)
D = 4
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("EpsilonGreedy", {"epsilon": 0.2}),
    ("UCB1", {"c": 0.5}),
    ("ThompsonSampling", {"likelihood": "Bernoulli"}),
    ("ThompsonSampling", {"likelihood": "Gaussian"}),
    ("Softmax", {"temperature": 0.1}),
    ("LinUCB", {"alpha": 0.5, "regularization": 1.0}),
    ("LinearThompson", {"v": 0.3, "regularization": 1.0}),
]
# Upper 0.1 % points of the chi-square distribution by degrees of freedom.
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47}


def make(algorithm: str, params: dict[str, Any] | None = None, **kwargs: Any) -> Policy:
    dimension = D if algorithm in ("LinUCB", "LinearThompson") else 0
    return build_policy(algorithm, params or {}, ARMS, dimension=dimension, **kwargs)


def context(policy: Policy, rng: np.random.Generator) -> np.ndarray | None:
    return rng.normal(size=policy.dimension) if policy.contextual else None


def train(policy: Policy, rng: np.random.Generator, steps: int) -> None:
    for _ in range(steps):
        x = context(policy, rng)
        arm = policy.decide(x).arm
        policy.update(arm, float(rng.random() < 0.2 + 0.15 * arm), x)


# ---------------------------------------------------------------------------------------------- probability vectors
@given(
    variant=st.sampled_from(VARIANTS),
    floor=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**16),
    steps=st.integers(0, 40),
    mask=st.lists(st.booleans(), min_size=K, max_size=K).filter(any),
)
@settings(max_examples=60, deadline=None)
def test_probabilities_sum_to_one_honour_the_floor_and_the_subset(
    variant: tuple[str, dict[str, Any]], floor: float, seed: int, steps: int, mask: list[bool]
) -> None:
    policy = make(*variant, min_probability=floor, seed=seed)
    rng = np.random.default_rng(seed)
    train(policy, rng, steps)
    eligible = np.array(mask)
    decision = policy.decide(context(policy, rng), eligible=eligible)
    p = np.array(decision.probabilities)
    assert p.shape == (K,)
    assert p.sum() == pytest.approx(1.0, abs=1e-9)
    assert np.all(p[~eligible] == 0.0)
    assert np.all(p[eligible] >= floor - 1e-12)
    assert eligible[decision.arm]
    assert decision.probability == p[decision.arm] > 0.0


def test_epsilon_greedy_exact_vector_with_ties_and_floor() -> None:
    policy = EpsilonGreedy(["w", "x", "y", "z"], epsilon=0.2)
    for arm, reward in [(0, 0.2), (1, 0.8), (2, 0.8), (3, 0.1)]:
        policy.update(arm, reward)
    # ε/4 = 0.05 each; arms 1 and 2 tie for best and split 0.8.
    assert policy.probabilities() == pytest.approx([0.05, 0.45, 0.45, 0.05])
    floored = EpsilonGreedy(["w", "x", "y", "z"], epsilon=0.2, min_probability=0.1)
    floored.replace(policy.stats())
    # The two arms at 0.05 are raised to the floor 0.1; the 0.1 they need comes from the two at 0.45 in proportion.
    assert floored.probabilities() == pytest.approx([0.1, 0.4, 0.4, 0.1])
    # Over the subset {0, 3}: arm 0 is best there.
    assert policy.probabilities(eligible=[0, 3]) == pytest.approx([0.9, 0.0, 0.0, 0.1])


def test_untried_arms_are_tried_first() -> None:
    policy = EpsilonGreedy(["w", "x", "y"], epsilon=0.3)
    policy.update(0, 1.0)
    assert policy.probabilities() == pytest.approx([0.1, 0.45, 0.45])
    ucb = UCB1(["w", "x", "y"], c=1.0)
    ucb.update(1, 0.0)
    assert ucb.probabilities() == pytest.approx([0.5, 0.0, 0.5])
    softmax = Softmax(["w", "x", "y"], temperature=1.0)
    assert softmax.probabilities() == pytest.approx([1 / 3] * 3)


@pytest.mark.parametrize("c", [0.3, 2.0])
def test_ucb1_exact_vector(c: float) -> None:
    policy = UCB1(["w", "x", "y"], c=c)
    history = {0: [1.0, 0.0, 1.0, 1.0], 1: [0.0, 1.0], 2: [0.0, 1.0, 0.0, 0.0, 1.0, 0.0]}
    for arm, rewards in history.items():
        for reward in rewards:
            policy.update(arm, reward)
    # Hand-computed: mean + sqrt(c·ln N / n) with N = 12 pulls.
    scores = [
        sum(rewards) / len(rewards) + math.sqrt(c * math.log(12.0) / len(rewards)) for rewards in history.values()
    ]
    expected = [0.0, 0.0, 0.0]
    expected[int(np.argmax(scores))] = 1.0
    assert policy.probabilities() == pytest.approx(expected)
    assert policy.describe()[1].posterior["bonus"] == pytest.approx(math.sqrt(c * math.log(12.0) / 2.0))
    # The two values of c pick different arms: 0.75 + 0.43 beats 0.5 + 0.61 (c = 0.3); 0.5 + 1.58 beats 0.75 + 1.11.
    assert expected == ([1.0, 0.0, 0.0] if c == 0.3 else [0.0, 1.0, 0.0])
    # Identical statistics tie: the mass splits; c = 0 is greedy on the means.
    twin = UCB1(["w", "x"], c=1.0)
    twin.update(0, 0.5)
    twin.update(1, 0.5)
    assert twin.probabilities() == pytest.approx([0.5, 0.5])
    greedy = UCB1(["w", "x", "y"], c=0.0)
    greedy.replace(policy.stats())
    assert greedy.probabilities() == pytest.approx([1.0, 0.0, 0.0])


def test_softmax_exact_vector() -> None:
    policy = Softmax(["w", "x", "y"], temperature=0.5, min_probability=0.05)
    for arm, reward in [(0, 0.0), (1, 0.5), (2, 1.0), (2, 0.0)]:
        policy.update(arm, reward)
    weights = np.exp(np.array([0.0, 0.5, 0.5]) / 0.5)
    expected = weights / weights.sum()
    assert expected.min() > 0.05  # already above the floor: the floor changes nothing
    assert policy.probabilities() == pytest.approx(expected.tolist())


def test_linucb_exact_vector_is_the_argmax() -> None:
    policy = LinUCB(["w", "x"], dimension=2, alpha=0.0)
    policy.update(0, 1.0, [1.0, 0.0])
    policy.update(1, 1.0, [0.0, 1.0])
    # θ_0 = [0.5, 0], θ_1 = [0, 0.5]: with alpha = 0 the context decides, and a symmetric context ties.
    assert policy.probabilities([2.0, 1.0]) == pytest.approx([1.0, 0.0])
    assert policy.probabilities([1.0, 2.0]) == pytest.approx([0.0, 1.0])
    assert policy.probabilities([1.0, 1.0]) == pytest.approx([0.5, 0.5])


@given(
    floor=st.floats(0.0, 0.2),
    seed=st.integers(0, 2**16),
    steps=st.integers(0, 30),
    prior=st.booleans(),
    tie=st.sampled_from([None, (0, 1), (1, 3, 4), tuple(range(K))]),
)
@settings(max_examples=60, deadline=None)
def test_linucb_fast_path_equals_the_generic_vector(
    floor: float, seed: int, steps: int, prior: bool, tie: tuple[int, ...] | None
) -> None:
    # Over all arms LinUCB returns precomputed one-hot / tied vectors; they must be what the generic floor computes.
    priors = [(0.1 * i, 2.0) for i in range(K)] if prior else None
    policy = LinUCB(ARMS, dimension=D, alpha=0.7, priors=priors, min_probability=floor / K, rng=seed)
    rng = np.random.default_rng(seed)
    train(policy, rng, steps)
    x = rng.normal(size=D)
    if tie is not None:  # force the tie through the scores the fast path sees
        scores = policy._scores(x)
        best = max(scores) + 1.0
        policy._scores = lambda _x: [best if i in tie else s - 1.0 for i, s in enumerate(scores)]  # type: ignore[method-assign]
    fast = policy.decide(x)
    _, indices, generic = Policy._floored(policy, x, list(range(K)))
    assert fast.probabilities == pytest.approx(generic, abs=1e-15)
    assert indices == list(range(K))
    assert fast.probability == fast.probabilities[fast.arm]


@pytest.mark.parametrize(
    "variant",
    [VARIANTS[0], VARIANTS[2], VARIANTS[4], VARIANTS[6]],
    ids=["EpsilonGreedy", "ThompsonBernoulli", "Softmax", "LinearThompson"],
)
def test_sampled_arms_follow_the_returned_vector(variant: tuple[str, dict[str, Any]]) -> None:
    """Chi-square goodness of fit of 12 000 seeded decisions against the vector each decision returned."""
    policy = make(*variant, min_probability=0.02, seed=17)
    rng = np.random.default_rng(3)
    train(policy, rng, 60)
    x = context(policy, rng)
    eligible = [0, 2, 3, 4]
    expected = np.array(policy.probabilities(x, eligible=eligible))
    counts = np.zeros(K)
    draws = 12_000
    vectors = set()
    for _ in range(draws):
        decision = policy.decide(x, eligible=eligible)
        vectors.add(decision.probabilities)
        counts[decision.arm] += 1
    assert len(vectors) == 1
    assert np.array(vectors.pop()) == pytest.approx(expected)
    assert counts[1] == 0
    observed, wanted = counts[eligible], expected[eligible] * draws
    chi2 = float(((observed - wanted) ** 2 / wanted).sum())
    assert chi2 < CHI2_999[len(eligible) - 1]


def test_decisions_are_reproducible_with_a_seed() -> None:
    for variant in VARIANTS:
        runs = []
        for _ in range(2):
            policy = make(*variant, seed=123)
            rng = np.random.default_rng(0)
            arms = []
            for _ in range(50):
                x = context(policy, rng)
                arm = policy.decide(x).arm
                policy.update(arm, float(rng.random() < 0.5), x)
                arms.append(arm)
            runs.append(arms)
        assert runs[0] == runs[1], variant


def test_non_contextual_vector_is_cached_until_the_state_changes() -> None:
    policy = make("ThompsonSampling", seed=1)
    first = policy.decide()
    assert policy.decide().probabilities is first.probabilities
    policy.update(0, 1.0)
    assert policy.decide().probabilities is not first.probabilities
    assert isinstance(first.probabilities, tuple)


# ---------------------------------------------------------------------------------------------- linear algebra
def test_sherman_morrison_inverse_matches_direct_inverse_after_many_updates() -> None:
    rng = np.random.default_rng(8)
    arms = ["w", "x"]
    priors = [ArmPrior(0.3, 2.0), None]
    policy = LinUCB(arms, dimension=6, regularization=0.7, priors=priors, refresh_interval=10**9)
    refreshed = LinUCB(arms, dimension=6, regularization=0.7, priors=priors, refresh_interval=37)
    xs = rng.normal(size=(3000, 6)) * np.array([1.0, 10.0, 0.1, 1.0, 3.0, 1.0])
    rewards = xs @ rng.normal(size=6) + rng.normal(size=3000)
    arm_of = rng.integers(0, 2, size=3000)
    for x, r, arm in zip(xs, rewards, arm_of, strict=True):
        policy.update(int(arm), float(r), x)
        refreshed.update(int(arm), float(r), x)
    for arm, (mean, weight) in enumerate([(0.3, 2.0), (0.0, 0.0)]):
        rows = arm_of == arm
        a = 0.7 * np.eye(6) + weight * np.eye(6) + xs[rows].T @ xs[rows]
        theta = np.linalg.solve(a, xs[rows].T @ (rewards[rows] - mean))
        for candidate in (policy, refreshed):
            assert np.allclose(candidate.inverse(arm), np.linalg.inv(a), rtol=1e-8, atol=1e-12)
            assert np.allclose(candidate.coefficients(arm), theta, rtol=1e-8, atol=1e-10)


def test_linear_thompson_vector_matches_monte_carlo_over_coefficients() -> None:
    """LinTS probabilities equal the frequency with which sampled coefficient vectors make each arm the best."""
    rng = np.random.default_rng(2)
    policy = LinearThompson(["w", "x", "y"], dimension=3, v=0.5)
    for _ in range(40):
        x = rng.normal(size=3)
        arm = int(rng.integers(0, 3))
        policy.update(arm, float(x @ [0.2, -0.1, 0.3] * (arm + 1) + rng.normal()), x)
    x = np.array([0.5, -1.0, 0.8])
    draws = 200_000
    scores = np.empty((draws, 3))
    for arm in range(3):
        thetas = rng.multivariate_normal(policy.coefficients(arm), 0.25 * policy.inverse(arm), size=draws)
        scores[:, arm] = thetas @ x
    reference = np.bincount(scores.argmax(axis=1), minlength=3) / draws
    assert np.abs(policy.probabilities(x) - reference).max() < 8e-3


# ---------------------------------------------------------------------------------------------- priors
def test_bernoulli_prior_maps_to_beta_parameters() -> None:
    policy = ThompsonSampling(["w", "x"], priors=[ArmPrior(0.9, 50.0), None])
    assert policy.beta_parameters(0) == pytest.approx((1 + 45.0, 1 + 5.0))
    assert policy.beta_parameters(1) == (1.0, 1.0)
    policy.update(0, 0.0)
    policy.update(0, 1.0)
    assert policy.describe()[0].posterior == pytest.approx({"alpha": 47.0, "beta": 7.0, "mean": 47 / 54})
    assert policy.probabilities()[0] > 0.85  # P(Beta(47, 7) > Uniform) = its mean


def test_counting_priors_are_pseudo_observations() -> None:
    policy = EpsilonGreedy(["w", "x"], epsilon=0.0, priors={"w": (0.8, 4.0)})
    assert policy.estimate(0) == pytest.approx(0.8)
    assert policy.estimate(1) is None  # no prior, no data: untried, so it is tried first
    assert policy.probabilities() == pytest.approx([0.0, 1.0])
    policy.update(0, 0.0)
    assert policy.estimate(0) == pytest.approx(3.2 / 5.0)
    summary = policy.describe()[0]
    assert (summary.pulls, summary.reward_sum, summary.mean) == (1, 0.0, 0.0)  # priors are not observations
    assert summary.posterior["pseudo_pulls"] == 5.0


def test_gaussian_thompson_prior_gives_the_arm_an_estimate() -> None:
    policy = ThompsonSampling(["w", "x"], likelihood="Gaussian", priors=[(2.0, 3.0), (0.0, 3.0)])
    assert policy.gaussian_parameters(0) == pytest.approx((2.0, math.sqrt(1.0 / 3.0)))
    assert policy.probabilities()[0] > 0.99


def test_linear_prior_mean_is_the_baseline_prediction() -> None:
    policy = LinUCB(["w", "x"], dimension=2, alpha=0.0, regularization=1.0, priors=[(0.7, 3.0), None])
    assert policy.probabilities([5.0, -3.0]) == pytest.approx([1.0, 0.0])  # 0.7 vs 0.0 before any data
    assert policy.describe()[0].posterior["ridge"] == 4.0
    assert np.allclose(policy.inverse(0), np.eye(2) / 4.0)


# ---------------------------------------------------------------------------------------------- learning
def bernoulli_regret(policy: Policy | None, means: np.ndarray, steps: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    regret = 0.0
    for _ in range(steps):
        arm = int(rng.integers(0, len(means))) if policy is None else policy.decide().arm
        regret += means.max() - means[arm]
        if policy is not None:
            policy.update(arm, float(rng.random() < means[arm]))
    return regret


@pytest.mark.parametrize("variant", VARIANTS[:5], ids=lambda v: f"{v[0]}-{next(iter(v[1].values()))}")
def test_non_contextual_policies_learn(variant: tuple[str, dict[str, Any]]) -> None:
    means = np.array([0.2, 0.35, 0.5, 0.3, 0.7])
    uniform = bernoulli_regret(None, means, 2000, seed=4)
    # The policy's generator must not replay the environment's stream (same seed, same uniforms).
    learned = bernoulli_regret(make(*variant, seed=1004), means, 2000, seed=4)
    assert learned < 0.35 * uniform


@pytest.mark.parametrize("algorithm", ["LinUCB", "LinearThompson"])
def test_contextual_policies_learn(algorithm: str) -> None:
    rng = np.random.default_rng(6)
    theta = rng.normal(size=(K, D))
    policy = make(algorithm, {}, seed=1006)
    regret = uniform = 0.0
    for _ in range(1500):
        x = rng.normal(size=D)
        values = theta @ x
        arm = policy.decide(x).arm
        policy.update(arm, float(values[arm] + 0.3 * rng.normal()), x)
        regret += values.max() - values[arm]
        uniform += values.max() - values.mean()
    assert regret < 0.2 * uniform


# ---------------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("call", "field", "words"),
    [
        (lambda p: p.update(K, 1.0), "arm", "out of range"),
        (lambda p: p.update(-1, 1.0), "arm", "out of range"),
        (lambda p: p.update(True, 1.0), "arm", "integer"),
        (lambda p: p.update(1.5, 1.0), "arm", "integer"),
        (lambda p: p.update(0, math.nan), "reward", "finite"),
        (lambda p: p.update(0, -math.inf), "reward", "finite"),
        (lambda p: p.update(0, "good"), "reward", "number"),
        (lambda p: p.decide(eligible=[]), "eligible", "no eligible arm"),
        (lambda p: p.decide(eligible=[0, 0]), "eligible", "repeat"),
        (lambda p: p.decide(eligible=[7]), "eligible", "out of range"),
        (lambda p: p.decide(eligible=np.zeros(K, dtype=bool)), "eligible", "no eligible arm"),
        (lambda p: p.decide(eligible=np.ones(K + 1, dtype=bool)), "eligible", "shape"),
        (lambda p: p.decide(np.ones(3)), "context", "not contextual"),
    ],
)
def test_bad_input_raises_naming_the_problem_and_changes_nothing(call: Any, field: str, words: str) -> None:
    policy = make("EpsilonGreedy", seed=0)
    before = policy.stats().to_flat()
    with pytest.raises(PolicyInputError, match=words) as caught:
        call(policy)
    assert caught.value.field == field
    assert isinstance(caught.value, ValueError)
    assert np.array_equal(policy.stats().to_flat(), before)
    assert policy.version == 0


@pytest.mark.parametrize(
    ("x", "words"),
    [
        (None, "needs a context vector of length 4"),
        (np.ones(3), "length 4"),
        (np.ones((2, 4)), "length 4"),
        ([0.0, math.nan, 0.0, 0.0], "NaN or infinite"),
        ([0.0, 0.0, math.inf, 0.0], "NaN or infinite"),
        ([1e200, 0.0, 0.0, 0.0], "too large"),
        (["a", "b", "c", "d"], "numbers"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_bad_context_raises(x: Any, words: str) -> None:
    for algorithm in ("LinUCB", "LinearThompson"):
        policy = make(algorithm)
        with pytest.raises(PolicyInputError, match=words) as decided:
            policy.decide(x)
        with pytest.raises(PolicyInputError, match=words) as updated:
            policy.update(0, 1.0, x)
        assert decided.value.field == updated.value.field == "context"
        assert policy.version == 0


def test_bernoulli_rewards_must_be_probabilities() -> None:
    policy = make("ThompsonSampling")
    with pytest.raises(PolicyInputError, match=r"rewards in \[0, 1\]"):
        policy.update(0, 2.0)
    policy.update(0, 0.25)  # fractional successes are fine
    assert (policy.describe()[0].pulls, policy.describe()[0].reward_sum) == (1, 0.25)
    assert policy.beta_parameters(0) == pytest.approx((1.25, 1.75))
    gaussian = make("ThompsonSampling", {"likelihood": "Gaussian"})
    gaussian.update(0, 42.0)  # any finite reward under the Gaussian likelihood
    assert (gaussian.describe()[0].pulls, gaussian.describe()[0].reward_sum) == (1, 42.0)
    assert gaussian.version == 1
    assert gaussian.gaussian_parameters(0) == pytest.approx((42.0, 1.0))


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"algorithm": "Greedy"}, "algorithm", "unknown algorithm 'Greedy'; expected one of EpsilonGreedy"),
        ({"params": {"epsilon": 1.5}}, "epsilonGreedy.epsilon", r"epsilonGreedy.epsilon must be in \[0, 1\]"),
        ({"params": {"epsilon": "high"}}, "epsilonGreedy.epsilon", "must be a number"),
        ({"params": {"epsilon": math.nan}}, "epsilonGreedy.epsilon", "finite"),
        ({"params": {"epsilon": 0.1, "temperature": 1.0}}, "epsilonGreedy.temperature", "unknown epsilonGreedy"),
        ({"min_probability": 0.3}, "minProbability", "too large for 5 arms"),
        ({"min_probability": -0.1}, "minProbability", ">= 0"),
        ({"dimension": 3}, "context", "not contextual"),
        ({"priors": [(0.5, -1.0)] + [None] * 4}, "arms[0].prior", "weight >= 0"),
        ({"priors": {"zz": (0.5, 1.0)}}, "priors", "unknown arms"),
        ({"priors": [None] * 3}, "priors", "3 priors for 5 arms"),
    ],
)
def test_bad_configuration_raises_naming_the_field(kwargs: dict[str, Any], field: str, words: str) -> None:
    arguments: dict[str, Any] = {"algorithm": "EpsilonGreedy", "params": {}, "arms": ARMS, **kwargs}
    with pytest.raises(PolicyConfigError, match=words) as caught:
        build_policy(**arguments)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("algorithm", "params", "dimension", "field"),
    [
        ("UCB1", {"c": -1.0}, 0, "ucb1.c"),
        ("Softmax", {"temperature": 0.0}, 0, "softmax.temperature"),
        ("ThompsonSampling", {"likelihood": "Poisson"}, 0, "thompsonSampling.likelihood"),
        ("LinUCB", {"alpha": -0.5}, 2, "linUCB.alpha"),
        ("LinUCB", {"regularization": 0.0}, 2, "linUCB.regularization"),
        ("LinearThompson", {"v": 0.0}, 2, "linearThompson.v"),
        ("LinearThompson", {}, 0, "dimension"),
    ],
)
def test_bad_parameters_name_the_spec_field(algorithm: str, params: dict[str, Any], dimension: int, field: str) -> None:
    with pytest.raises(PolicyConfigError) as caught:
        build_policy(algorithm, params, ARMS, dimension=dimension)
    assert caught.value.field == field
    assert field.rsplit(".", maxsplit=1)[-1] in str(caught.value)


def test_arm_names_must_be_unique_and_present() -> None:
    with pytest.raises(PolicyConfigError, match="repeated: \\['a'\\]"):
        build_policy("UCB1", {}, ["a", "b", "a"])
    with pytest.raises(PolicyConfigError, match="at least one arm"):
        build_policy("UCB1", {}, [])
    with pytest.raises(PolicyConfigError, match="Bernoulli prior mean must be in"):
        build_policy("ThompsonSampling", {}, ["a"], priors=[(1.5, 2.0)])


def test_floor_of_exactly_one_over_k_is_uniform() -> None:
    policy = make("UCB1", min_probability=1.0 / K)
    policy.update(0, 1.0)
    assert policy.probabilities() == pytest.approx([1.0 / K] * K)


# ---------------------------------------------------------------------------------------------- factory and stats
def test_build_policy_covers_every_algorithm_with_defaults_and_describes_arms() -> None:
    for algorithm in ALGORITHMS:
        policy = make(algorithm, seed=1)
        assert policy.algorithm == algorithm
        assert policy.arms == tuple(ARMS)
        rng = np.random.default_rng(0)
        x = context(policy, rng)
        policy.update(2, 1.0, x)
        summaries = policy.describe()
        assert [s.arm for s in summaries] == ARMS
        assert (summaries[2].pulls, summaries[2].reward_sum, summaries[2].mean) == (1, 1.0, 1.0)
        assert summaries[0].mean is None
        assert isinstance(summaries[2].posterior, dict)


def test_errors_share_one_hierarchy() -> None:
    assert issubclass(PolicyInputError, PolicyError)
    assert issubclass(PolicyConfigError, PolicyError)
    assert issubclass(PolicyError, ValueError)


def test_prepare_computes_the_vector_before_the_decision() -> None:
    policy = make("ThompsonSampling", seed=3)
    policy.update(1, 1.0)
    policy.prepare()
    prepared = policy._cache_vector
    assert policy.decide().probabilities is prepared
    subset = policy.decide(eligible=[0, 1]).probabilities
    assert subset[2:] == (0.0, 0.0, 0.0)
    make("LinUCB").prepare()  # contextual: nothing to prepare, no error


def test_a_uniform_above_the_rounded_total_picks_the_last_possible_arm() -> None:
    policy = EpsilonGreedy([f"arm{i}" for i in range(10)], epsilon=1.0)
    assert sum(policy.probabilities()) < 1.0  # ten times 0.1 rounds to 0.9999999999999999
    policy._uniforms = [0.9999999999999999] * 256
    policy._uniform_position = 0
    assert policy.decide().arm == 9
    assert policy.decide(eligible=[2, 5]).arm == 5


# ---------------------------------------------------------------------------------------------- linear scoring
@given(seed=st.integers(0, 2**16), steps=st.integers(0, 40), prior=st.booleans(), prepare=st.booleans())
@settings(max_examples=40, deadline=None)
def test_linucb_scores_are_the_ridge_mean_plus_the_width(seed: int, steps: int, prior: bool, prepare: bool) -> None:
    # The scores come from one product with the stacked factors G_a (G_aᵀG_a = A_a⁻¹); they must be
    # m_a + θ_aᵀx + alpha·sqrt(xᵀA_a⁻¹x) from the inverse itself, whether or not `prepare` ran after the rewards.
    priors = [(0.1 * i, 2.0) for i in range(K)] if prior else None
    policy = LinUCB(ARMS, dimension=D, alpha=0.7, priors=priors, rng=seed, refresh_interval=7)
    rng = np.random.default_rng(seed)
    train(policy, rng, steps)
    if prepare:
        policy.prepare()
    x = context(policy, rng)
    means = [m for m, _ in (priors or [(0.0, 0.0)] * K)]
    expected = [
        means[a] + float(policy.coefficients(a) @ x) + 0.7 * math.sqrt(float(x @ policy.inverse(a) @ x))
        for a in range(K)
    ]
    assert policy._scores(x) == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert policy.choose(x)[1] == policy.decide(x).probabilities


def test_linear_width_falls_back_when_an_inverse_is_not_positive_definite() -> None:
    # Round-off can leave a cached inverse with a tiny negative eigenvalue; the width then uses its positive part.
    policy = LinearThompson(ARMS, dimension=2, rng=0)
    policy._a_inv[1] = np.array([[1.0, 0.0], [0.0, -1e-18]])
    policy._stale.add(1)
    policy.prepare()
    _, widths = policy._score_parts(np.array([3.0, 4.0]))
    assert widths[1] == pytest.approx(3.0)
    assert widths[0] == pytest.approx(5.0)  # the other arms keep the exact factor of I/λ
