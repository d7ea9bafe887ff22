"""What the decision service needs from a policy, and the adapter over `croupier.runtime.policies`.

The adapter owns the one thing the policy does not: the intercept. With `spec.context.intercept` the policy's
dimension is the request's context size plus one, and a constant 1 is appended to every context it sees. Decision
records keep the context as the client sent it (without the intercept): `vector` builds the policy's input from a
request's values, and `learn` takes the context as recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from croupier.runtime.policies.base import Policy
from croupier.runtime.policies.stats import SufficientStats
from croupier.runtime.policy_file import ServedPolicy


class Engine(Protocol):
    """A bandit policy as the service drives it: decide, learn, and expose additive sufficient statistics."""

    def vector(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        """The policy's input for a request's context values (in feature order, validated)."""
        ...

    def decide(self, x: np.ndarray | None, eligible: list[int] | None) -> tuple[int, tuple[float, ...]]:
        """The chosen arm index and the probability of every arm (0 for arms outside `eligible`), as floats.

        `x` is the policy input made by `vector` (None for non-contextual policies)."""
        ...

    def distribution(self, x: np.ndarray | None, eligible: list[int] | None) -> tuple[float, ...]:
        """The vector `decide` would sample from for this input (every arm, 0 outside `eligible`), without choosing."""
        ...

    def learn(self, arm: int, reward: float, context: np.ndarray | None) -> None: ...

    @property
    def stats(self) -> SufficientStats:
        """A snapshot of the learned statistics (total plus pending)."""
        ...

    def replace_stats(self, stats: SufficientStats) -> None:
        """Adopt these statistics as the total (a checkpoint, or the shared total from Redis)."""
        ...

    def delta_of(self, arm: int, reward: float, context: np.ndarray | None) -> SufficientStats:
        """The statistics one observation adds (what a Redis store pushes), without learning it."""
        ...

    def adopt_total(self, total: SufficientStats) -> None:
        """Redis mode: replace the view by the shared total; local rewards were pushed already, drop them."""
        ...

    def probabilities(self) -> Sequence[float] | None:
        """Current probability of each arm for a non-contextual policy (None for contextual ones)."""
        ...

    def prepare(self) -> None:
        """Compute the decision vector now, off the decide path (after a batch of rewards or a shared-state sync)."""
        ...

    def posteriors(self) -> list[dict[str, Any]]:
        """Per-arm algorithm parameters for /v1/stats."""
        ...


class PolicyEngine:
    """`Engine` over a `croupier.runtime.policies.base.Policy`."""

    def __init__(self, policy: Policy, *, intercept: bool = False) -> None:
        self.policy = policy
        self.contextual = policy.contextual
        self._intercept = intercept and policy.contextual

    def _x(self, context: np.ndarray | None) -> np.ndarray | None:
        if context is None or not self.contextual:
            return None
        return self.vector(context) if self._intercept else context

    def vector(self, values: Sequence[float] | np.ndarray) -> np.ndarray:
        # One array construction (a list append is cheaper than any numpy call at these sizes).
        return np.array([*values, 1.0] if self._intercept else values, dtype=np.float64)

    def decide(self, x: np.ndarray | None, eligible: list[int] | None) -> tuple[int, tuple[float, ...]]:
        # `x` comes from `vector`: float64 values validated by the request schema (finite, |v| <= 1e12).
        return self.policy.choose(x, eligible)

    def distribution(self, x: np.ndarray | None, eligible: list[int] | None) -> tuple[float, ...]:
        return tuple(self.policy.probabilities(x, eligible).tolist())

    def learn(self, arm: int, reward: float, context: np.ndarray | None) -> None:
        self.policy.update(arm, reward, self._x(context))

    @property
    def stats(self) -> SufficientStats:
        return self.policy.stats()

    def replace_stats(self, stats: SufficientStats) -> None:
        self.policy.replace(stats)

    def delta_of(self, arm: int, reward: float, context: np.ndarray | None) -> SufficientStats:
        delta = SufficientStats.zeros(self.policy.n_arms, self.policy.dimension)
        delta.add(arm, reward, self._x(context))
        return delta

    def adopt_total(self, total: SufficientStats) -> None:
        self.policy.take_delta()
        self.policy.replace(total)
        self.policy.prepare()

    def prepare(self) -> None:
        self.policy.prepare()

    def probabilities(self) -> Sequence[float] | None:
        return None if self.contextual else [float(p) for p in self.policy.probabilities()]

    def posteriors(self) -> list[dict[str, Any]]:
        return [dict(summary.posterior) for summary in self.policy.describe()]


def policy_dimension(served: ServedPolicy) -> int:
    """Length of the vectors the policy sees: the context size, plus one with the intercept."""
    if not served.contextual or served.spec.context is None:
        return 0
    return served.context_size + (1 if served.spec.context.intercept else 0)


def build_engine(served: ServedPolicy, *, seed: int | None = None) -> Engine:
    """The served policy's algorithm, built by `croupier.runtime.policies.build_policy` from the spec."""
    from croupier.runtime.policies import build_policy  # noqa: PLC0415 - keeps the module importable alone

    spec = served.spec
    policy = build_policy(
        spec.algorithm.type,
        spec.algorithm.params(),
        spec.arm_names,
        priors=[(arm.prior.mean, arm.prior.weight) if arm.prior else None for arm in spec.arms],
        dimension=policy_dimension(served),
        min_probability=spec.exploration.min_probability,
        seed=seed,
    )
    intercept = bool(served.contextual and spec.context is not None and spec.context.intercept)
    return PolicyEngine(policy, intercept=intercept)
