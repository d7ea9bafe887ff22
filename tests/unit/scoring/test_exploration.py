"""Exploration over scores: each rule against a hand computation from its definition."""

from __future__ import annotations

import math

import pytest

from croupier.api import wire
from croupier.api.decisionpolicy import MAX_MAGNITUDE, ScoreExplorationSpec
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.scoring.exploration import epsilon_greedy, exploration_of, inverse_gap, softmax


def test_inverse_gap_matches_squarecb_by_hand() -> None:
    # SquareCB (Foster & Rakhlin 2020, Algorithm 1) with predicted losses ŷ = -score, K = 3, gamma = 10, best b = arm 0:
    # p(1) = 1 / (K + gamma (ŷ(1) - ŷ(b))) = 1 / (3 + 10 · (1.0 - 0.5)) = 1/8; p(2) = 1 / (3 + 10 · (1.0 - 0.0)) = 1/13;
    # p(b) = 1 - 1/8 - 1/13 = 83/104.
    probabilities = inverse_gap([1.0, 0.5, 0.0], gamma=10.0)
    assert probabilities == pytest.approx([83 / 104, 1 / 8, 1 / 13], abs=1e-15)


def test_inverse_gap_limits() -> None:
    assert inverse_gap([3.0, 1.0, 2.0, -5.0], gamma=0.0) == pytest.approx([0.25] * 4)  # gamma = 0: uniform
    greedy = inverse_gap([3.0, 1.0, 2.0], gamma=1e9)
    assert greedy[0] == pytest.approx(1.0, abs=1e-8) and min(greedy) > 0  # every arm keeps some probability
    tied = inverse_gap([2.0, 2.0, 0.0], gamma=4.0)  # the best arms share the rest equally
    assert tied[2] == pytest.approx(1 / (3 + 4 * 2)) and tied[0] == tied[1] == pytest.approx((1 - tied[2]) / 2)


def test_softmax_by_hand() -> None:
    scores, t = [1.0, 0.0, -1.0], 0.5
    weights = [math.exp(s / t) for s in scores]
    assert softmax(scores, t) == pytest.approx([w / sum(weights) for w in weights], abs=1e-15)
    assert softmax([1e6, 0.0], 0.1) == pytest.approx([1.0, 0.0])  # no overflow: shifted by the best score


def test_epsilon_greedy_by_hand() -> None:
    assert epsilon_greedy([0.1, 0.7, 0.3, 0.2], 0.2) == pytest.approx([0.05, 0.85, 0.05, 0.05])
    assert epsilon_greedy([0.7, 0.7, 0.3], 0.3) == pytest.approx([0.1 + 0.35, 0.1 + 0.35, 0.1])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "Softmax", "softmax": {"temperature": 2.0}}, softmax([0.5, 0.1, 0.9], 2.0)),
        ({"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.3}}, epsilon_greedy([0.5, 0.1, 0.9], 0.3)),
        ({"type": "InverseGap", "inverseGap": {"gamma": 7}}, inverse_gap([0.5, 0.1, 0.9], 7.0)),
        ({"type": "InverseGap"}, inverse_gap([0.5, 0.1, 0.9], 100.0)),
        ({}, softmax([0.5, 0.1, 0.9], 0.1)),
    ],
)
def test_the_spec_picks_the_rule_and_its_parameters(spec: dict[str, object], expected: list[float]) -> None:
    explore = exploration_of(ScoreExplorationSpec.model_validate(spec))
    assert explore([0.5, 0.1, 0.9]) == expected


def test_the_floor_applies_after_the_exploration() -> None:
    raw = inverse_gap([5.0, 0.0, 0.0, 0.0], gamma=1000.0)
    floored = apply_floor(raw, 0.05)
    assert min(floored) == pytest.approx(0.05) and sum(floored) == pytest.approx(1.0)


def test_arm_feature_bounds_are_the_context_bounds() -> None:
    assert MAX_MAGNITUDE == wire.MAX_MAGNITUDE
