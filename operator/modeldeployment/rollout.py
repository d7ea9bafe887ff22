"""The canary rollout as the reconcile sees it (pure): the stored rollout read back, when the next pass is due, and
the conditions a rollout state calls for. The engine itself is ``canary.engine``; the observer wires the two."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from croupier.api.common import ConditionStatus, ConditionType
from croupier.api.modeldeployment import AnalysisResult, ModelDeploymentSpec, Reason, RolloutState, RolloutStatus
from croupier.operator.core.conditions import DesiredCondition

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED
# The soonest the reconcile looks again for a rollout clock (a pass that is early by a rounding does nothing).
MIN_WAKE_SECONDS = 0.5


def stored_rollout(stored: Mapping[str, Any]) -> RolloutStatus | None:
    """``status.rollout`` as stored; None when absent or unreadable (the engine then starts the rollout afresh)."""
    raw = stored.get("rollout")
    if not isinstance(raw, Mapping):
        return None
    try:
        return RolloutStatus.model_validate(raw)
    except ValidationError:
        return None


def wake_in(spec: ModelDeploymentSpec, rollout: RolloutStatus | None, now: datetime) -> float | None:
    """Seconds until the rollout's next clock (analysis interval end, step pause end); None: no clock runs."""
    canary = spec.canary
    if canary is None or rollout is None or rollout.canary_version != canary.version:
        return None
    moments: list[datetime] = []
    if rollout.next_analysis_time is not None:
        moments.append(rollout.next_analysis_time)
    steps = canary.steps
    if (
        steps
        and rollout.state == RolloutState.PROGRESSING
        and rollout.step is not None
        and rollout.step < len(steps)
        and rollout.step_start_time is not None
    ):
        moments.append(rollout.step_start_time + timedelta(seconds=steps[rollout.step].pause_seconds))
    if not moments:
        return None
    return max(MIN_WAKE_SECONDS, (min(moments) - now).total_seconds())


def failed_measurements(rollout: RolloutStatus) -> str:
    """The failed intervals of a rollback record, one clause each, for a condition message."""
    rollback = rollout.rollback
    intervals = rollback.failed_intervals if rollback is not None else []
    return "; ".join(
        f"[{a.start_time:%H:%M:%S}-{a.end_time:%H:%M:%S}] {a.message}"
        for a in intervals or ()
        if a.result == AnalysisResult.FAILED
    )


def rollout_conditions(rollout: RolloutStatus | None, serving: str) -> list[DesiredCondition] | None:
    """The conditions once every version with weight is AVAILABLE and the split is served, by rollout state
    (None: no rollout, the plain Ready conditions apply). ``serving`` describes the split."""
    if rollout is None:
        return None
    healthy = DesiredCondition(DEGRADED, FALSE, Reason.AS_EXPECTED)
    state, message = rollout.state, rollout.message or ""
    if state == RolloutState.ROLLED_BACK:
        failed = failed_measurements(rollout)
        text = f"{message}; failed measurements: {failed}" if failed else message
        return [
            DesiredCondition(READY, FALSE, Reason.ROLLED_BACK, text),
            DesiredCondition(PROGRESSING, FALSE, Reason.ROLLED_BACK, text),
            DesiredCondition(DEGRADED, TRUE, Reason.ROLLED_BACK, text),
        ]
    if state == RolloutState.HALTED:
        reason = Reason.INSUFFICIENT_DATA if message.startswith("InsufficientData") else Reason.ANALYSIS_FAILED
        return [
            DesiredCondition(READY, FALSE, reason, message),
            DesiredCondition(PROGRESSING, FALSE, reason, message),
            DesiredCondition(DEGRADED, TRUE, reason, message),
        ]
    if state == RolloutState.WAITING:
        text = message or "the canary gets traffic once it is AVAILABLE"
        return [
            DesiredCondition(READY, FALSE, Reason.VERSION_LOADING, text),
            DesiredCondition(PROGRESSING, TRUE, Reason.VERSION_LOADING, text),
            healthy,
        ]
    ready = DesiredCondition(
        READY, TRUE, Reason.AVAILABLE, f"TF Serving reports every version with traffic AVAILABLE; serving {serving}"
    )
    if state == RolloutState.PAUSED:
        return [ready, DesiredCondition(PROGRESSING, FALSE, Reason.PAUSED, message or "canary.paused is set"), healthy]
    if state == RolloutState.PROGRESSING:
        waiting = message.startswith("step") and "waits for an interval" in message
        reason = Reason.WAITING_FOR_ANALYSIS if waiting else Reason.STEP_IN_PROGRESS
        return [ready, DesiredCondition(PROGRESSING, TRUE, reason, message or f"serving {serving}"), healthy]
    if state == RolloutState.COMPLETE:
        text = f"last step done, serving {serving}: ready to promote (stable.version := the canary's)"
        return [ready, DesiredCondition(PROGRESSING, FALSE, Reason.CANARY_COMPLETE, text), healthy]
    return [ready, DesiredCondition(PROGRESSING, FALSE, Reason.AVAILABLE, ready.message), healthy]
