"""Conditions as the Kubernetes API conventions (and kstatus) want them.

The desired state of each condition is computed fresh every time; ``merge_conditions`` carries over
``lastTransitionTime`` from the current list unless the condition's ``status`` changed, so recomputing an unchanged
state yields an identical list (and the operator writes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from croupier.api.common import ConditionStatus, ConditionType

# Stable order in status: what `kubectl describe` shows and what diffs compare.
ORDER = (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED)


@dataclass(frozen=True)
class DesiredCondition:
    type: ConditionType
    status: ConditionStatus
    reason: str
    message: str = ""


@dataclass(frozen=True)
class Transition:
    """A condition whose status changed (or appeared): worth a Kubernetes Event."""

    type: str
    status: str
    reason: str
    message: str
    previous_status: str | None


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    current: Sequence[Mapping[str, Any]] | None,
    desired: Iterable[DesiredCondition],
    *,
    generation: int,
    now: datetime,
) -> list[dict[str, Any]]:
    """The conditions to store: desired values, previous lastTransitionTime where the status did not change."""
    previous = {c.get("type"): c for c in current or ()}
    rank = {t.value: i for i, t in enumerate(ORDER)}
    merged = []
    for condition in sorted(desired, key=lambda c: rank.get(c.type, len(rank))):
        before = previous.get(condition.type)
        unchanged = before is not None and before.get("status") == condition.status and before.get("lastTransitionTime")
        merged.append(
            {
                "type": str(condition.type),
                "status": str(condition.status),
                "reason": condition.reason,
                "message": condition.message,
                "observedGeneration": generation,
                "lastTransitionTime": before["lastTransitionTime"] if unchanged and before else rfc3339(now),
            }
        )
    return merged


def transitions(current: Sequence[Mapping[str, Any]] | None, merged: Sequence[Mapping[str, Any]]) -> list[Transition]:
    """Conditions whose status differs from before, in condition order."""
    previous = {c.get("type"): c for c in current or ()}
    found = []
    for condition in merged:
        before = previous.get(condition["type"])
        before_status = before.get("status") if before else None
        if before_status != condition["status"]:
            found.append(
                Transition(
                    type=condition["type"],
                    status=condition["status"],
                    reason=condition["reason"],
                    message=condition["message"],
                    previous_status=before_status,
                )
            )
    return found


def find(conditions: Sequence[Mapping[str, Any]] | None, kind: ConditionType) -> Mapping[str, Any] | None:
    for condition in conditions or ():
        if condition.get("type") == kind:
            return condition
    return None


@dataclass(frozen=True)
class EventNote:
    """A Kubernetes Event to post for a transition."""

    type: str  # Normal | Warning
    reason: str
    message: str


def events_for(changes: Sequence[Transition]) -> list[EventNote]:
    """Which transitions deserve an Event: becoming Ready, losing Ready, becoming Degraded, recovering.

    A condition that merely appears in a healthy or in-progress state (a new object) is not news.
    """
    notes = []
    for change in changes:
        appeared = change.previous_status is None
        if change.type == ConditionType.READY:
            if change.status == ConditionStatus.TRUE:
                notes.append(EventNote("Normal", change.reason, f"Ready: {change.message}"))
            elif not appeared:
                notes.append(EventNote("Warning", change.reason, f"Not ready: {change.message}"))
        elif change.type == ConditionType.DEGRADED:
            if change.status == ConditionStatus.TRUE:
                notes.append(EventNote("Warning", change.reason, f"Degraded: {change.message}"))
            elif not appeared:
                notes.append(EventNote("Normal", "Recovered", "No longer degraded"))
    return notes
