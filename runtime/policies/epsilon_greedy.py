"""ε-greedy: explore uniformly with probability ε, otherwise play the best estimate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .base import PriorsInput
from .counting import CountingPolicy, split_ties
from .errors import PolicyConfigError
from .stats import FloatArray

__all__ = ["EpsilonGreedy"]


class EpsilonGreedy(CountingPolicy):
    """ε-greedy over prior-adjusted mean rewards.

    Exact probabilities over ``k`` eligible arms: ``ε/k`` each, plus ``(1 - ε)`` split equally among the arms with the
    highest estimate (untried arms count as highest, see :class:`CountingPolicy`).
    """

    algorithm = "EpsilonGreedy"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        epsilon: float = 0.1,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if not (isinstance(epsilon, int | float) and math.isfinite(epsilon) and 0.0 <= epsilon <= 1.0):
            raise PolicyConfigError(f"epsilon must be in [0, 1], got {epsilon!r}", field="params.epsilon")
        self.epsilon = float(epsilon)
        super().__init__(arms, priors=priors, min_probability=min_probability, rng=rng)

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        return split_ties(self._scores(eligible), 1.0 - self.epsilon, self.epsilon / len(eligible))
