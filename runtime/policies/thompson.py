"""Thompson sampling with a Beta-Bernoulli or a Gaussian likelihood, with exact-by-construction propensities."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from .base import Policy, PriorsInput
from .errors import PolicyConfigError, PolicyInputError
from .quadrature import (
    DEFAULT_QUADRATURE_POINTS,
    BetaMaxProbability,
    GaussianMaxProbability,
    QuadratureRule,
)
from .stats import FloatArray, SufficientStats

__all__ = ["Likelihood", "ThompsonSampling"]

Likelihood = Literal["Bernoulli", "Gaussian"]


class ThompsonSampling(Policy):
    """Thompson sampling over independent per-arm posteriors.

    Instead of drawing one posterior sample per arm and playing the argmax, the policy computes the probability that
    each eligible arm's draw is the largest (:mod:`~croupier.runtime.policies.quadrature`: Gauss-Legendre quadrature
    in quantile space, ``quadrature_points`` nodes, ≈1e-3 accuracy) and samples the arm from that vector (after the
    floor). The choice has the Thompson distribution up to the quadrature error, and the logged propensity is exact.
    The vector depends on the state only, so it is cached until the next update.

    ``likelihood="Bernoulli"``: rewards in [0, 1] (fractional rewards count as fractional successes); arm ``a``'s
    posterior is ``Beta(1 + mean·weight + s_a, 1 + (1 - mean)·weight + n_a - s_a)`` with the prior ``(mean, weight)``
    (``Beta(1, 1)`` without one).

    ``likelihood="Gaussian"``: any finite rewards, homoscedastic noise. Arm ``a``'s mean has posterior
    ``N(S_a / nu_a, sigma² / nu_a)`` with ``nu_a = n_a + weight`` and ``S_a = s_a + mean·weight``; the noise variance
    ``sigma²`` is pooled over arms, ``(1 + Σ_a Σ_i (r_ai - r̄_a)²) / (1 + Σ_a max(n_a - 1, 0))`` (one
    pseudo-observation of variance 1 keeps it defined before data). Arms with ``nu_a = 0`` are untried and take the
    whole mass first, split equally.
    """

    algorithm = "ThompsonSampling"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        likelihood: Likelihood = "Bernoulli",
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
        quadrature_points: int = DEFAULT_QUADRATURE_POINTS,
    ) -> None:
        if likelihood not in ("Bernoulli", "Gaussian"):
            raise PolicyConfigError(
                f"likelihood must be 'Bernoulli' or 'Gaussian', got {likelihood!r}", field="params.likelihood"
            )
        self.likelihood: Likelihood = likelihood
        super().__init__(arms, dimension=0, priors=priors, min_probability=min_probability, rng=rng)
        rule = QuadratureRule(quadrature_points)
        self._beta_max = BetaMaxProbability(self._k, rule)
        self._gaussian_max = GaussianMaxProbability(rule)
        self._n: list[float] = [0.0] * self._k
        self._s: list[float] = [0.0] * self._k
        self._s2: list[float] = [0.0] * self._k
        self._rebuild()

    # ------------------------------------------------------------------ posterior parameters
    def beta_parameters(self, arm: int) -> tuple[float, float]:
        """``(alpha, beta)`` of arm ``arm``'s Beta posterior (Bernoulli likelihood)."""
        m, w = self._prior_mean[arm], self._prior_weight[arm]
        successes = self._s[arm]
        return 1.0 + m * w + successes, 1.0 + (1.0 - m) * w + self._n[arm] - successes

    def noise_variance(self) -> float:
        """Pooled reward variance ``sigma²`` of the Gaussian likelihood (see the class docstring)."""
        squares, dof = 1.0, 1.0
        for n, s, s2 in zip(self._n, self._s, self._s2, strict=True):
            if n > 1.0:
                squares += max(s2 - s * s / n, 0.0)
                dof += n - 1.0
        return squares / dof

    def gaussian_parameters(self, arm: int, noise_variance: float | None = None) -> tuple[float, float] | None:
        """``(mean, sd)`` of arm ``arm``'s posterior mean (Gaussian likelihood), None while untried."""
        m, w = self._prior_mean[arm], self._prior_weight[arm]
        count = self._n[arm] + w
        if count <= 0.0:
            return None
        variance = self.noise_variance() if noise_variance is None else noise_variance
        return (self._s[arm] + m * w) / count, math.sqrt(variance / count)

    # ------------------------------------------------------------------ hooks
    def _check_priors(self, means: list[float], weights: list[float]) -> None:
        if self.likelihood != "Bernoulli":
            return
        for index, (mean, weight) in enumerate(zip(means, weights, strict=True)):
            if weight > 0.0 and not 0.0 <= mean <= 1.0:
                raise PolicyConfigError(
                    f"a Bernoulli prior mean must be in [0, 1], got {mean} for arm {index}",
                    field=f"arms[{index}].prior",
                )

    def _check_stats(self, view: SufficientStats) -> None:
        if self.likelihood == "Bernoulli" and ((view.s < -1e-9).any() or (view.s > view.n + 1e-9).any()):
            raise PolicyInputError("Bernoulli stats need 0 <= reward sum <= pulls for every arm", field="stats.s")

    def _check_reward(self, reward: float) -> float:
        value = super()._check_reward(reward)
        if self.likelihood == "Bernoulli" and not 0.0 <= value <= 1.0:
            raise PolicyInputError(f"the Bernoulli likelihood needs rewards in [0, 1], got {value}", field="reward")
        return value

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        if self.likelihood == "Bernoulli":
            return self._beta_max.probabilities(eligible)
        variance = self.noise_variance()
        parameters = [self.gaussian_parameters(a, variance) for a in eligible]
        untried = sum(1 for p in parameters if p is None)
        if untried:
            return [1.0 / untried if p is None else 0.0 for p in parameters]
        means = [p[0] for p in parameters if p is not None]
        sds = [p[1] for p in parameters if p is not None]
        return self._gaussian_max(means, sds)

    def _learn(self, arm: int, reward: float, x: FloatArray | None) -> None:
        self._pending.add_unchecked(arm, reward, None)
        self._n[arm] += 1.0
        self._s[arm] += reward
        self._s2[arm] += reward * reward
        if self.likelihood == "Bernoulli":
            self._beta_max.set_arm(arm, *self.beta_parameters(arm))

    def _rebuild(self) -> None:
        view = self._view
        self._n, self._s, self._s2 = view.n.tolist(), view.s.tolist(), view.s2.tolist()
        if self.likelihood == "Bernoulli":
            for arm in range(self._k):
                parameters = self.beta_parameters(arm)
                if parameters != self._beta_max.parameters(arm):
                    self._beta_max.set_arm(arm, *parameters)

    def _posterior(self, arm: int) -> dict[str, float | list[float]]:
        if self.likelihood == "Bernoulli":
            alpha, beta = self.beta_parameters(arm)
            return {"alpha": alpha, "beta": beta, "mean": alpha / (alpha + beta)}
        parameters = self.gaussian_parameters(arm)
        if parameters is None:
            return {}
        return {"mean": parameters[0], "sd": parameters[1]}
