"""Contextual linear policies: LinUCB and linear Thompson sampling over per-arm ridge regressions.

Each arm ``a`` fits ``r - m_a ≈ θ_aᵀx`` (``m_a`` is the prior mean, 0 without a prior) by ridge regression:

    A_a = (λ + w_a)·I + Σ x xᵀ,    b_a = Σ (r - m_a)·x = Σ r x - m_a·Σ x,    θ_a = A_a⁻¹ b_a

with ``λ`` the ``regularization`` and ``w_a`` the prior weight. The policy caches ``A_a⁻¹`` and ``θ_a`` for every
arm in two stacked arrays and updates them per reward with Sherman-Morrison (``O(d²)``, no refit); every
``refresh_interval`` updates of an arm its inverse is recomputed exactly from the statistics to bound round-off
drift. Scoring all arms for one context is three batched matrix-vector products.
"""

from __future__ import annotations

import math
from abc import ABC
from collections.abc import Sequence

import numpy as np

from .base import Eligible, Policy, PriorsInput
from .counting import split_ties
from .errors import PolicyConfigError
from .quadrature import DEFAULT_QUADRATURE_POINTS, GaussianMaxProbability, QuadratureRule
from .stats import FloatArray

__all__ = ["LinUCB", "LinearPolicy", "LinearThompson"]

DEFAULT_REFRESH_INTERVAL = 1000
_TIED_MEMO = 64


