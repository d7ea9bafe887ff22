"""The slate maths: conditional vectors, the floor at each step, and exact slate probabilities."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.ranking.slate import conditional, draw, sample_slate

P = [0.4, 0.25, 0.15, 0.12, 0.08]


def _grid(n: int) -> list[float]:
    """Stratified uniforms: the midpoints of n equal cells of [0, 1)."""
    return [(i + 0.5) / n for i in range(n)]


def test_position_one_is_the_decision_vector_itself() -> None:
    [first] = sample_slate(P, range(5), 1, 0.0, [0.5])  # type: ignore[arg-type]
    assert first.probabilities == tuple(P)
    assert first.propensity == P[first.arm]
    assert first.remaining == [0, 1, 2, 3, 4]


def test_later_positions_renormalise_over_the_arms_not_placed() -> None:
    # u = 0.1 draws arm 0 (0.4) at position 1; then arm 1's share of the rest is 0.25 / 0.6 < 0.5.
    slate = sample_slate(P, [0, 1, 2, 3, 4], 3, 0.0, [0.1, 0.1, 0.99])
    assert [placed.arm for placed in slate] == [0, 1, 4]
    second = slate[1].probabilities
    assert second[0] == 0.0
    assert second[1:] == pytest.approx([p / 0.6 for p in P[1:]], abs=1e-15)
    third = slate[2].probabilities
    assert third[:2] == (0.0, 0.0)
    assert third[2:] == pytest.approx([p / 0.35 for p in P[2:]], abs=1e-15)
    assert slate[2].propensity == pytest.approx(0.08 / 0.35, abs=1e-15)
    assert slate[2].remaining == [2, 3, 4]


def test_every_ordered_slate_has_the_probability_of_sequential_sampling() -> None:
    # Stratified uniforms per position: the share of grid points that produce an ordered pair converges to its exact
    # probability p(a)·p(b)/(1 - p(a)), within a grid cell per position.
    n = 300
    counts: dict[tuple[int, ...], int] = {}
    for u1, u2 in itertools.product(_grid(n), _grid(n)):
        slate = sample_slate(P, [0, 1, 2, 3, 4], 2, 0.0, [u1, u2])
        key = tuple(placed.arm for placed in slate)
        counts[key] = counts.get(key, 0) + 1
    assert len(counts) == 5 * 4
    for (a, b), count in counts.items():
        assert count / n**2 == pytest.approx(P[a] * P[b] / (1 - P[a]), abs=2 / n)


def test_the_propensities_of_a_slate_multiply_to_its_probability() -> None:
    for u1, u2, u3 in itertools.product(_grid(7), _grid(7), _grid(7)):
        slate = sample_slate(P, [0, 1, 2, 3, 4], 3, 0.0, [u1, u2, u3])
        a, b, c = (placed.arm for placed in slate)
        exact = P[a] * P[b] / (1 - P[a]) * P[c] / (1 - P[a] - P[b])
        assert math.prod(placed.propensity for placed in slate) == pytest.approx(exact, rel=1e-12)


def test_the_floor_is_applied_at_every_position() -> None:
    # A vector below the floor (as a model-scored vector could be before flooring): every step gets the floor.
    p = [0.9, 0.09, 0.01, 0.0, 0.0]
    f = 0.05
    slate = sample_slate(p, [0, 1, 2, 3, 4], 4, f, [0.0, 0.0, 0.0, 0.0])
    for placed in slate:
        shown = [placed.probabilities[a] for a in placed.remaining]
        assert sum(shown) == pytest.approx(1.0, abs=1e-12)
        assert min(shown) >= f - 1e-12
    # Position 2 (arm 0 placed): the floored renormalised vector over arms 1..4, by the floor's own rule.
    assert [slate[1].probabilities[a] for a in slate[1].remaining] == apply_floor([0.9, 0.1, 0.0, 0.0], f)


def test_a_floored_vector_needs_no_change_after_renormalising() -> None:
    f = 0.05
    p = apply_floor([0.85, 0.1, 0.03, 0.02, 0.0], f)
    q = conditional(p, [1, 2, 3, 4], f)
    assert q == [p[a] / sum(p[1:]) for a in [1, 2, 3, 4]]


def test_remaining_arms_without_mass_are_drawn_uniformly() -> None:
    # A greedy vector (UCB1, ε-greedy with ε = 0): after the one arm with mass, the rest are uniform.
    p = [0.0, 1.0, 0.0, 0.0]
    slate = sample_slate(p, [0, 1, 2, 3], 4, 0.0, [0.7, 0.7, 0.7, 0.7])
    assert slate[0].arm == 1
    assert slate[0].propensity == 1.0
    assert [slate[1].probabilities[a] for a in slate[1].remaining] == [1 / 3] * 3
    assert sorted(placed.arm for placed in slate) == [0, 1, 2, 3]
    assert slate[3].propensity == 1.0


def test_a_zero_probability_arm_is_never_drawn_while_others_have_mass() -> None:
    q = [0.5, 0.0, 0.5]
    assert {draw(q, u) for u in _grid(1000)} == {0, 2}
    assert draw([0.3, 0.3, 0.3999999999, 0.0], 0.99999999999) == 2  # rounding below 1: the last arm with mass


def test_only_eligible_arms_are_placed() -> None:
    slate = sample_slate(P, [1, 3, 4], 3, 0.0, [0.2, 0.5, 0.9])
    assert sorted(placed.arm for placed in slate) == [1, 3, 4]
    first = slate[0].probabilities
    assert first[0] == first[2] == 0.0
    assert sum(first) == pytest.approx(1.0)
    assert first[1] == pytest.approx(0.25 / 0.45)


@pytest.mark.parametrize(("k", "uniforms"), [(0, []), (4, [0.1] * 4), (2, [0.1])])
def test_a_bad_slate_size_or_too_few_uniforms_is_refused(k: int, uniforms: list[float]) -> None:
    with pytest.raises(ValueError, match=r"k must be|uniforms"):
        sample_slate(P, [0, 1, 2], k, 0.0, uniforms)


@settings(max_examples=200, deadline=None)
@given(
    weights=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=12),
    floor_share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_every_position_is_a_distribution_with_the_floor(weights: list[float], floor_share: float, seed: int) -> None:
    n = len(weights)
    total = sum(weights)
    p = [w / total for w in weights] if total > 0 else [1.0 / n] * n
    f = floor_share / n
    p = apply_floor(p, f)
    uniforms = np.random.default_rng(seed).random(n).tolist()
    slate = sample_slate(p, list(range(n)), n, f, uniforms)
    assert sorted(placed.arm for placed in slate) == list(range(n))
    for j, placed in enumerate(slate):
        assert len(placed.remaining) == n - j
        shown = [placed.probabilities[a] for a in placed.remaining]
        assert sum(shown) == pytest.approx(1.0, abs=1e-9)
        assert min(shown) >= f - 1e-12
        assert placed.propensity == placed.probabilities[placed.arm] > 0.0
        assert sum(placed.probabilities) == pytest.approx(1.0, abs=1e-9)  # 0 outside the remaining arms
