"""Typed values of the decision service: what an adapter asks, what the service decides and logs, what a store learns.

No JSON here: the HTTP adapter (`croupier.runtime.http.codec`) decodes bodies into these and encodes these into
bodies; a gRPC adapter or the off-policy export reads the same values.
"""

from __future__ import annotations

from array import array
from typing import Annotated, NamedTuple

import msgspec
import numpy as np

from croupier.api import wire
from croupier.api.decisionpolicy import MAX_ARMS, MAX_FEATURES

_Number = Annotated[float, msgspec.Meta(ge=-wire.MAX_MAGNITUDE, le=wire.MAX_MAGNITUDE)]
_DECIDE = wire.DecideRequest.model_fields


def _name(field: str) -> str:
    """The field's name on the wire, from the wire contract."""
    alias = _DECIDE[field].alias
    return alias if alias is not None else field


class DecideRequest(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """Ask the policy for an arm (the rules of `croupier.api.wire.DecideRequest`; the JSON decoder checks them)."""

    unit_id: Annotated[str, msgspec.Meta(min_length=1, max_length=wire.MAX_UNIT_ID_LENGTH)] | None = msgspec.field(
        default=None, name=_name("unit_id")
    )
    context: (
        Annotated[list[_Number], msgspec.Meta(max_length=MAX_FEATURES)]
        | Annotated[dict[str, _Number], msgspec.Meta(max_length=MAX_FEATURES)]
        | None
    ) = msgspec.field(default=None, name=_name("context"))
    """Feature values by name, or a list in the policy's feature order; checked against the policy by the service."""
    candidates: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_ARMS)] | None = msgspec.field(
        default=None, name=_name("candidates")
    )


class Decision(msgspec.Struct, gc=False, omit_defaults=True):
    """One decision, as answered and as the decision log keeps it: everything off-policy evaluation needs."""

    decision_id: str
    timestamp: float
    arm: str
    arm_index: int
    probabilities: tuple[float, ...]
    """The probability of every arm of the policy, in its arm order (0 for arms outside `eligible`)."""
    eligible: list[int] | None
    """The candidate arms' indexes (None: every arm)."""
    features: list[float] | None
    """The context values the policy saw (in feature order, without the intercept); None for non-contextual
    policies."""
    unit_id: str | None
    policy_version: str
    expires_at: float
    """End of the attribution window."""
    scores: tuple[float, ...] | None = None
    """Model-scored policies: the model's score per arm (NaN outside `eligible`); None when the fallback decided."""
    model_version: int | None = None
    """Model-scored policies: the model version whose scores made `probabilities`."""
    fallback: str | None = None
    """Model-scored policies: why the fallback decided (`croupier.runtime.scoring.scorer.FallbackReason`)."""
    slate_id: str | None = None
    """The slate this decision is a position of (`POST /v1/rank`); None for a decide answer."""
    position: int | None = None
    """Its position in that slate, from 1 (top)."""


class Distribution(NamedTuple):
    """The probability vector one request is decided with, and the request's values the policy saw."""

    features: list[float] | None
    """The context values in feature order (contextual policies), as a decision logs them."""
    eligible: list[int] | None
    """The candidate arms' indexes (None: every arm)."""
    probabilities: tuple[float, ...]
    """Every arm of the policy, 0 outside `eligible`, the exploration floor applied."""


class SharedDecision(msgspec.Struct, array_like=True, gc=False):
    """A decision with the names its indexes refer to, readable without the policy that made it (Redis mode: the
    shared record another replica joins a reward with, and keeps in its own log)."""

    decision: Decision
    arms: list[str]
    feature_names: list[str] | None


class RewardItem(NamedTuple):
    decision_id: str
    reward: float
    field: str
    """Where the item sits in the request, for errors: `` (single form) or `rewards[3].`."""


class RewardOutcome(NamedTuple):
    decision_id: str
    accepted: bool


class RewardsAnswer(NamedTuple):
    """The answer to one rewards request: every reward is stored (accepted) or was stored before (duplicate)."""

    accepted: int
    duplicates: int
    outcomes: list[RewardOutcome]


class Learned(NamedTuple):
    """A reward a store made durable, to be learned by the policy in store order."""

    arm: str
    reward: float
    features: np.ndarray | None
    is_default: bool
    learn: bool
    """False for rewards stored while the policy was paused (see `croupier.runtime.decisions.join.JoinRules`)."""


class RestoredState(NamedTuple):
    """What a store gives back at start: the last checkpoint (if it matches the policy) and what to replay on top."""

    stats: bytes | None
    seq: int
    tail: list[tuple[int, Learned]]
    counters: dict[str, tuple[int, int, float, int]]


def pack_floats(values: list[float] | tuple[float, ...] | None) -> bytes | None:
    """Values as the decision log stores them: float64, native byte order (`numpy.frombuffer` reads them)."""
    return None if values is None else array("d", values).tobytes()


def pack_indexes(indexes: list[int] | None) -> bytes | None:
    """Arm indexes as the decision log stores them: uint16 (`MAX_ARMS` is 256)."""
    return None if indexes is None else array("H", indexes).tobytes()


def unpack_floats(blob: bytes | None) -> list[float] | None:
    if blob is None:
        return None
    values = array("d")
    values.frombytes(blob)
    return values.tolist()


def unpack_indexes(blob: bytes | None) -> list[int] | None:
    if blob is None:
        return None
    values = array("H")
    values.frombytes(blob)
    return values.tolist()
