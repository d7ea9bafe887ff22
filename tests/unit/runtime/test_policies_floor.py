"""The exploration floor: q_a = max(f, c·p_a), the least change that gives every arm at least f."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.runtime.policies import EpsilonGreedy, LinUCB, Softmax, build_policy
from croupier.runtime.policies.floor import apply_floor

pytestmark = pytest.mark.unit


@st.composite
def vectors_and_floors(draw: st.DrawFn) -> tuple[list[float], float]:
    """A probability vector (with zeros and ties likely) and a floor ``f`` with ``k·f ≤ 1``."""
    k = draw(st.integers(1, 8))
    weights = draw(
        st.lists(
            st.one_of(st.just(0.0), st.just(1.0), st.floats(0.0, 1.0), st.floats(1e-9, 1e-3)), min_size=k, max_size=k
        )
    )
    if not any(weights):
        weights[draw(st.integers(0, k - 1))] = 1.0
    total = math.fsum(weights)
    p = [w / total for w in weights]
    f = min(draw(st.one_of(st.just(1.0 / k), st.floats(0.0, 1.0), st.sampled_from([0.0, 0.01, 0.05]))), 1.0 / k)
    while k * f > 1.0:  # 1/k rounded up
        f = math.nextafter(f, 0.0)
    return p, f


@given(vectors_and_floors())
@settings(max_examples=200, deadline=None)
def test_the_floor_gives_a_distribution_with_every_entry_at_least_f(case: tuple[list[float], float]) -> None:
    p, f = case
    q = apply_floor(p, f)
    assert len(q) == len(p)
    assert math.fsum(q) == pytest.approx(1.0, abs=1e-12)
    assert min(q) >= f


@given(vectors_and_floors(), st.one_of(st.just(1.0), st.floats(0.0, 1.0)))
@settings(max_examples=200, deadline=None)
def test_a_vector_that_satisfies_the_floor_is_returned_unchanged(case: tuple[list[float], float], share: float) -> None:
    p, _ = case
    f = min(p) * share  # a floor p already satisfies (up to min(p) itself)
    assert apply_floor(p, f) is p


@given(vectors_and_floors())
@settings(max_examples=200, deadline=None)
def test_the_floor_keeps_the_order_of_the_arms_and_the_ratios_above_it(case: tuple[list[float], float]) -> None:
    p, f = case
    q = apply_floor(p, f)
    for a in range(len(p)):
        for b in range(len(p)):
            if p[a] <= p[b]:
                assert q[a] <= q[b] + 1e-15
    above = [a for a in range(len(p)) if q[a] > f]
    # Arms left above the floor are scaled by one common factor c ≤ 1.
    scales = [q[a] / p[a] for a in above]
    if scales:
        assert max(scales) == pytest.approx(min(scales), rel=1e-12)
        assert max(scales) <= 1.0 + 1e-12


@given(vectors_and_floors())
@settings(max_examples=200, deadline=None)
def test_the_floor_moves_the_least_mass_and_is_the_kl_projection(case: tuple[list[float], float]) -> None:
    p, f = case
    q = apply_floor(p, f)
    deficit = math.fsum(max(0.0, f - value) for value in p)
    # Only arms below the floor gain, and exactly up to f: the mass moved is the deficit, which every vector with
    # the floor must move at least.
    for before, after in zip(p, q, strict=True):
        if before < f:
            assert after == pytest.approx(f, abs=1e-15)
        else:
            assert after <= before + 1e-15
    moved = math.fsum(max(0.0, after - before) for before, after in zip(p, q, strict=True))
    assert moved == pytest.approx(deficit, abs=1e-12)
    # Optimality conditions of min KL(q‖p) over {q : Σq = 1, q ≥ f}: q = max(f, c·p) for one c.
    above = [a for a in range(len(p)) if q[a] > f]
    if above:
        c = q[above[0]] / p[above[0]]
        for value, after in zip(p, q, strict=True):
            assert after == pytest.approx(max(f, c * value), abs=1e-12)


@given(vectors_and_floors(), st.integers(0, 2**32 - 1))
@settings(max_examples=200, deadline=None)
def test_no_other_feasible_vector_is_closer_in_kl(case: tuple[list[float], float], seed: int) -> None:
    p, f = case
    k = len(p)
    # KL(q‖p) must be finite (and computable) for every q: lift zeros and subnormals.
    lifted = [max(value, 1e-12) for value in p]
    p = [value / math.fsum(lifted) for value in lifted]
    q = apply_floor(p, f)
    rng = np.random.default_rng(seed)
    # Random feasible competitors: f + (1 - k·f)·(a point of the simplex), and mixes with q itself.
    slack = 1.0 - k * f
    if slack <= 1e-12:
        assert q == pytest.approx([f] * k, abs=1e-12)  # the only feasible vector, up to rounding
        return

    def kl(r: list[float] | np.ndarray) -> float:
        return float(sum(x * math.log(x / y) for x, y in zip(r, p, strict=True) if x > 0.0))

    best = kl(q)
    for _ in range(20):
        other = f + slack * rng.dirichlet(np.ones(k))
        for t in (1.0, 0.1, 0.01):
            assert kl((1 - t) * np.array(q) + t * other) >= best - 1e-12


def test_the_floor_leaves_epsilon_greedy_exploring_epsilon() -> None:
    # ε = 0.2 over 3 arms gives every arm ε/3 = 0.0667 ≥ 0.05: the floor must change nothing (a uniform mix gave
    # 0.05 + 0.85·0.0667 = 0.1067 to each of the other arms).
    policy = EpsilonGreedy(["x", "y", "z"], epsilon=0.2, min_probability=0.05)
    for arm, reward in [(0, 1.0), (1, 0.0), (2, 0.0)]:
        policy.update(arm, reward)
    assert policy.probabilities() == pytest.approx([0.2 / 3 + 0.8, 0.2 / 3, 0.2 / 3], abs=1e-15)
    unfloored = EpsilonGreedy(["x", "y", "z"], epsilon=0.2)
    unfloored.replace(policy.stats())
    assert policy.probabilities().tolist() == unfloored.probabilities().tolist()


def test_the_floor_raises_the_arms_below_it_and_takes_mass_proportionally() -> None:
    assert apply_floor([0.0, 0.2, 0.8], 0.1) == pytest.approx([0.1, 0.18, 0.72])
    # Scaling pushes the 0.11 arm below the floor: it is raised too, and the rest comes from the largest arm alone.
    assert apply_floor([0.0, 0.11, 0.89], 0.1) == pytest.approx([0.1, 0.1, 0.8])
    assert apply_floor([1.0, 0.0, 0.0, 0.0], 0.25) == [0.25] * 4
    assert apply_floor([0.5, 0.5], 0.0) == [0.5, 0.5]


def test_softmax_keeps_its_vector_and_linucb_floors_its_one_hot_vector() -> None:
    softmax = Softmax(["w", "x", "y"], temperature=0.5, min_probability=0.05)
    for arm, reward in [(0, 0.0), (1, 0.5), (2, 1.0), (2, 0.0)]:
        softmax.update(arm, reward)
    weights = np.exp(np.array([0.0, 0.5, 0.5]) / 0.5)
    assert softmax.probabilities() == pytest.approx((weights / weights.sum()).tolist(), abs=1e-15)
    linucb = LinUCB(["w", "x", "y", "z"], dimension=2, alpha=0.0, min_probability=0.1)
    linucb.update(1, 1.0, [1.0, 0.0])
    assert linucb.probabilities([1.0, 0.0]) == pytest.approx([0.1, 0.7, 0.1, 0.1], abs=1e-15)


# Upper 0.1 % points of the chi-square distribution by degrees of freedom.
CHI2_999 = {3: 16.27}


@pytest.mark.parametrize(
    ("algorithm", "params"),
    [
        ("EpsilonGreedy", {"epsilon": 0.1}),
        ("UCB1", {"c": 0.5}),
        ("ThompsonSampling", {"likelihood": "Bernoulli"}),
        ("LinUCB", {"alpha": 0.5}),
        ("LinearThompson", {"v": 0.3}),
    ],
)
def test_decisions_sample_from_the_floored_vector_they_report(algorithm: str, params: dict[str, float]) -> None:
    """Chi-square goodness of fit of 12 000 decisions against the reported vector, with a floor that moves mass."""
    arms = ["a", "b", "c", "d", "e"]
    dimension = 3 if algorithm.startswith("Lin") else 0
    policy = build_policy(algorithm, params, arms, dimension=dimension, min_probability=0.15, seed=5)
    rng = np.random.default_rng(9)
    for _ in range(200):  # learn a clear best arm, so that the unfloored vector puts others below 0.15
        x = rng.normal(size=dimension) if dimension else None
        arm = policy.decide(x).arm
        policy.update(arm, float(rng.random() < (0.9 if arm == 2 else 0.1)), x)
    x = np.array([1.0, 0.5, -0.2]) if dimension else None
    eligible = [0, 2, 3, 4]
    expected = np.array(policy.probabilities(x, eligible=eligible))
    assert expected[eligible].min() == pytest.approx(0.15)  # the floor is binding
    assert expected[1] == 0.0
    counts = np.zeros(len(arms))
    draws = 12_000
    for _ in range(draws):
        decision = policy.decide(x, eligible=eligible)
        assert decision.probabilities == tuple(expected.tolist())
        counts[decision.arm] += 1
    assert counts[1] == 0
    observed, wanted = counts[eligible], expected[eligible] * draws
    chi2 = float(((observed - wanted) ** 2 / wanted).sum())
    assert chi2 < CHI2_999[len(eligible) - 1]