class LinearPolicy(Policy, ABC):
    """Per-arm ridge regression with incrementally maintained inverses; see the module docstring."""

    contextual = True

    def __init__(
        self,
        arms: Sequence[str],
        *,
        dimension: int,
        regularization: float = 1.0,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
        refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        if not (isinstance(regularization, int | float) and math.isfinite(regularization) and regularization > 0.0):
            raise PolicyConfigError(
                f"regularization must be a finite number > 0, got {regularization!r}", field="params.regularization"
            )
        if isinstance(refresh_interval, bool) or not isinstance(refresh_interval, int) or refresh_interval < 1:
            raise PolicyConfigError(f"refresh_interval must be an integer >= 1, got {refresh_interval!r}")
        self.regularization = float(regularization)
        self.refresh_interval = refresh_interval
        super().__init__(arms, dimension=dimension, priors=priors, min_probability=min_probability, rng=rng)
        k, d = self._k, self._d
        # Every A_a⁻¹ (as K·d rows) and every θ_a (K more rows) in one matrix, so that one matrix-vector product
        # gives both A_a⁻¹x and θ_aᵀx for all arms; _a_inv and _theta are views into it.
        self._model: FloatArray = np.zeros((k * d + k, d))
        self._a_inv: FloatArray = self._model[: k * d].reshape(k, d, d)
        self._theta: FloatArray = self._model[k * d :]
        self._offset: FloatArray = np.array(self._prior_mean)
        self._has_offset = any(m != 0.0 for m in self._prior_mean)
        self._since_exact = [0] * k
        # One work buffer reused by every decision: [A_a⁻¹x for all arms (K·d) | θ_aᵀx (K) | xᵀA_a⁻¹x (K)], with fixed
        # views for the two products to write into, so that one `tolist` reads both results.
        self._work: FloatArray = np.empty(k * d + 2 * k)
        self._projection: FloatArray = self._work[: k * d + k]
        self._projected_inverse: FloatArray = self._work[: k * d].reshape(k, d)
        self._quadratic: FloatArray = self._work[k * d + k :]
        self._results: FloatArray = self._work[k * d :]
        self._rebuild()

    # ------------------------------------------------------------------ model access
    def inverse(self, arm: int) -> FloatArray:
        """A copy of the cached ``A_arm⁻¹`` (regularization and prior weight included)."""
        inverse: FloatArray = self._a_inv[arm].copy()
        return inverse

    def coefficients(self, arm: int) -> FloatArray:
        """A copy of the cached ``θ_arm`` (the model predicts ``prior mean + θᵀx``)."""
        theta: FloatArray = self._theta[arm].copy()
        return theta

    def _score_parts(self, x: FloatArray) -> tuple[list[float], list[float]]:
        """``(mean, width)`` for every arm: ``m_a + θ_aᵀx`` and ``sqrt(xᵀA_a⁻¹x)``.

        Two matrix-vector products into preallocated buffers, then plain Python over the K values (cheaper than more
        numpy calls at small K). ``np.dot`` rather than ``matmul``: the same BLAS call with less overhead per call.
        """
        np.dot(self._model, x, out=self._projection)
        np.dot(self._projected_inverse, x, out=self._quadratic)
        k = self._k
        results = self._results.tolist()
        mean = results[:k]
        # Round-off can leave a tiny negative quadratic form: clamp before the square root.
        sqrt = math.sqrt
        width = [sqrt(q) if q > 0.0 else 0.0 for q in results[k:]]
        if self._has_offset:
            mean = [m + offset for m, offset in zip(mean, self._prior_mean, strict=True)]
        return mean, width

    # ------------------------------------------------------------------ hooks
    def _learn(self, arm: int, reward: float, x: FloatArray | None) -> None:
        assert x is not None
        outer = np.multiply.outer(x, x)
        self._pending.add_unchecked(arm, reward, x, outer)
        self._since_exact[arm] += 1
        if self._since_exact[arm] >= self.refresh_interval:
            self._refresh_arm(arm)
            return
        # Sherman-Morrison: (A + xxᵀ)⁻¹ = A⁻¹ - (A⁻¹x)(A⁻¹x)ᵀ / (1 + xᵀA⁻¹x); then the recursive least-squares step
        # θ ← θ + k·(r - m - θᵀx) with gain k = (A + xxᵀ)⁻¹x = A⁻¹x / (1 + xᵀA⁻¹x).
        a_inv = self._a_inv[arm]
        u = a_inv @ x
        gain = u / (1.0 + float(x @ u))
        np.multiply.outer(gain, u, out=outer)
        a_inv -= outer
        theta = self._theta[arm]
        theta += gain * (reward - self._prior_mean[arm] - float(theta @ x))

    def _refresh_arm(self, arm: int) -> None:
        a = self._total.A[arm] + self._pending.A[arm]
        b = self._total.b[arm] + self._pending.b[arm]
        sx = self._total.sx[arm] + self._pending.sx[arm]
        a[np.diag_indices_from(a)] += self.regularization + self._prior_weight[arm]
        self._a_inv[arm] = np.linalg.inv(a)
        self._theta[arm] = self._a_inv[arm] @ (b - self._prior_mean[arm] * sx)
        self._since_exact[arm] = 0

    def _rebuild(self) -> None:
        view = self._view
        ridge = self.regularization + np.array(self._prior_weight)
        a = view.A.copy()
        diagonal = np.arange(self._d)
        a[:, diagonal, diagonal] += ridge[:, None]
        self._a_inv[...] = np.linalg.inv(a)
        b = view.b - self._offset[:, None] * view.sx
        self._theta[...] = np.einsum("kij,kj->ki", self._a_inv, b)
        self._since_exact = [0] * self._k

    def _posterior(self, arm: int) -> dict[str, float | list[float]]:
        return {
            "theta": self._theta[arm].tolist(),
            "intercept": self._prior_mean[arm],
            "ridge": self.regularization + self._prior_weight[arm],
        }


class LinUCB(LinearPolicy):
    """LinUCB (Li et al., 2010, disjoint model): play ``argmax_a m_a + θ_aᵀx + alpha·sqrt(xᵀA_a⁻¹x)``.

    Ties are split equally, so the probability vector is exact (one-hot or uniform over the tied arms) before the
    floor. ``alpha`` scales the confidence width; ``regularization`` is the ridge ``λ``.
    """

    algorithm = "LinUCB"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        dimension: int,
        alpha: float = 1.0,
        regularization: float = 1.0,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
        refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
    ) -> None:
        if not (isinstance(alpha, int | float) and math.isfinite(alpha) and alpha >= 0.0):
            raise PolicyConfigError(f"alpha must be a finite number >= 0, got {alpha!r}", field="params.alpha")
        self.alpha = float(alpha)
        self._one_hot: list[tuple[list[float], list[int], tuple[float, ...]]] = []
        self._tied: dict[tuple[int, ...], tuple[list[float], list[int], tuple[float, ...]]] = {}
        super().__init__(
            arms,
            dimension=dimension,
            regularization=regularization,
            priors=priors,
            min_probability=min_probability,
            rng=rng,
            refresh_interval=refresh_interval,
        )
        indices = self._all_arms
        for arm in indices:
            cumulative, vector = self._apply_floor([1.0 if a == arm else 0.0 for a in indices], indices)
            self._one_hot.append((cumulative, indices, vector))
        cumulative, vector = self._apply_floor([1.0 / len(indices)] * len(indices), indices)
        self._all_tied = (cumulative, indices, vector)

    def _scores(self, x: FloatArray) -> list[float]:
        """``m_a + θ_aᵀx + alpha·sqrt(xᵀA_a⁻¹x)`` for every arm."""
        mean, width = self._score_parts(x)
        alpha = self.alpha
        return [m + alpha * w for m, w in zip(mean, width, strict=True)]

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        assert x is not None
        scores = self._scores(x)
        if len(eligible) < self._k:
            scores = [scores[a] for a in eligible]
        return split_ties(scores, 1.0, 0.0)

    def _floored(
        self, context: FloatArray | None, eligible: Eligible
    ) -> tuple[list[float], list[int], tuple[float, ...]]:
        # Over all arms the floored vector depends only on which arms share the best score: one of K with a single
        # best arm, computed once; ties (e.g. every arm before any reward) are kept in a small memo. The decision then
        # costs the scores and an argmax.
        if eligible is None and context is not None:
            scores = self._scores(context)
            best = max(scores)
            ties = scores.count(best)
            if ties == 1:
                return self._one_hot[scores.index(best)]
            if ties == self._k:
                return self._all_tied
            tied = tuple(i for i, score in enumerate(scores) if score == best)
            floored = self._tied.get(tied)
            if floored is None:
                indices = self._all_arms
                cumulative, vector = self._apply_floor(split_ties(scores, 1.0, 0.0), indices)
                floored = (cumulative, indices, vector)
                if len(self._tied) >= _TIED_MEMO:
                    self._tied.clear()
                self._tied[tied] = floored
            return floored
        return super()._floored(context, eligible)


