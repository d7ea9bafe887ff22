"""Typed values of the experiment service: what the adapters decode requests into and encode answers from."""

from __future__ import annotations

from typing import Any, NamedTuple

from croupier.api.wire import ExposureOutcome, OutcomeStatus


class AssignRequest(NamedTuple):
    unit_id: str
    attributes: dict[str, Any] | None = None
    context: dict[str, float] | list[float] | None = None


class PolicyDecision(NamedTuple):
    policy: str
    decision_id: str
    arm: str
    probabilities: dict[str, float]
    policy_version: str


class ModelRoute(NamedTuple):
    name: str
    version: int
    header: str
    value: str


class Assignment(NamedTuple):
    variant: str
    counted: bool
    payload: dict[str, Any] | None = None
    decision: PolicyDecision | None = None
    model: ModelRoute | None = None


class ExposureItem(NamedTuple):
    unit_id: str
    variant: str
    epoch: str | None
    field: str
    """Prefix of the item's fields in errors: `` or `exposures[3].`."""


class ExposureResult(NamedTuple):
    unit_id: str
    outcome: ExposureOutcome
    variant: str


class OutcomeItem(NamedTuple):
    unit_id: str
    metric: str
    value: float
    event_id: str | None
    field: str


class OutcomeResult(NamedTuple):
    unit_id: str
    event_id: str | None
    outcome: OutcomeStatus


class ExposureRow(NamedTuple):
    """An exposure as stored: the unit's first in the epoch."""

    epoch: str
    unit_id: str
    variant: str
    timestamp: float
    counted: bool
    first_epoch: str
    """The epoch of the unit's first assignment (its sticky variant's origin)."""


class JoinedOutcome(NamedTuple):
    """An outcome joined to its unit's exposure, ready to store: the store deduplicates the eventId and aggregates."""

    position: int
    """Position in the request."""
    item: OutcomeItem
    variant: str
    kind: str
    timestamp: float


class UnitState(NamedTuple):
    """What the runtime remembers about a unit: its variant (sticky), where it came from, its exposure this epoch."""

    variant: str
    first_epoch: str
    exposed_epoch: str | None
    exposed_at: float
    counted: bool
