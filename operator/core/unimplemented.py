"""The status of a Kind this operator version does not reconcile yet: it says so instead of saying nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from croupier.api.common import Condition, ConditionStatus
from croupier.operator.core.conditions import DECIDED, DesiredCondition, merge_conditions
from croupier.operator.core.controller import (
    KindController,
    NothingToObserve,
    Snapshot,
    StatusT,
    no_children,
    spec_not_read,
)
from croupier.operator.core.resources import Resource
from croupier.operator.settings import OPERATOR_VERSION

# All such a Kind's status says; the rest of its status (written by nothing yet) is left alone.
OWNED_STATUS = ("observedGeneration", "conditions")


def not_implemented_conditions(
    kind: str,
    reason: StrEnum,
    version: str,
    current: Sequence[Condition] | None,
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Ready, Progressing and Degraded (and so Reconciling and Stalled) all False with ``reason``, and a message
    naming the operator version."""
    message = f"croupier-operator {version} does not reconcile {kind} objects yet: nothing is deployed for this one"
    desired = [DesiredCondition(type_, ConditionStatus.FALSE, reason, message) for type_ in DECIDED]
    return merge_conditions(current, desired, generation=generation, now=now)


def unreconciled_controller(
    resource: Resource, status_model: type[StatusT], reason: StrEnum
) -> KindController[None, Snapshot[Any], StatusT]:
    """A Kind registered on the shared machinery with no children: its status says it is not reconciled yet."""

    def desired_status(observed: Snapshot[Any], current: StatusT | None, now: datetime) -> StatusT:
        generation = observed.target.generation
        stored: Sequence[Condition] | None = getattr(current, "conditions", None)
        conditions = not_implemented_conditions(
            resource.kind, reason, OPERATOR_VERSION, stored, generation=generation, now=now
        )
        return status_model.model_validate({"observedGeneration": generation, "conditions": conditions})

    return KindController(
        resource=resource,
        status_model=status_model,
        parse=spec_not_read,
        render=no_children,
        observer=NothingToObserve,
        status=desired_status,
        owned_status=OWNED_STATUS,
    )