class LinearThompson(LinearPolicy):
    """Linear Thompson sampling (Agrawal & Goyal, 2013) with noise scale ``v``.

    Each arm's coefficients have posterior ``N(θ_a, v²·A_a⁻¹)``, so its score for context ``x`` is univariate normal
    with mean ``m_a + θ_aᵀx`` and variance ``v²·xᵀA_a⁻¹x``, independent across arms. The probability that each arm's
    score is the largest is computed by quadrature
    (:class:`~croupier.runtime.policies.quadrature.GaussianMaxProbability`, ≈1e-3 accuracy) and the arm is sampled
    from that vector after the floor: the choice follows LinTS up to the quadrature error and the logged propensity is
    exact. ``v`` should be about the reward noise's standard deviation.
    """

    algorithm = "LinearThompson"

    def __init__(
        self,
        arms: Sequence[str],
        *,
        dimension: int,
        v: float = 0.25,
        regularization: float = 1.0,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
        refresh_interval: int = DEFAULT_REFRESH_INTERVAL,
        quadrature_points: int = DEFAULT_QUADRATURE_POINTS,
    ) -> None:
        if not (isinstance(v, int | float) and math.isfinite(v) and v > 0.0):
            raise PolicyConfigError(f"v must be a finite number > 0, got {v!r}", field="params.v")
        self.v = float(v)
        self._max_probability = GaussianMaxProbability(QuadratureRule(quadrature_points))
        super().__init__(
            arms,
            dimension=dimension,
            regularization=regularization,
            priors=priors,
            min_probability=min_probability,
            rng=rng,
            refresh_interval=refresh_interval,
        )

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        assert x is not None
        means, width = self._score_parts(x)
        v = self.v
        sds = [v * w for w in width]
        if len(eligible) < self._k:
            means = [means[a] for a in eligible]
            sds = [sds[a] for a in eligible]
        return self._max_probability(means, sds)
