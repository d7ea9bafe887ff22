"""The status of a Kind this operator version does not reconcile yet: it says so instead of saying nothing."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from croupier.api.common import Condition, ConditionStatus
from croupier.operator.core.conditions import ORDER, DesiredCondition, merge_conditions


def not_implemented_conditions(
    kind: str,
    reason: StrEnum,
    version: str,
    current: Sequence[Condition] | None,
    *,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """Ready, Progressing and Degraded all False with ``reason``, and a message naming the operator version."""
    message = f"croupier-operator {version} does not reconcile {kind} objects yet: nothing is deployed for this one"
    desired = [DesiredCondition(type_, ConditionStatus.FALSE, reason, message) for type_ in ORDER]
    return merge_conditions(current, desired, generation=generation, now=now)
