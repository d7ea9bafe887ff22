"""Conditions as the Kubernetes API conventions (and kstatus) want them.

The desired state of each condition is computed fresh every time; ``merge_conditions`` carries over
``lastTransitionTime`` from the current list unless the condition's ``status`` changed, so recomputing an unchanged
state yields an identical list (and the operator writes nothing).

Kinds decide ``Ready``, ``Progressing`` and ``Degraded``; ``merge_conditions`` derives kstatus's standard
``Reconciling`` and ``Stalled`` from them (``kstatus_conditions``), so plain kstatus (Flux without custom health
expressions) reads the same state: ``Stalled`` is True for a Degraded reason the kind declares as one that cannot
clear without a change to the spec (or another human action), ``Reconciling`` is True while Progressing is and the
object is not stalled. docs/gitops.md has the table per reason.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from croupier.api.common import Condition, ConditionStatus, ConditionType

# The conditions a kind decides; kstatus's two follow from them (``kstatus_conditions``).
DECIDED = (ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED)
# Stable order in status: what `kubectl describe` shows and what diffs compare.
ORDER = (*DECIDED, ConditionType.RECONCILING, ConditionType.STALLED)


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


def kstatus_conditions(
    desired: Iterable[DesiredCondition], stalls: Collection[StrEnum] = frozenset()
) -> list[DesiredCondition]:
    """``Reconciling`` and ``Stalled`` (kstatus's standard conditions) for a kind's Ready, Progressing and Degraded.

    * ``Stalled`` is True when Degraded is True with a reason in ``stalls`` (the kind's reasons that need a spec change
      or another human action); otherwise False, with Degraded's reason.
    * ``Reconciling`` is True when Progressing is True and the object is not stalled; otherwise False, with
      Progressing's reason.

    Both carry their source condition's reason and message, so they change exactly when it does.
    """
    by_type = {c.type: c for c in desired}
    progressing, degraded = by_type.get(ConditionType.PROGRESSING), by_type.get(ConditionType.DEGRADED)
    if progressing is None or degraded is None:
        raise ValueError("kstatus conditions need the kind's Progressing and Degraded conditions")
    stalled = degraded.status == ConditionStatus.TRUE and degraded.reason in stalls
    reconciling = progressing.status == ConditionStatus.TRUE and not stalled
    true_or_false = {True: ConditionStatus.TRUE, False: ConditionStatus.FALSE}
    return [
        DesiredCondition(
            ConditionType.RECONCILING, true_or_false[reconciling], progressing.reason, progressing.message
        ),
        DesiredCondition(ConditionType.STALLED, true_or_false[stalled], degraded.reason, degraded.message),
    ]


def merge_conditions(
    current: Sequence[Condition] | None,
    desired: Iterable[DesiredCondition],
    *,
    generation: int,
    now: datetime,
    stalls: Collection[StrEnum] = frozenset(),
) -> list[Condition]:
    """The conditions to store: the kind's desired Ready, Progressing and Degraded plus kstatus's Reconciling and
    Stalled (``kstatus_conditions``, with the kind's ``stalls``), previous lastTransitionTime where the status did not
    change."""
    decided = list(desired)
    if sorted(c.type for c in decided) != sorted(DECIDED):
        raise ValueError(f"a kind decides exactly {', '.join(DECIDED)}; got {[str(c.type) for c in decided]}")
    previous = {c.type: c for c in current or ()}
    rank = {t.value: i for i, t in enumerate(ORDER)}
    merged = []
    everything = [*decided, *kstatus_conditions(decided, stalls)]
    for condition in sorted(everything, key=lambda c: rank.get(c.type, len(rank))):
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
