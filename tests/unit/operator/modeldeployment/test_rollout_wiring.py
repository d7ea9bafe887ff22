"""The reconcile's rollout wiring, pass by pass (pure): the stored ``status.rollout`` read back, ``advance`` with the
canary's AVAILABLE state and the interval's measurement, the live weight in the plan, and the status written - steps
walk to 100%, a failing canary is rolled back with its measurements in Degraded, a settled rollout writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from croupier.api.modeldeployment import ModelDeploymentStatus, ModelVersionState, RolloutState
from croupier.operator.core.status import status_patch
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.modeldeployment.canary.engine import RolloutEvent, advance, due
from croupier.operator.modeldeployment.canary.measurement import Measurement, Observation, VersionSample
from croupier.operator.modeldeployment.children import MAIN, server_roles
from croupier.operator.modeldeployment.handlers import CONTROLLER, OWNED_STATUS
from croupier.operator.modeldeployment.model import ModelDeploymentObject, parse_model_deployment
from croupier.operator.modeldeployment.plan import ServerView, canary_ready, plan
from croupier.operator.modeldeployment.rollout import stored_rollout, wake_in
from croupier.operator.modeldeployment.status import Observations, ServerState, desired_status
from croupier.runtime.tfserving.client import ErrorCode, VersionStatus

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
HASH = "h"
STEPS = [{"weight": 20, "pauseSeconds": 10}, {"weight": 50, "pauseSeconds": 10}, {"weight": 100, "pauseSeconds": 10}]
ANALYSIS = {"intervalSeconds": 10, "minRequests": 5, "maxErrorRate": 0.05, "failureLimit": 0}
GOOD = Measurement(VersionSample(requests=50, error_rate=0.0, p99_latency_milliseconds=3.0))
BAD = Measurement(VersionSample(requests=50, error_rate=0.5, p99_latency_milliseconds=3.0))


def md(canary: dict[str, Any]) -> ModelDeploymentObject:
    body = {
        "metadata": {"name": "ranker", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {
            "model": {"name": "ranker", "storageUri": "file:///models/ranker"},
            "stable": {"version": 1},
            "canary": canary,
        },
    }
    return parse_model_deployment(body)


def available(*numbers: int) -> tuple[VersionStatus, ...]:
    return tuple(VersionStatus(n, ModelVersionState.AVAILABLE, ErrorCode.OK, "") for n in numbers)


def one_pass(
    obj: ModelDeploymentObject, stored: dict[str, Any], now: datetime, observation: Observation | None
) -> tuple[dict[str, Any] | None, ModelDeploymentStatus, Observations]:
    """What the observer and the supervisor do in one pass, with a served split and both versions AVAILABLE."""
    views = {r: ServerView(r, available(1, 2), {"stable": 1, "canary": 2}) for r in server_roles(obj)}
    previous = stored_rollout(stored)
    measured = observation if due(obj.spec, previous, now) is not None else None
    outcome = advance(obj.spec, previous, measured, now, canary_ready(obj, plan(obj, views).servers))
    serving = plan(obj, views, desired_weight=outcome.weight)
    state = DeploymentState(1, 1, 1, 1, 1, 1, 1, HASH)
    observed = Observations(
        generation=1,
        md=obj,
        servers={MAIN: ServerState(MAIN, 1, state, HASH, versions=available(1, 2))},
        plan=serving,
        served=True,
        rollout=outcome.rollout,
        desired_weight=outcome.weight,
        events=outcome.events,
    )
    current = ModelDeploymentStatus.model_validate(stored) if stored else None
    status = desired_status(observed, current, now)
    return status_patch(stored, status, OWNED_STATUS), status, observed


def conditions(status: ModelDeploymentStatus) -> list[tuple[str, str, str]]:
    return [(c.type, str(c.status), c.reason) for c in status.conditions or []]


def test_steps_walk_to_100_percent_with_the_live_weight_in_status_route_and_events() -> None:
    obj = md({"version": 2, "steps": STEPS, "analysis": ANALYSIS})
    stored: dict[str, Any] = {}
    weights, steps, reasons = [], [], []
    events: list[str] = []
    now = T0
    for _ in range(8):
        patch, status, observed = one_pass(obj, stored, now, GOOD)
        if patch is not None:
            stored = status.to_wire()
        assert observed.plan is not None and observed.plan.canary_weight == status.canary_weight
        weights.append(status.canary_weight)
        steps.append(status.current_step)
        reasons.append(conditions(status)[1][2])
        events += [e.reason for e in CONTROLLER.events(observed)] if CONTROLLER.events else []
        now += timedelta(seconds=10)
    assert weights[:4] == [20, 50, 100, 100]
    assert steps[:4] == [0, 1, 2, 2]
    assert reasons[:3] == ["StepInProgress"] * 3 and reasons[3] == "CanaryComplete"
    assert events[:3] == [RolloutEvent.STARTED, RolloutEvent.STEP_ADVANCED, RolloutEvent.STEP_ADVANCED]
    assert RolloutEvent.COMPLETE in events
    assert conditions(status)[0] == ("Ready", "True", "Available")
    assert stored["rollout"]["state"] == RolloutState.COMPLETE
    assert len(stored["rollout"]["analyses"]) >= 3


def test_a_failing_canary_is_rolled_back_with_the_failed_measurements_in_degraded() -> None:
    obj = md({"version": 2, "steps": STEPS, "analysis": ANALYSIS})
    patch, status, _ = one_pass(obj, {}, T0, None)
    assert patch is not None and status.canary_weight == 20
    patch, status, observed = one_pass(obj, status.to_wire(), T0 + timedelta(seconds=10), BAD)
    assert patch is not None and status.canary_weight == 0
    assert observed.plan is not None and observed.plan.canary_weight == 0
    assert conditions(status) == [
        ("Ready", "False", "RolledBack"),
        ("Progressing", "False", "RolledBack"),
        ("Degraded", "True", "RolledBack"),
        ("Reconciling", "False", "RolledBack"),
        ("Stalled", "True", "RolledBack"),
    ]
    degraded = (status.conditions or [])[2].message
    assert "canary version 2 rolled back" in degraded and "error rate 0.5 > maxErrorRate 0.05" in degraded
    assert "failed measurements: [12:00:00-12:00:10]" in degraded
    assert status.rollout is not None and status.rollout.rollback is not None
    assert status.rollout.rollback.version == 2
    assert RolloutEvent.ROLLED_BACK in [e.reason for e in observed.events]
    # Rolled back stays out: later passes keep weight 0 and write nothing.
    again, kept, _ = one_pass(obj, status.to_wire(), T0 + timedelta(seconds=60), GOOD)
    assert again is None and kept.canary_weight == 0


def test_a_settled_rollout_writes_nothing_and_wakes_no_one() -> None:
    obj = md({"version": 2, "weight": 30})
    patch, status, _ = one_pass(obj, {}, T0, None)
    assert patch is not None and status.canary_weight == 30
    assert status.rollout is not None and status.rollout.state == RolloutState.SERVING
    stored = status.to_wire()
    for later in (1, 60, 3600):
        again, _, observed = one_pass(obj, stored, T0 + timedelta(seconds=later), None)
        assert again is None and observed.events == ()
    assert wake_in(obj.spec, status.rollout, T0 + timedelta(seconds=5)) is None


def test_the_next_pass_is_due_when_the_interval_or_the_step_ends() -> None:
    obj = md({"version": 2, "steps": [{"weight": 20, "pauseSeconds": 30}], "analysis": ANALYSIS})
    _, status, _ = one_pass(obj, {}, T0, None)
    assert wake_in(obj.spec, status.rollout, T0 + timedelta(seconds=4)) == 6.0
    assert wake_in(obj.spec, status.rollout, T0 + timedelta(seconds=30)) == 0.5
    plain = md({"version": 2, "steps": [{"weight": 20, "pauseSeconds": 30}]})
    _, status, _ = one_pass(plain, {}, T0, None)
    assert wake_in(plain.spec, status.rollout, T0 + timedelta(seconds=10)) == 20.0


def test_an_unreadable_stored_rollout_starts_afresh() -> None:
    assert stored_rollout({}) is None
    assert stored_rollout({"rollout": "x"}) is None
    assert stored_rollout({"rollout": {"canaryVersion": "not a number"}}) is None
