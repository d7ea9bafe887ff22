"""A stand-in engine for tests of the service and the stores: uniform over eligible arms, real sufficient statistics."""

from __future__ import annotations

from typing import Any

import numpy as np

from croupier.runtime.policies.stats import SufficientStats


class UniformEngine:
    def __init__(self, arms: int, dimension: int = 0, seed: int = 0) -> None:
        self.stats = SufficientStats.zeros(arms, dimension)
        self._rng = np.random.default_rng(seed)
        self._arms = arms
        self.learned: list[tuple[int, float]] = []

    def decide(self, context: np.ndarray | None, eligible: list[int] | None) -> tuple[int, list[float]]:
        probabilities = np.zeros(self._arms)
        arms = eligible if eligible is not None else list(range(self._arms))
        probabilities[arms] = 1.0 / len(arms)
        return int(arms[int(self._rng.integers(len(arms)))]), probabilities.tolist()

    def learn(self, arm: int, reward: float, context: np.ndarray | None) -> None:
        self.stats.add(arm, reward, context)
        self.learned.append((arm, reward))

    def replace_stats(self, stats: SufficientStats) -> None:
        self.stats = stats

    def probabilities(self) -> np.ndarray | None:
        return np.full(self._arms, 1.0 / self._arms)

    def posteriors(self) -> list[dict[str, Any]]:
        return [{"n": float(self.stats.n[i]), "s": float(self.stats.s[i])} for i in range(self._arms)]

    def delta_of(self, arm: int, reward: float, context: np.ndarray | None) -> SufficientStats:
        delta = SufficientStats.zeros(self._arms, self.stats.dimension)
        delta.add(arm, reward, context)
        return delta

    def adopt_total(self, total: SufficientStats) -> None:
        self.stats = total
