"""A Kind registered on the shared machinery before its reconciler exists gets a status that says so
(``core.unimplemented``). Every kind is reconciled today; the machinery stays for the next one, checked here on the
Experiment resource (not registered this way)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import pytest

from croupier.api import experiment
from croupier.operator.core.controller import Snapshot, Target
from croupier.operator.core.resources import EXPERIMENT as EXPERIMENT_RESOURCE
from croupier.operator.core.status import status_patch
from croupier.operator.core.unimplemented import unreconciled_controller

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5)


class Unreconciled(StrEnum):
    """The reason a kind without a reconciler would declare (every kind has one in this version)."""

    NOT_IMPLEMENTED = "NotImplemented"


EXPERIMENT = unreconciled_controller(EXPERIMENT_RESOURCE, experiment.ExperimentStatus, Unreconciled.NOT_IMPLEMENTED)
CASES = [(EXPERIMENT, Unreconciled.NOT_IMPLEMENTED)]


def snapshot(kind: str, generation: int) -> Snapshot[Any]:
    target = Target(kind=kind, name="x", namespace="ns", uid="u", generation=generation)
    return Snapshot(target=target, parsed=None, invalid=None, problem=None, desired=(), live={})


@pytest.mark.parametrize(("controller", "reason"), CASES, ids=["Experiment"])
def test_not_implemented_on_every_condition_with_the_generation(controller: Any, reason: Any) -> None:
    assert controller.children == () and controller.render(None, None) == ()
    status = controller.status(snapshot(controller.kind, 4), None, T0)
    assert isinstance(status, controller.status_model)
    stored = status.to_wire()
    assert stored["observedGeneration"] == 4
    assert [(c["type"], c["status"], c["reason"]) for c in stored["conditions"]] == [
        ("Ready", "False", "NotImplemented"),
        ("Progressing", "False", "NotImplemented"),
        ("Degraded", "False", "NotImplemented"),
        ("Reconciling", "False", "NotImplemented"),
        ("Stalled", "False", "NotImplemented"),
    ]
    assert all(
        c["observedGeneration"] == 4 and c["lastTransitionTime"] == "2025-01-01T12:00:00Z" for c in stored["conditions"]
    )
    assert all(f"does not reconcile {controller.kind} objects yet" in c["message"] for c in stored["conditions"])
    assert reason == "NotImplemented"


@pytest.mark.parametrize(("controller", "reason"), CASES, ids=["Experiment"])
def test_unchanged_writes_nothing_and_a_new_generation_keeps_transition_times(controller: Any, reason: Any) -> None:
    first = controller.status(snapshot(controller.kind, 1), None, T0)
    fields = controller.owned_status
    assert status_patch(first.to_wire(), controller.status(snapshot(controller.kind, 1), first, T1), fields) is None
    newer = controller.status(snapshot(controller.kind, 2), first, T1)
    # Status fields this version does not compute (written by someone else) are left alone, not nulled.
    stored = {**first.to_wire(), "observedGeneration": 1, "conditions": first.to_wire()["conditions"]}
    stored |= {"split": "a=50,b=50"}
    patch = status_patch(stored, newer, fields)
    assert patch is not None and set(patch) == {"observedGeneration", "conditions"}
    assert {c["lastTransitionTime"] for c in patch["conditions"]} == {"2025-01-01T12:00:00Z"}
