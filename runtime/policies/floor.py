"""The exploration floor: the least change to a probability vector that gives every entry at least ``f``.

For a vector ``p`` over ``k`` eligible arms (summing to 1) and a floor ``f`` with ``k·f ≤ 1``, :func:`apply_floor`
returns

    q_a = max(f, c·p_a)      with the one ``c`` in ``(0, 1]`` for which ``Σ_a q_a = 1``.

In words: arms below the floor are raised to exactly ``f``, and the mass they need is taken from the arms above the
floor in proportion to their probabilities, repeatedly while that pushes another arm below ``f``. Properties (each
a property test in ``tests/unit/runtime/test_policies_floor.py``):

- ``q`` sums to 1 and every entry is at least ``f``;
- ``q is p`` when every ``p_a ≥ f`` already (``c = 1``): a floor never adds exploration a policy already has;
- order is kept: ``p_a ≤ p_b`` implies ``q_a ≤ q_b``, and arms above the floor keep their ratios;
- minimal: only arms with ``p_a < f`` gain, and exactly ``f - p_a``, so the mass moved, ``Σ_a max(0, f - p_a)``,
  is the least that any vector with the floor must move (the total-variation distance to the feasible set); among
  all such vectors ``q`` is the one closest to ``p`` in Kullback-Leibler divergence ``KL(q‖p)``: its optimality
  conditions are exactly ``q_a = max(f, c·p_a)``.
"""

from __future__ import annotations

__all__ = ["apply_floor"]


def apply_floor(p: list[float], f: float) -> list[float]:
    """``p`` floored at ``f`` (see the module docstring); ``p`` itself when it already satisfies the floor.

    ``p`` sums to 1 (up to rounding), ``len(p)·f ≤ 1`` (up to rounding). Plain Python: ``k`` is small and this runs
    per decision for contextual policies.
    """
    if f <= 0.0 or min(p) >= f:
        return p
    k = len(p)
    if k * f >= 1.0 - 1e-12:  # the floor leaves no mass to distribute (k·f = 1 up to rounding): every arm gets f
        return [f] * k
    raised = [value < f for value in p]
    while True:
        count = sum(raised)
        if count == k:  # only rounding can get here (see below)
            return [f] * k
        rest = sum(value for value, low in zip(p, raised, strict=True) if not low)
        # Some arm is never raised (were every arm left scaled below f, the total would be below k·f < 1), and arms
        # not raised have p_a ≥ f > 0 (zeros are raised first): rest > 0.
        scale = (1.0 - count * f) / rest
        more = [not low and value * scale < f for value, low in zip(p, raised, strict=True)]
        if not any(more):
            return [f if low else max(f, value * scale) for value, low in zip(p, raised, strict=True)]
        raised = [low or new for low, new in zip(raised, more, strict=True)]
