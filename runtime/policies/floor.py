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
    # The arms raised to f are the m smallest, for the first m (in ascending order) at which the (m+1)-th smallest,
    # scaled by c_m = (1 - m·f) / (mass of the others), stays at or above f. The test is monotone in m: once it
    # holds, c_(m+1) ≥ c_m and it holds for every larger m, so the first m is the fixed point q = max(f, c·p), which
    # is also what raising the arms below f and repeating while scaling pushes another below f converges to.
    rest = sum(p)
    for m, value in enumerate(sorted(p)):
        scale = (1.0 - m * f) / rest
        if value * scale >= f:
            return [y if (y := x * scale) > f else f for x in p]  # max(f, x·scale), without the calls
        rest -= value
    return [f] * k  # only rounding gets here: some arm always stays above f while k·f < 1
