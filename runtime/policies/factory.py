"""Build a policy from the DecisionPolicy spec's names: ``algorithm`` plus its camelCase parameter block."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import numpy as np

from .base import Policy, PriorsInput
from .epsilon_greedy import EpsilonGreedy
from .errors import PolicyConfigError
from .linear import LinearThompson, LinUCB
from .softmax import Softmax
from .thompson import ThompsonSampling
from .ucb import UCB1

__all__ = ["ALGORITHMS", "DEFAULT_PARAMS", "PARAMS_BLOCK", "build_policy"]

ALGORITHMS: Final = ("EpsilonGreedy", "UCB1", "ThompsonSampling", "Softmax", "LinUCB", "LinearThompson")

PARAMS_BLOCK: Final[Mapping[str, str]] = {
    "EpsilonGreedy": "epsilonGreedy",
    "UCB1": "ucb1",
    "ThompsonSampling": "thompsonSampling",
    "Softmax": "softmax",
    "LinUCB": "linUCB",
    "LinearThompson": "linearThompson",
}
"""The spec field that holds each algorithm's parameters (``spec.epsilonGreedy.epsilon`` ...)."""

DEFAULT_PARAMS: Final[Mapping[str, Mapping[str, Any]]] = {
    "EpsilonGreedy": {"epsilon": 0.1},
    "UCB1": {"c": 2.0},
    "ThompsonSampling": {"likelihood": "Bernoulli"},
    "Softmax": {"temperature": 0.1},
    "LinUCB": {"alpha": 1.0, "regularization": 1.0},
    "LinearThompson": {"v": 0.25, "regularization": 1.0},
}
"""Defaults for parameters the spec leaves out: the same as the DecisionPolicy API's (``api/decisionpolicy.py``), which
the service fills in anyway. docs/benchmarks/policies.md shows how they fare and which values a regret sweep prefers."""

# spec name -> constructor keyword, per algorithm
_KEYWORDS: Final[Mapping[str, Mapping[str, str]]] = {
    "EpsilonGreedy": {"epsilon": "epsilon"},
    "UCB1": {"c": "c"},
    "ThompsonSampling": {"likelihood": "likelihood"},
    "Softmax": {"temperature": "temperature"},
    "LinUCB": {"alpha": "alpha", "regularization": "regularization"},
    "LinearThompson": {"v": "v", "regularization": "regularization"},
}

_CLASSES: Final[Mapping[str, Callable[..., Policy]]] = {
    "EpsilonGreedy": EpsilonGreedy,
    "UCB1": UCB1,
    "ThompsonSampling": ThompsonSampling,
    "Softmax": Softmax,
    "LinUCB": LinUCB,
    "LinearThompson": LinearThompson,
}


def _number(algorithm: str, name: str, value: Any) -> float:
    block = PARAMS_BLOCK[algorithm]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError(f"{block}.{name} must be a number, got {value!r}", field=f"{block}.{name}")
    if not math.isfinite(value):
        raise PolicyConfigError(f"{block}.{name} must be finite, got {value!r}", field=f"{block}.{name}")
    return float(value)


def build_policy(
    algorithm: str,
    params: Mapping[str, Any] | None,
    arms: Sequence[str],
    *,
    priors: PriorsInput | None = None,
    dimension: int = 0,
    min_probability: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> Policy:
    """Build a policy from spec values.

    ``algorithm``: one of :data:`ALGORITHMS`. ``params``: the algorithm's parameter block with its camelCase names
    (``epsilonGreedy{epsilon}``, ``ucb1{c}``, ``thompsonSampling{likelihood: Bernoulli|Gaussian}``,
    ``softmax{temperature}``, ``linUCB{alpha, regularization}``, ``linearThompson{v, regularization}``); missing
    parameters take :data:`DEFAULT_PARAMS`, unknown ones are an error. ``priors``: per-arm ``(mean, weight)``, see
    :class:`~croupier.runtime.policies.base.ArmPrior`. ``dimension``: context length (contextual algorithms only, 0
    otherwise). ``min_probability``: the floor (``len(arms) · min_probability ≤ 1``). ``seed``: an int seed or a
    generator, for reproducible decisions.

    Raises :class:`~croupier.runtime.policies.errors.PolicyConfigError` naming the offending field.
    """
    if algorithm not in _CLASSES:
        raise PolicyConfigError(
            f"unknown algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}", field="algorithm"
        )
    block = PARAMS_BLOCK[algorithm]
    given = dict(params or {})
    unknown = sorted(set(given) - set(_KEYWORDS[algorithm]))
    if unknown:
        raise PolicyConfigError(
            f"unknown {block} parameter(s) {unknown}; {algorithm} takes {sorted(_KEYWORDS[algorithm])}",
            field=f"{block}.{unknown[0]}",
        )
    values = {**DEFAULT_PARAMS[algorithm], **given}
    kwargs: dict[str, Any] = {}
    for name, keyword in _KEYWORDS[algorithm].items():
        value = values[name]
        if name == "likelihood":
            if value not in ("Bernoulli", "Gaussian"):
                raise PolicyConfigError(
                    f"{block}.likelihood must be 'Bernoulli' or 'Gaussian', got {value!r}", field=f"{block}.likelihood"
                )
            kwargs[keyword] = value
        else:
            kwargs[keyword] = _number(algorithm, name, value)
    common: dict[str, Any] = {"priors": priors, "min_probability": min_probability, "rng": seed}
    if algorithm in ("LinUCB", "LinearThompson"):
        common["dimension"] = dimension
    elif dimension != 0:
        raise PolicyConfigError(
            f"{algorithm} is not contextual: the context dimension must be 0, got {dimension}", field="context"
        )
    try:
        return _CLASSES[algorithm](arms, **kwargs, **common)
    except PolicyConfigError as exc:
        if exc.field and exc.field.startswith("params."):
            raise PolicyConfigError(
                str(exc).replace(exc.field[7:], f"{block}.{exc.field[7:]}", 1), field=f"{block}.{exc.field[7:]}"
            ) from exc
        raise
