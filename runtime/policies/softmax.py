"""Softmax (Boltzmann) exploration: play arm ``a`` with probability ∝ ``exp(mean_a / temperature)``."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .base import PriorsInput
from .counting import CountingPolicy
from .errors import PolicyConfigError
from .stats import FloatArray

__all__ = ["Softmax"]


class Softmax(CountingPolicy):
    """Softmax over prior-adjusted mean rewards with temperature ``τ``: ``p_a = exp(m_a/τ) / Σ_b exp(m_b/τ)``.

    Computed stably (the maximum is subtracted first), exact. While some eligible arm is untried the whole mass is
    split equally among the untried arms (see :class:`CountingPolicy`).
    """

    algorithm = "Softmax"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        temperature: float = 0.1,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0.0):
            raise PolicyConfigError(
                f"temperature must be a finite number > 0, got {temperature!r}", field="params.temperature"
            )
        self.temperature = float(temperature)
        super().__init__(arms, priors=priors, min_probability=min_probability, rng=rng)

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        scores = self._scores(eligible)
        top = max(scores)
        if top == math.inf:
            untried = scores.count(top)
            return [1.0 / untried if score == top else 0.0 for score in scores]
        inverse = 1.0 / self.temperature
        weights = [math.exp((score - top) * inverse) for score in scores]
        norm = 1.0 / sum(weights)
        return [w * norm for w in weights]
