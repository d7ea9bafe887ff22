"""The policy contract shared by every algorithm: decide, update, share state, describe.

A :class:`Policy` is transport-free and single-threaded: the service owns one per DecisionPolicy generation and calls
it from one thread (or under a lock). Calls that fail raise :class:`~croupier.runtime.policies.errors.PolicyInputError`
and leave the policy unchanged.

Decisions. :meth:`Policy.decide` computes the action-probability vector over the eligible arms, applies the
``min_probability`` floor (:func:`~croupier.runtime.policies.floor.apply_floor`: arms below it are raised to it,
the mass comes proportionally from the others, a vector that already satisfies it is kept as is), then samples the
arm *from that vector*, so the logged propensity is exactly the probability the arm was chosen with: the property
off-policy evaluation needs.

State. Everything learned lives in additive :class:`~croupier.runtime.policies.stats.SufficientStats`. The policy
keeps the total it was last given (:meth:`Policy.replace`) plus the *pending* delta of rewards
it learned since the last :meth:`Policy.take_delta`; its view is their sum. A replica shares state with::

    delta = policy.take_delta()        # what this replica learned since its last push
    store.add(delta)                   # e.g. element-wise HINCRBYFLOAT of delta.to_flat()
    policy.replace(store.total())      # the total must include every delta taken so far

Rewards learned between ``take_delta`` and ``replace`` are kept (they stay pending and go out with the next delta).
Priors and hyper-parameters are configuration, never part of the statistics.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import ClassVar, NamedTuple, TypeAlias

import numpy as np
import numpy.typing as npt

from .errors import PolicyConfigError, PolicyInputError
from .floor import apply_floor
from .stats import FloatArray, SufficientStats

__all__ = [
    "ArmPrior",
    "ArmSummary",
    "Decision",
    "Eligible",
    "Policy",
    "PriorsInput",
]

Eligible: TypeAlias = Sequence[int] | npt.NDArray[np.bool_] | npt.NDArray[np.integer] | None
"""Candidate arms for one request: ``None`` (all arms), arm indices, or a boolean mask of length ``n_arms``."""

# Uniforms drawn per call to the generator (decide consumes one per decision).
_UNIFORM_BLOCK = 256


class ArmPrior(NamedTuple):
    """``weight`` pseudo-observations with mean reward ``mean`` (configuration, not state).

    How each algorithm reads it: Bernoulli Thompson sampling starts from ``Beta(1 + mean·weight,
    1 + (1 - mean)·weight)``; ε-greedy, UCB1, softmax and Gaussian Thompson sampling add ``weight`` pseudo-pulls with
    reward sum ``mean·weight``; LinUCB and LinearThompson predict ``mean`` before any data (they regress ``r - mean``)
    and add ``weight`` to the ridge regularization, pulling the coefficients harder toward "predict ``mean``".
    """

    mean: float
    weight: float


PriorsInput: TypeAlias = Sequence[ArmPrior | tuple[float, float] | None] | Mapping[str, ArmPrior | tuple[float, float]]
"""Priors per arm: a sequence aligned with the arms (``None`` = no prior) or a mapping from arm name."""


class Decision(NamedTuple):
    """One decision.

    ``probabilities`` has one entry per arm of the policy (``n_arms``, in arm order), 0 for arms that were not
    eligible, floored entries summing to 1 over the eligible arms; ``probability`` is ``probabilities[arm]``, the
    propensity to log. A tuple of floats: immutable (non-contextual policies share it between decisions until the
    state changes), ready for JSON, ``numpy.asarray`` when you need an array.
    """

    arm: int
    probability: float
    probabilities: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """What ``/v1/stats`` shows for one arm.

    ``pulls`` and ``reward_sum`` count observed rewards only (priors excluded); ``mean`` is ``reward_sum / pulls``
    (None before the first reward); ``posterior`` holds the algorithm's own parameters (for example ``alpha``/``beta``
    for Bernoulli Thompson sampling, ``theta`` for linear policies), priors included.
    """

    arm: str
    index: int
    pulls: int
    reward_sum: float
    mean: float | None
    posterior: dict[str, float | list[float]] = field(default_factory=dict)


def check_min_probability(min_probability: float, n_arms: int) -> float:
    """Validate the exploration floor: finite, ≥ 0 and ``n_arms · min_probability ≤ 1``."""
    value = float(min_probability)
    if not math.isfinite(value) or value < 0.0:
        raise PolicyConfigError(
            f"min_probability must be a finite number >= 0, got {min_probability!r}", field="minProbability"
        )
    if n_arms * value > 1.0 + 1e-12:
        raise PolicyConfigError(
            f"min_probability {value} is too large for {n_arms} arms: {n_arms} x {value} = {n_arms * value:.6g} > 1",
            field="minProbability",
        )
    return value


class Policy(ABC):
    """Base class of every bandit policy; see the module docstring for the decision and state contracts.

    Subclasses implement :meth:`_base_probabilities` (the unfloored vector over the eligible arms), :meth:`_learn`
    (incremental cache update for one observation), :meth:`_rebuild` (recompute caches from :attr:`_view` totals)
    and :meth:`_posterior`.
    """

    algorithm: ClassVar[str] = ""
    contextual: ClassVar[bool] = False

    def __init__(
        self,
        arms: Sequence[str],
        *,
        dimension: int = 0,
        priors: PriorsInput | None = None,
        min_probability: float = 0.0,
        rng: np.random.Generator | int | None = None,
    ) -> None:
        names = list(arms)
        if not names:
            raise PolicyConfigError("a policy needs at least one arm", field="arms")
        for name in names:
            if not isinstance(name, str) or not name:
                raise PolicyConfigError(f"arm names must be non-empty strings, got {name!r}", field="arms")
        if len(set(names)) != len(names):
            duplicates = sorted({name for name in names if names.count(name) > 1})
            raise PolicyConfigError(f"arm names must be unique; repeated: {duplicates}", field="arms")
        if isinstance(dimension, bool) or not isinstance(dimension, int | np.integer):
            raise PolicyConfigError(f"dimension must be an integer, got {dimension!r}", field="dimension")
        if self.contextual and dimension < 1:
            raise PolicyConfigError(
                f"{self.algorithm} is contextual: dimension must be >= 1, got {dimension}", field="dimension"
            )
        if not self.contextual and dimension != 0:
            raise PolicyConfigError(
                f"{self.algorithm} is not contextual: dimension must be 0, got {dimension}", field="dimension"
            )
        self._arms: tuple[str, ...] = tuple(names)
        self._k = len(names)
        self._d = int(dimension)
        self._min_probability = check_min_probability(min_probability, self._k)
        self._prior_mean, self._prior_weight = self._read_priors(priors)
        self._rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        self._total = SufficientStats.zeros(self._k, self._d)
        self._pending = SufficientStats.zeros(self._k, self._d)
        self._version = 0
        self._all_arms: list[int] = list(range(self._k))
        self._cache_key: tuple[int, tuple[int, ...] | None] | None = None
        self._cache_cumulative: list[float] = []
        self._cache_vector: tuple[float, ...] = ()
        self._uniforms: list[float] = []
        self._uniform_position = _UNIFORM_BLOCK

    # ------------------------------------------------------------------ properties
    @property
    def arms(self) -> tuple[str, ...]:
        """Arm names, in index order."""
        return self._arms

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return self._k

    @property
    def dimension(self) -> int:
        """Context length ``d`` (0 for non-contextual policies)."""
        return self._d

    @property
    def min_probability(self) -> float:
        """The exploration floor ``f``: every eligible arm gets at least ``f``."""
        return self._min_probability

    @property
    def priors(self) -> tuple[ArmPrior | None, ...]:
        """The configured prior per arm (None where there is none)."""
        return tuple(
            ArmPrior(m, w) if w > 0.0 else None for m, w in zip(self._prior_mean, self._prior_weight, strict=True)
        )

    @property
    def rng(self) -> np.random.Generator:
        """The generator every random choice of this policy draws from."""
        return self._rng

    @property
    def version(self) -> int:
        """Increments on every state change (update, replace); equal versions give equal probability vectors."""
        return self._version

    # ------------------------------------------------------------------ deciding
    def decide(self, x: npt.ArrayLike | None = None, eligible: Eligible = None, *, validated: bool = False) -> Decision:
        """Choose an arm for one request.

        ``x``: the context, a float vector of length :attr:`dimension` (contextual policies only; leave None
        otherwise). ``eligible``: the candidate arms (indices or a boolean mask); None means all.
        ``validated=True`` skips the checks of ``x`` for a caller that already made it a float64 vector of length
        :attr:`dimension` with finite values whose squares sum to a finite number (the decision service does).
        Returns the arm index, its probability and the full floored probability vector (see :class:`Decision`).
        """
        context: FloatArray | None = x if validated else self._check_context(x)  # type: ignore[assignment]
        arm, vector = self.choose(context, eligible)
        return Decision(arm, vector[arm], vector)

    def choose(self, x: FloatArray | None, eligible: Eligible = None) -> tuple[int, tuple[float, ...]]:
        """:meth:`decide` without its checks of ``x`` and without the :class:`Decision`: ``(arm, probabilities)``.

        For a caller that already made ``x`` what ``decide(..., validated=True)`` requires (the decision service).
        """
        cumulative, indices, vector = self._floored(x, eligible)
        return indices[self._draw(cumulative)], vector

    def _draw(self, cumulative: list[float]) -> int:
        """The position in ``cumulative`` (cumulative floored probabilities) of the sampled arm."""
        # Uniforms are drawn from the generator in blocks: one numpy call per 256 decisions instead of one each.
        position = self._uniform_position
        if position >= _UNIFORM_BLOCK:
            self._uniforms = self._rng.random(_UNIFORM_BLOCK).tolist()
            position = 0
        self._uniform_position = position + 1
        # The first arm whose cumulative probability exceeds u: chosen with exactly its probability, and never an arm
        # with probability 0 (its cumulative value equals its predecessor's).
        chosen = bisect_right(cumulative, self._uniforms[position])
        if chosen == len(cumulative):  # u at or above a total that rounded below 1: the last arm that can be chosen
            chosen = max(i for i, c in enumerate(cumulative) if c > (cumulative[i - 1] if i else 0.0))
        return chosen

    def prepare(self, eligible: Eligible = None) -> None:
        """Compute and cache the decision vector of a non-contextual policy now (linear policies: their factors).

        A non-contextual vector depends on the state only, so it is computed once per state change and reused by
        every decision until the next change. :meth:`update` stays cheap and leaves that work to the next decision;
        a service that applies rewards off the request path can call ``prepare()`` after each batch of rewards so
        that decisions (over the same ``eligible`` set) never pay for it.
        """
        if not self.contextual:
            self._floored(None, eligible)

    def probabilities(self, x: npt.ArrayLike | None = None, eligible: Eligible = None) -> FloatArray:
        """The floored probability vector :meth:`decide` would sample from (length ``n_arms``), without choosing."""
        return np.array(self._floored(self._check_context(x), eligible)[2])

    def _floored(
        self, context: FloatArray | None, eligible: Eligible
    ) -> tuple[list[float], list[int], tuple[float, ...]]:
        """``(cumulative floored probabilities over indices, eligible indices, full vector)`` for a checked context."""
        indices, key = self._eligible(eligible)
        if not self.contextual and self._cache_key == (self._version, key):
            return self._cache_cumulative, indices, self._cache_vector
        cumulative, vector = self._apply_floor(self._base_probabilities(context, indices), indices)
        if not self.contextual:
            self._cache_key = (self._version, key)
            self._cache_cumulative = cumulative
            self._cache_vector = vector
        return cumulative, indices, vector

    def _apply_floor(self, raw: list[float], indices: list[int]) -> tuple[list[float], tuple[float, ...]]:
        """``(cumulative floored probabilities over indices, full vector)`` of unfloored ``raw`` over ``indices``."""
        floored = apply_floor(raw, self._min_probability)
        if len(indices) == self._k:
            vector = tuple(floored)
        else:
            full = [0.0] * self._k
            for index, p in zip(indices, floored, strict=True):
                full[index] = p
            vector = tuple(full)
        return list(accumulate(floored)), vector

    # ------------------------------------------------------------------ learning
    def update(self, arm: int, reward: float, x: npt.ArrayLike | None = None) -> None:
        """Learn one reward for ``arm`` (with the context ``x`` it was decided with, for contextual policies).

        Cheap (no refit): statistics and caches are updated incrementally. Raises on an unknown arm index, a
        non-finite reward, a reward the likelihood cannot take, or a bad context; nothing changes then.
        """
        index = self._check_arm(arm)
        value = self._check_reward(reward)
        context = self._check_context(x)
        self._learn(index, value, context)
        self._version += 1

    def stats(self) -> SufficientStats:
        """The statistics this policy currently decides with (shared total plus pending delta), as a new object."""
        return self._total + self._pending

    def take_delta(self) -> SufficientStats:
        """Return what was learned since the previous call (the pending delta) and start a new one.

        The local view does not change: the delta moves into the policy's notion of the total.
        """
        delta = self._pending
        self._total.merge(delta)
        self._pending = SufficientStats.zeros(self._k, self._d)
        return delta

    def replace(self, total: SufficientStats) -> None:
        """Set the shared total (which must include every delta taken from this policy); pending rewards stay.

        Raises :class:`PolicyInputError` (``field="stats"``) and changes nothing if the result is not a state this
        policy can hold (other shapes, NaN/inf, negative counts, Bernoulli successes outside ``[0, n]``).
        """
        self._check_stats_shape(total)
        self._check_view(total)
        self._total = total.copy()
        self._version += 1
        self._rebuild()

    def _check_view(self, total: SufficientStats) -> None:
        view = total + self._pending
        for name in ("n", "s", "s2", "A", "b", "sx"):
            if not np.isfinite(getattr(view, name)).all():
                raise PolicyInputError(f"stats field {name!r} contains NaN or infinite values", field=f"stats.{name}")
        if (view.n < 0.0).any() or (view.s2 < 0.0).any():
            raise PolicyInputError("stats have negative pull counts or sums of squares", field="stats.n")
        self._check_stats(view)

    def _check_stats(self, view: SufficientStats) -> None:  # noqa: B027 - optional hook
        """Algorithm-specific checks of a state about to be adopted; none by default."""

    @property
    def _view(self) -> SufficientStats:
        return self._total + self._pending

    # ------------------------------------------------------------------ describing
    def describe(self) -> list[ArmSummary]:
        """Per-arm pulls, reward sum, mean and posterior parameters (for the stats endpoint)."""
        view = self._view
        summaries = []
        for index, name in enumerate(self._arms):
            pulls = int(view.n[index])
            reward_sum = float(view.s[index])
            summaries.append(
                ArmSummary(
                    arm=name,
                    index=index,
                    pulls=pulls,
                    reward_sum=reward_sum,
                    mean=reward_sum / pulls if pulls else None,
                    posterior=self._posterior(index),
                )
            )
        return summaries

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _base_probabilities(self, x: FloatArray | None, eligible: list[int]) -> list[float]:
        """Unfloored probabilities over ``eligible`` (aligned with it, summing to 1)."""

    @abstractmethod
    def _learn(self, arm: int, reward: float, x: FloatArray | None) -> None:
        """Record one validated observation in ``self._pending`` and update caches incrementally."""

    @abstractmethod
    def _rebuild(self) -> None:
        """Recompute every cache from ``self._view``."""

    @abstractmethod
    def _posterior(self, arm: int) -> dict[str, float | list[float]]:
        """Posterior (or estimate) parameters of one arm, priors included."""

    # ------------------------------------------------------------------ validation
    def _check_arm(self, arm: int) -> int:
        if type(arm) is not int:
            if isinstance(arm, bool) or not isinstance(arm, np.integer):
                raise PolicyInputError(f"arm must be an integer index, got {arm!r}", field="arm")
            arm = int(arm)
        if not 0 <= arm < self._k:
            raise PolicyInputError(f"arm index {arm} is out of range for {self._k} arms", field="arm")
        return arm

    def _check_reward(self, reward: float) -> float:
        try:
            value = float(reward)
        except (TypeError, ValueError) as exc:
            raise PolicyInputError(f"reward must be a number, got {reward!r}", field="reward") from exc
        if not math.isfinite(value):
            raise PolicyInputError(f"reward must be finite, got {value}", field="reward")
        return value

    def _check_context(self, x: npt.ArrayLike | None) -> FloatArray | None:
        d = self._d
        if d == 0:
            if x is not None and np.size(x) != 0:
                raise PolicyInputError(f"{self.algorithm} is not contextual; do not pass a context", field="context")
            return None
        if x is None:
            raise PolicyInputError(f"{self.algorithm} needs a context vector of length {d}", field="context")
        if type(x) is np.ndarray and x.dtype == np.float64:
            vector: FloatArray = x
        else:
            try:
                vector = np.asarray(x, dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise PolicyInputError(f"context must be a vector of numbers: {exc}", field="context") from exc
        if vector.shape != (d,):
            raise PolicyInputError(f"context must have length {d}, got shape {vector.shape}", field="context")
        # One dot product detects NaN/inf anywhere (they propagate); only then pay for the precise check.
        if not math.isfinite(vector.dot(vector)):
            if not np.isfinite(vector).all():
                raise PolicyInputError("context contains NaN or infinite values", field="context")
            raise PolicyInputError("context values are too large (|x|² overflows)", field="context")
        return vector

    def _eligible(self, eligible: Eligible) -> tuple[list[int], tuple[int, ...] | None]:
        if eligible is None:
            return self._all_arms, None
        k = self._k
        if isinstance(eligible, np.ndarray) and eligible.dtype == np.bool_:
            if eligible.shape != (k,):
                raise PolicyInputError(f"eligible mask must have shape ({k},), got {eligible.shape}", field="eligible")
            indices = np.flatnonzero(eligible).tolist()
        else:
            indices = []
            for item in eligible:
                if isinstance(item, bool | np.bool_) or not isinstance(item, int | np.integer):
                    raise PolicyInputError(f"eligible arms must be integer indices, got {item!r}", field="eligible")
                if not 0 <= item < k:
                    raise PolicyInputError(f"eligible arm index {item} is out of range for {k} arms", field="eligible")
                indices.append(int(item))
            if len(set(indices)) != len(indices):
                raise PolicyInputError(f"eligible arm indices repeat: {indices}", field="eligible")
            indices.sort()
        if not indices:
            raise PolicyInputError("no eligible arm: at least one arm must be a candidate", field="eligible")
        if len(indices) == k:
            return self._all_arms, None
        return indices, tuple(indices)

    def _check_stats_shape(self, stats: SufficientStats) -> None:
        if (stats.n_arms, stats.dimension) != (self._k, self._d):
            raise PolicyInputError(
                f"stats are for arms={stats.n_arms}, dimension={stats.dimension}; "
                f"this policy has arms={self._k}, dimension={self._d}",
                field="stats",
            )

    def _read_priors(self, priors: PriorsInput | None) -> tuple[list[float], list[float]]:
        means = [0.0] * self._k
        weights = [0.0] * self._k
        if priors is None:
            return means, weights
        if isinstance(priors, Mapping):
            unknown = sorted(set(priors) - set(self._arms))
            if unknown:
                raise PolicyConfigError(f"priors name unknown arms: {unknown}", field="priors")
            items: list[ArmPrior | tuple[float, float] | None] = [priors.get(name) for name in self._arms]
        else:
            items = list(priors)
            if len(items) != self._k:
                raise PolicyConfigError(f"got {len(items)} priors for {self._k} arms", field="priors")
        for index, item in enumerate(items):
            if item is None:
                continue
            try:
                mean, weight = (float(v) for v in item)
            except (TypeError, ValueError) as exc:
                raise PolicyConfigError(
                    f"prior of arm {self._arms[index]!r} must be (mean, weight), got {item!r}",
                    field=f"arms[{index}].prior",
                ) from exc
            if not (math.isfinite(mean) and math.isfinite(weight)) or weight < 0.0:
                raise PolicyConfigError(
                    f"prior of arm {self._arms[index]!r} needs a finite mean and a finite weight >= 0, "
                    f"got mean={mean}, weight={weight}",
                    field=f"arms[{index}].prior",
                )
            means[index], weights[index] = mean, weight
        self._check_priors(means, weights)
        return means, weights

    def _check_priors(self, means: list[float], weights: list[float]) -> None:  # noqa: B027 - optional hook
        """Algorithm-specific prior checks (Bernoulli needs means in [0, 1]); none by default."""
