"""Shared machinery of the policies that only need per-arm pull counts and reward sums."""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Sequence

import numpy as np

from .base import Policy, PriorsInput
from .stats import FloatArray

__all__ = ["CountingPolicy"]


class CountingPolicy(Policy, ABC):
    """A non-contextual policy whose estimate of arm ``a`` is ``(s_a + mean_a·weight_a) / (n_a + weight_a)``.

    Keeps the prior-adjusted counts and sums as plain Python lists: with a handful of arms, list arithmetic is several
    times cheaper than numpy calls, and the decision is cached until the state changes anyway. An arm with neither
    pulls nor prior weight is *untried*: it has no estimate, and the greedy part of a decision goes to untried arms
    first (ties split equally), so every eligible arm is tried once before exploitation starts.
    """

    def __init__(
        self,
        arms: Sequence[str],
        *,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        super().__init__(arms, dimension=0, priors=priors, min_probability=min_probability, rng=rng)
        self._count: list[float] = [0.0] * self._k
        self._sum: list[float] = [0.0] * self._k
        # Per-arm estimate (+inf while untried, so untried arms win the greedy step) and 1/sqrt(count) (0 while
        # untried), kept current on every update so that a decision is one pass over plain lists.
        self._mean: list[float] = [math.inf] * self._k
        self._inv_sqrt: list[float] = [0.0] * self._k
        self._count_total = 0.0
        self._rebuild()

    def _learn(self, arm: int, reward: float, x: FloatArray | None) -> None:
        self._pending.add_unchecked(arm, reward, None)
        count = self._count[arm] + 1.0
        self._count[arm] = count
        self._sum[arm] += reward
        self._mean[arm] = self._sum[arm] / count
        self._inv_sqrt[arm] = 1.0 / math.sqrt(count)
        self._count_total += 1.0

    def _rebuild(self) -> None:
        view = self._view
        self._count = [n + w for n, w in zip(view.n.tolist(), self._prior_weight, strict=True)]
        self._sum = [s + m * w for s, m, w in zip(view.s.tolist(), self._prior_mean, self._prior_weight, strict=True)]
        self._mean = [s / c if c > 0.0 else math.inf for s, c in zip(self._sum, self._count, strict=True)]
        self._inv_sqrt = [1.0 / math.sqrt(c) if c > 0.0 else 0.0 for c in self._count]
        self._count_total = sum(self._count)

    def _scores(self, eligible: list[int]) -> list[float]:
        """Estimates of the eligible arms (+inf while untried)."""
        mean = self._mean
        return mean if len(eligible) == self._k else [mean[a] for a in eligible]

    def estimate(self, arm: int) -> float | None:
        """Prior-adjusted mean reward of ``arm``, or None while it is untried."""
        count = self._count[arm]
        return self._sum[arm] / count if count > 0.0 else None

    def _posterior(self, arm: int) -> dict[str, float | list[float]]:
        posterior: dict[str, float | list[float]] = {"pseudo_pulls": self._count[arm]}
        estimate = self.estimate(arm)
        if estimate is not None:
            posterior["estimate"] = estimate
        return posterior


def split_ties(scores: list[float], exploit: float, explore: float) -> list[float]:
    """``explore`` to every entry plus ``exploit`` split equally among the entries equal to the maximum."""
    best = max(scores)
    ties = scores.count(best)
    if ties == 1:
        probabilities = [explore] * len(scores)
        probabilities[scores.index(best)] += exploit
        return probabilities
    share = exploit / ties
    return [explore + share if score == best else explore for score in scores]
