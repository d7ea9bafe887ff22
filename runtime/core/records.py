"""Plain records passed between the decision service and its stores."""

from __future__ import annotations

from array import array
from typing import NamedTuple

import numpy as np


def pack_features(values: list[float] | None) -> bytes | None:
    """Context values as the decision log stores them: float64, native byte order (`numpy.frombuffer` reads them)."""
    return None if values is None else array("d", values).tobytes()


class DecisionRecord(NamedTuple):
    """What the decision log keeps for one decision; the store writes it within the flush bound."""

    decision_id: str
    timestamp: float
    arm: str
    expires_at: float
    features: list[float] | None
    """The context values the policy saw (in feature order, without the intercept), for contextual policies; the
    SQLite log stores them as float64 bytes (`pack_features`), off the decide path."""
    request: bytes
    """The request body as received (validated JSON): unitId, context, candidates."""
    response: bytes
    """The response body as sent: arm, full probability vector, policyVersion."""


class RewardItem(NamedTuple):
    decision_id: str
    reward: float
    field: str
    """Where the item sits in the request, for errors: `` (single form) or `rewards[3].`."""


class Learned(NamedTuple):
    """A reward the store made durable, to be learned by the policy in this order."""

    arm: str
    reward: float
    features: np.ndarray | None
    is_default: bool


class RewardOutcome(NamedTuple):
    decision_id: str
    accepted: bool
