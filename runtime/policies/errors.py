"""Errors raised by the policy core.

Both classes subclass :class:`ValueError`, so callers that only care about "bad input" can catch that; the service maps
:class:`PolicyConfigError` to a rejected configuration and :class:`PolicyInputError` to a 4xx answer. ``field`` names
the offending field (``"arm"``, ``"reward"``, ``"context"``, ``"eligible"``, ``"params.epsilon"`` ...) so the error
can point at it without parsing the message.
"""

from __future__ import annotations

__all__ = ["PolicyConfigError", "PolicyError", "PolicyInputError"]


class PolicyError(ValueError):
    """Base class of every error the policy core raises on purpose."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PolicyConfigError(PolicyError):
    """The policy cannot be built from this configuration (algorithm, parameters, arms, priors, floor)."""


class PolicyInputError(PolicyError):
    """A decide/update call got input the policy cannot use; the policy state is unchanged."""
