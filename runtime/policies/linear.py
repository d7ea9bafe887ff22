"""Contextual linear policies: LinUCB and linear Thompson sampling over per-arm ridge regressions.

Each arm ``a`` fits ``r - m_a ≈ θ_aᵀx`` (``m_a`` is the prior mean, 0 without a prior) by ridge regression:

    A_a = (λ + w_a)·I + Σ x xᵀ,    b_a = Σ (r - m_a)·x = Σ r x - m_a·Σ x,    θ_a = A_a⁻¹ b_a

with ``λ`` the ``regularization`` and ``w_a`` the prior weight. The policy caches ``A_a⁻¹`` and ``θ_a`` for every
arm in stacked arrays and updates them per reward with Sherman-Morrison (``O(d²)``, no refit); every
``refresh_interval`` updates of an arm its inverse is recomputed exactly from the statistics to bound round-off
drift.

Scoring all arms for one context is one matrix-vector product. Next to ``θ_a`` the policy keeps a factor ``G_a`` of
each inverse, ``G_aᵀG_a = A_a⁻¹`` (the transposed Cholesky factor), so that ``xᵀA_a⁻¹x = ‖G_a x‖²``: one product of
the stacked ``[G_1; …; G_K; θ_1ᵀ; …; θ_Kᵀ]`` with ``x`` gives every arm's ``G_a x`` and ``θ_aᵀx``, and the widths are
``math.hypot`` over each arm's ``d`` values. A reward marks its arm's factor stale; stale factors are recomputed in
one batched call by :meth:`LinearPolicy.prepare` (which the decision service calls after each batch of rewards) or,
failing that, by the next decision.
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
        self._a_inv: FloatArray = np.zeros((k, d, d))
        # Every factor G_a (as K·d rows) and every θ_a (K more rows) in one matrix, so that one matrix-vector product
        # gives both G_a x and θ_aᵀx for all arms; _factor and _theta are views into it.
        self._scoring: FloatArray = np.zeros((k * d + k, d))
        self._factor: FloatArray = self._scoring[: k * d].reshape(k, d, d)
        self._theta: FloatArray = self._scoring[k * d :]
        self._offset: FloatArray = np.array(self._prior_mean)
        self._has_offset = any(m != 0.0 for m in self._prior_mean)
        self._since_exact = [0] * k
        self._stale: set[int] = set()
        # The buffer every decision's product is written into: [G_a x for all arms (K·d) | θ_aᵀx (K)].
        self._projection: FloatArray = np.empty(k * d + k)
        self._arm_rows = [slice(a * d, (a + 1) * d) for a in range(k)]
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

    def prepare(self, eligible: Eligible = None) -> None:
        """Recompute the factors of the arms that learned since the last decision, off the decide path."""
        if self._stale:
            self._refactor()

    def _project(self, x: FloatArray) -> list[float]:
        """``[G_a x for every arm | θ_aᵀx for every arm]`` as floats: one matrix-vector product into a fixed buffer.

        ``ndarray.dot`` with a positional ``out`` rather than ``matmul`` or ``np.dot(..., out=)``: the same BLAS call
        with the least overhead per call.
        """
        if self._stale:
            self._refactor()
        projection = self._projection
        self._scoring.dot(x, projection)
        result: list[float] = projection.tolist()
        return result

    def _score_parts(self, x: FloatArray) -> tuple[list[float], list[float]]:
        """``(mean, width)`` for every arm: ``m_a + θ_aᵀx`` and ``sqrt(xᵀA_a⁻¹x) = ‖G_a x‖``.

        One matrix-vector product, then plain Python over the K arms (cheaper than more numpy calls at small K).
        """
        projected = self._project(x)
        hypot = math.hypot
        width = [hypot(*projected[rows]) for rows in self._arm_rows]
        mean = projected[self._k * self._d :]
        if self._has_offset:
            mean = [m + offset for m, offset in zip(mean, self._prior_mean, strict=True)]
        return mean, width

    def _refactor(self) -> None:
        """Recompute ``G_a`` (``G_aᵀG_a = A_a⁻¹``) for every stale arm, in one batched Cholesky when it succeeds."""
        arms = sorted(self._stale)
        self._stale.clear()
        try:
            lower = np.linalg.cholesky(self._a_inv[arms])
        except np.linalg.LinAlgError:
            # Round-off left some inverse not numerically positive definite: a symmetric square root of its
            # positive part gives the same widths up to that round-off, per arm.
            for arm in arms:
                self._factor[arm] = _root(self._a_inv[arm])
            return
        self._factor[arms] = np.swapaxes(lower, 1, 2)

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
        self._stale.add(arm)

    def _refresh_arm(self, arm: int) -> None:
        a = self._total.A[arm] + self._pending.A[arm]
        b = self._total.b[arm] + self._pending.b[arm]
        sx = self._total.sx[arm] + self._pending.sx[arm]
        a[np.diag_indices_from(a)] += self.regularization + self._prior_weight[arm]
        self._a_inv[arm] = np.linalg.inv(a)
        self._theta[arm] = self._a_inv[arm] @ (b - self._prior_mean[arm] * sx)
        self._since_exact[arm] = 0
        self._stale.add(arm)

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
        self._stale.update(range(self._k))
        self._refactor()

    def _posterior(self, arm: int) -> dict[str, float | list[float]]:
        return {
            "theta": self._theta[arm].tolist(),
            "intercept": self._prior_mean[arm],
            "ridge": self.regularization + self._prior_weight[arm],
        }


def _root(inverse: FloatArray) -> FloatArray:
    """A ``G`` with ``GᵀG`` the positive part of the symmetric ``inverse``: ``diag(sqrt(max(w, 0)))·Vᵀ``."""
    eigenvalues, vectors = np.linalg.eigh(inverse)
    root: FloatArray = np.sqrt(np.clip(eigenvalues, 0.0, None))[:, None] * vectors.T
    return root


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
        """``m_a + θ_aᵀx + alpha·sqrt(xᵀA_a⁻¹x)`` for every arm (one product; see :meth:`_score_parts`)."""
        if self._stale:
            self._refactor()
        projection = self._projection
        self._scoring.dot(x, projection)
        projected: list[float] = projection.tolist()
        mean = projected[self._k * self._d :]
        if self._has_offset:
            mean = [m + offset for m, offset in zip(mean, self._prior_mean, strict=True)]
        alpha = self.alpha
        hypot = math.hypot
        return [m + alpha * hypot(*projected[rows]) for m, rows in zip(mean, self._arm_rows, strict=True)]

    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        assert x is not None
        scores = self._scores(x)
        if len(eligible) < self._k:
            scores = [scores[a] for a in eligible]
        return split_ties(scores, 1.0, 0.0)

    def choose(self, x: FloatArray | None, eligible: Eligible = None) -> tuple[int, tuple[float, ...]]:
        # The decision service's path over all arms: the scores, then what `_best` does for a single best arm,
        # inlined (a Python call costs about as much as the matrix-vector product), then the draw.
        if eligible is not None or x is None:
            return super().choose(x, eligible)
        scores = self._scores(x)
        best = max(scores)
        if scores.count(best) == 1:
            cumulative, _, vector = self._one_hot[scores.index(best)]
            return self._draw(cumulative), vector
        cumulative, indices, vector = self._best(scores)
        return indices[self._draw(cumulative)], vector

    def _floored(
        self, context: FloatArray | None, eligible: Eligible
    ) -> tuple[list[float], list[int], tuple[float, ...]]:
        if eligible is None and context is not None:
            return self._best(self._scores(context))
        return super()._floored(context, eligible)

    def _best(self, scores: list[float]) -> tuple[list[float], list[int], tuple[float, ...]]:
        """The floored vector over all arms for these scores.

        It depends only on which arms share the best score: one of K with a single best arm, computed once; ties
        (e.g. every arm before any reward) are kept in a small memo. The decision then costs the scores and an argmax.
        """
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
