"""Exploration over a model's scores: the probability of every eligible arm given its score (higher is better).

Each function takes the scores of the eligible arms and returns their probabilities (same order, summing to 1); the
caller applies the policy's floor (`croupier.runtime.policies.floor.apply_floor`) afterwards, so the logged
propensities are exactly the probabilities the arm was drawn with.

- Softmax: p(a) ∝ exp(s(a) / T).
- EpsilonGreedy: ε/K to every arm, and 1 - ε shared by the arms with the best score.
- InverseGap (SquareCB, Foster & Rakhlin 2020, "Beyond UCB", Algorithm 1 with rewards instead of losses): with K arms
  and b the best-scored arm, p(a) = 1 / (K + γ·(s(b) - s(a))) for every a ≠ b, and p(b) = 1 - Σ_{a≠b} p(a). Arms that
  tie for the best score share the remainder equally (with one best arm this is the paper's rule exactly).
"""  # noqa: RUF002 - the papers' symbols

from __future__ import annotations

import math
from collections.abc import Callable

from croupier.api.decisionpolicy import (
    EpsilonGreedyParams,
    InverseGapParams,
    ScoreExplorationSpec,
    ScoreSoftmaxParams,
    ScoringExploration,
)

Exploration = Callable[[list[float]], list[float]]


def softmax(scores: list[float], temperature: float) -> list[float]:
    top = max(scores)
    weights = [math.exp((s - top) / temperature) for s in scores]
    total = sum(weights)
    return [w / total for w in weights]


def epsilon_greedy(scores: list[float], epsilon: float) -> list[float]:
    k = len(scores)
    top = max(scores)
    ties = scores.count(top)
    explore = epsilon / k
    exploit = (1.0 - epsilon) / ties
    return [explore + exploit if s == top else explore for s in scores]


def inverse_gap(scores: list[float], gamma: float) -> list[float]:
    k = len(scores)
    top = max(scores)
    ties = scores.count(top)
    probabilities = [0.0 if s == top else 1.0 / (k + gamma * (top - s)) for s in scores]
    rest = (1.0 - sum(probabilities)) / ties
    return [rest if s == top else p for s, p in zip(scores, probabilities, strict=True)]


def exploration_of(spec: ScoreExplorationSpec) -> Exploration:
    """The exploration the spec names, with its parameters (defaults filled in)."""
    kind = ScoringExploration(spec.type)
    if kind == ScoringExploration.SOFTMAX:
        temperature = (spec.softmax or ScoreSoftmaxParams()).temperature
        return lambda scores: softmax(scores, temperature)
    if kind == ScoringExploration.EPSILON_GREEDY:
        epsilon = (spec.epsilon_greedy or EpsilonGreedyParams()).epsilon
        return lambda scores: epsilon_greedy(scores, epsilon)
    gamma = (spec.inverse_gap or InverseGapParams()).gamma
    return lambda scores: inverse_gap(scores, gamma)
