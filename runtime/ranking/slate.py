"""The slate maths: sequential sampling without replacement from one probability vector, exact per position.

Given the vector ``p`` a policy decides one request with (every arm of the policy, 0 outside the eligible arms, the
exploration floor ``f`` already applied) and a slate size ``k``, position ``j = 1..k`` is drawn from the arms not
placed yet, ``R_j``, with the conditional vector

    q_j(a) = floor_f( p(a) / Σ_{b ∈ R_j} p(b) )    for a ∈ R_j, and 0 elsewhere,

where ``floor_f`` is `croupier.runtime.policies.floor.apply_floor` over ``R_j``: arms below ``f`` are raised to ``f``
and the others give up that mass in proportion. When every remaining arm has ``p(a) = 0`` (a greedy policy, such as
UCB1 or ε-greedy with ε = 0 and no floor, whose mass sat on arms already placed), ``q_j`` is uniform over ``R_j``.
``q_1`` is ``p`` itself, so position 1 is distributed exactly like a decide answer.

Properties (each a test in ``tests/unit/ranking``): every ``q_j`` sums to 1 over ``R_j`` and gives every arm of
``R_j`` at least ``f`` (``|R_j| · f ≤ |R_1| · f ≤ 1``, so the floor is always feasible); when ``p`` already satisfies
the floor, renormalising keeps it (``p(a) / S ≥ p(a) ≥ f`` for ``S ≤ 1``) and the floor changes nothing; the logged
propensity of position ``j`` is ``q_j`` of the arm placed there, the probability it was drawn with given the
positions above, so the probability of a whole slate is the product of its positions' propensities.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate
from typing import NamedTuple

from croupier.runtime.policies.floor import apply_floor

__all__ = ["Placement", "conditional", "draw", "sample_slate"]


class Placement(NamedTuple):
    """One position of a slate: the arm placed there and the vector it was drawn from."""

    arm: int
    propensity: float
    probabilities: tuple[float, ...]
    """Every arm of the policy (0 for arms placed above or not eligible): the conditional vector ``q_j``."""
    remaining: list[int]
    """The arms this position was drawn from (``R_j``, ascending)."""


def conditional(p: Sequence[float], remaining: list[int], floor: float) -> list[float]:
    """``q_j`` over ``remaining`` (aligned with it): ``p`` restricted, renormalised, floored at ``floor``."""
    mass = [p[a] for a in remaining]
    total = sum(mass)
    if total <= 0.0:
        return [1.0 / len(remaining)] * len(remaining)
    if total == 1.0:  # position 1 over every eligible arm: the vector itself, bit for bit (what decide would log)
        return apply_floor(mass, floor)
    return apply_floor([m / total for m in mass], floor)


def draw(q: Sequence[float], u: float) -> int:
    """The position in ``q`` of the entry a uniform ``u`` in [0, 1) selects: entry ``i`` with probability ``q[i]``,
    never an entry with probability 0 (the rule `Policy` decides with)."""
    cumulative = list(accumulate(q))
    chosen = bisect_right(cumulative, u)
    if chosen == len(cumulative):  # u at or above a total that rounded below 1: the last entry that can be drawn
        chosen = max(i for i, value in enumerate(q) if value > 0.0)
    return chosen


def sample_slate(
    p: Sequence[float], eligible: Sequence[int], k: int, floor: float, uniforms: Sequence[float]
) -> list[Placement]:
    """Draw ``k`` distinct arms from ``eligible`` in order, position ``j`` with the uniform ``uniforms[j - 1]``.

    ``p`` is the request's decision vector over all arms, ``eligible`` the arm indexes it may place (ascending,
    non-empty), ``1 ≤ k ≤ len(eligible)`` (the caller checks it and names the field).
    """
    if not 1 <= k <= len(eligible):
        raise ValueError(f"k must be between 1 and {len(eligible)}, got {k}")
    if len(uniforms) < k:
        raise ValueError(f"{k} positions need {k} uniforms, got {len(uniforms)}")
    n = len(p)
    remaining = sorted(eligible)
    slate: list[Placement] = []
    for j in range(k):
        q = conditional(p, remaining, floor)
        chosen = draw(q, uniforms[j])
        vector = [0.0] * n
        for arm, value in zip(remaining, q, strict=True):
            vector[arm] = value
        arm = remaining[chosen]
        slate.append(Placement(arm, q[chosen], tuple(vector), remaining))
        remaining = remaining[:chosen] + remaining[chosen + 1 :]
    return slate
