"""Conditions as the Kubernetes API conventions (and kstatus) want them.

The desired state of each condition is computed fresh every time; ``merge_conditions`` carries over
``lastTransitionTime`` from the current list unless the condition's ``status`` changed, so recomputing an unchanged
state yields an identical list (and the operator writes nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from croupier.api.common import Condition, ConditionStatus, ConditionType

# Stable order in status: what `kubectl describe` shows and what diffs compare.
ORDER = (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED)


class EventReason(StrEnum):
    """Event reasons that are not a condition's reason."""

    RECOVERED = "Recovered"


@dataclass(frozen=True)
class DesiredCondition:
    type: ConditionType
    status: ConditionStatus
    reason: StrEnum
    """One of the kind's reason enum (``croupier.api.<kind>.Reason``) or ``ChildReason``: never a string literal."""
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
    current: Sequence[Condition] | None,
    desired: Iterable[DesiredCondition],
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """The conditions to store: desired values, previous lastTransitionTime where the status did not change."""
    previous = {c.type: c for c in current or ()}
    rank = {t.value: i for i, t in enumerate(ORDER)}
    merged = []
    for condition in sorted(desired, key=lambda c: rank.get(c.type, len(rank))):
        before = previous.get(condition.type)
        unchanged = before is not None and before.status == condition.status
        merged.append(
            Condition(
                type=str(condition.type),
                status=condition.status,
                reason=str(condition.reason),
                message=condition.message,
                observed_generation=generation,
                last_transition_time=before.last_transition_time if unchanged and before else now,
            )
        )
    return merged


def transitions(current: Sequence[Condition] | None, merged: Sequence[Condition]) -> list[Transition]:
    """Conditions whose status differs from before, in condition order."""
    previous = {c.type: c for c in current or ()}
    found = []
    for condition in merged:
        before = previous.get(condition.type)
        before_status = str(before.status) if before else None
        if before_status != str(condition.status):
            found.append(
                Transition(
                    type=condition.type,
                    status=str(condition.status),
                    reason=condition.reason,
                    message=condition.message,
                    previous_status=before_status,
                )
            )
    return found


def find(conditions: Sequence[Condition] | None, kind: ConditionType) -> Condition | None:
    for condition in conditions or ():
        if condition.type == kind:
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
                notes.append(EventNote("Normal", EventReason.RECOVERED, "No longer degraded"))
    return notes


def reason_events(
    current: Sequence[Condition] | None, merged: Sequence[Condition], reasons: Mapping[str, str]
) -> list[EventNote]:
    """Events a kind declared for condition reasons (``KindController.event_reasons``: reason -> Normal | Warning).

    A condition that takes one of these reasons (it had another, or appears with it) posts one Event, once per reason
    however many conditions carry it, in condition order. A status change alone (Ready turning False with the same
    reason) is ``events_for``'s news, not this: the reason is the news here (an Experiment's ``WinnerFound`` while
    Ready stays True).
    """
    previous = {c.type: c for c in current or ()}
    notes: list[EventNote] = []
    posted: set[str] = set()
    for condition in merged:
        kind = reasons.get(condition.reason)
        if kind is None or condition.reason in posted:
            continue
        before = previous.get(condition.type)
        if before is not None and before.reason == condition.reason:
            continue
        posted.add(condition.reason)
        notes.append(EventNote(kind, condition.reason, condition.message))
    return notes


def all_events(
    current: Sequence[Condition] | None, merged: Sequence[Condition], reasons: Mapping[str, str] | None = None
) -> list[EventNote]:
    """``events_for`` the transitions, then the declared reasons' Events whose reason none of those carries."""
    notes = events_for(transitions(current, merged))
    if reasons:
        taken = {note.reason for note in notes}
        notes += [note for note in reason_events(current, merged, reasons) if note.reason not in taken]
    return notes
