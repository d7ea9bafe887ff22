"""When the status writer holds an in-progress status back (fewer writes on the way to Ready) and when it never does."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from croupier.api.common import ChildReason, ConditionStatus, ConditionType
from croupier.api.decisionpolicy import DecisionPolicyStatus, Reason
from croupier.operator.core.conditions import DesiredCondition, merge_conditions
from croupier.operator.core.status import PROGRESS_GRACE_SECONDS, PROGRESS_REFRESH_SECONDS, hold_for, in_progress

pytestmark = pytest.mark.unit

T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED


def status(
    generation: int,
    ready: ConditionStatus,
    progressing: ConditionStatus,
    degraded: ConditionStatus,
    reason: Reason | ChildReason,
    *,
    message: str = "",
) -> DecisionPolicyStatus:
    conditions = [
        DesiredCondition(READY, ready, reason, message),
        DesiredCondition(PROGRESSING, progressing, reason, message),
        DesiredCondition(DEGRADED, degraded, Reason.AS_EXPECTED if degraded == FALSE else reason, message),
    ]
    return DecisionPolicyStatus(
        observed_generation=generation, conditions=merge_conditions(None, conditions, generation=generation, now=T0)
    )


def rolling(generation: int, message: str = "0/1 runtime pods updated, 0 available") -> DecisionPolicyStatus:
    return status(generation, FALSE, TRUE, FALSE, Reason.ROLLOUT_IN_PROGRESS, message=message)


def test_in_progress_is_not_ready_progressing_and_not_degraded() -> None:
    assert in_progress(rolling(1))
    assert not in_progress(status(1, TRUE, FALSE, FALSE, Reason.AVAILABLE))
    assert not in_progress(status(1, FALSE, FALSE, TRUE, ChildReason.CHILD_CONFLICT))
    assert not in_progress(None)


def test_the_first_in_progress_status_of_a_generation_waits_for_the_grace() -> None:
    assert hold_for(None, rolling(1), since_first_seen=1.0, since_last_write=None) == PROGRESS_GRACE_SECONDS - 1.0
    assert hold_for(None, rolling(1), since_first_seen=PROGRESS_GRACE_SECONDS, since_last_write=None) is None
    ready_before = status(1, TRUE, FALSE, FALSE, Reason.AVAILABLE)
    held = hold_for(ready_before, rolling(2), since_first_seen=0.5, since_last_write=30.0)
    assert held == PROGRESS_GRACE_SECONDS - 0.5  # a spec change: the new generation's first status


def test_ready_degraded_and_blocked_statuses_are_never_held() -> None:
    for desired in (
        status(1, TRUE, FALSE, FALSE, Reason.AVAILABLE),
        status(1, FALSE, FALSE, TRUE, ChildReason.CHILD_CONFLICT),
        status(1, FALSE, FALSE, TRUE, Reason.ROLLOUT_STALLED),
        status(1, FALSE, FALSE, FALSE, Reason.SCALED_TO_ZERO),
    ):
        assert hold_for(None, desired, since_first_seen=0.0, since_last_write=None) is None
        assert hold_for(rolling(1), desired, since_first_seen=0.0, since_last_write=0.0) is None


def test_in_progress_details_are_refreshed_at_most_every_refresh_interval() -> None:
    stored = rolling(1)
    moved = rolling(1, "1/1 runtime pods updated, 0 available")
    assert hold_for(stored, moved, since_first_seen=60.0, since_last_write=2.0) == PROGRESS_REFRESH_SECONDS - 2.0
    assert hold_for(stored, moved, since_first_seen=60.0, since_last_write=PROGRESS_REFRESH_SECONDS) is None
    # A changed reason is news: written at once.
    stale = status(1, FALSE, TRUE, FALSE, Reason.STALE_GENERATION)
    assert hold_for(stored, stale, since_first_seen=60.0, since_last_write=0.1) is None
    # Written by someone else (or an older operator), never by us in this process: nothing to refresh against.
    assert hold_for(stored, moved, since_first_seen=60.0, since_last_write=None) is None
