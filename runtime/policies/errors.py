"""Errors raised by the policy core.

Both classes subclass :class:`ValueError`, so callers that only care about "bad input" can catch that; the service maps
:class:`PolicyConfigError` to a rejected configuration and :class:`PolicyInputError` to a 4xx answer. ``field`` names
the offending field (``"arm"``, ``"reward"``, ``"context"``, ``"eligible"``, ``"params.epsilon"`` ...) so the error
can point at it without parsing the message. `PolicyError` and `PolicyConfigError` are the runtime's own
(`croupier.runtime.errors`): one error hierarchy per process.
"""

from __future__ import annotations

from croupier.runtime.errors import PolicyConfigError, PolicyError

__all__ = ["PolicyConfigError", "PolicyError", "PolicyInputError"]


class PolicyInputError(PolicyError):
    """A decide/update call got input the policy cannot use; the policy state is unchanged."""
