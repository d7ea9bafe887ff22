"""observations -> status: conditions, the statistics table, and the rule that an unchanged world writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from croupier.api.common import ApiModel, ChildReason, ConditionStatus, ConditionType
from croupier.api.decisionpolicy import DecisionPolicyStatus, Reason
from croupier.api.wire import StatsResponse
from croupier.operator.core.conditions import (
    DesiredCondition,
    EventNote,
    events_for,
    find,
    merge_conditions,
    transitions,
)
from croupier.operator.core.controller import ApplyProblem, InvalidObjectError
from croupier.operator.core.status import merge_patch, status_patch
from croupier.operator.decisionpolicy.probe import ProbeResult
from croupier.operator.decisionpolicy.status import (
    DeploymentState,
    Observations,
    desired_conditions,
    desired_status,
)

pytestmark = pytest.mark.unit


def wire(model: ApiModel | None) -> dict[str, Any]:
    """The stored form of a status (or condition): what the operator patches and Kubernetes keeps."""
    return model.to_wire() if model is not None else {}


def wire_conditions(status: DecisionPolicyStatus) -> list[dict[str, Any]]:
    return [c.to_wire() for c in status.conditions or ()]


T0 = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=15)
HASH = "abc123"


def deployment(**overrides: Any) -> DeploymentState:
    values: dict[str, Any] = {
        "spec_replicas": 1,
        "generation": 2,
        "observed_generation": 2,
        "replicas": 1,
        "updated": 1,
        "ready": 1,
        "available": 1,
        "config_hash": HASH,
    }
    values.update(overrides)
    return DeploymentState(**values)


def stats(generation: int | None = 3, pulls: int = 10, rewards: int = 4, probability: float = 0.5) -> StatsResponse:
    return StatsResponse.model_validate(
        {
            "policy": {"name": "banner", "namespace": "shop"},
            "generation": generation,
            "policyVersion": f"g{generation}-x",
            "algorithm": "EpsilonGreedy",
            "backend": "Embedded",
            "arms": [
                {
                    "name": "blue",
                    "pulls": pulls,
                    "rewards": rewards,
                    "rewardSum": 3.0,
                    "mean": 0.75,
                    "probability": probability,
                },
                {
                    "name": "red",
                    "pulls": 2,
                    "rewards": 1,
                    "rewardSum": 0.0,
                    "mean": 0.0,
                    "probability": 1 - probability,
                },
            ],
            "totals": {"decisions": pulls + 2, "rewards": rewards + 1},
        }
    )


def observed(**overrides: Any) -> Observations:
    values: dict[str, Any] = {
        "generation": 3,
        "endpoint": "http://banner.shop.svc:80",
        "desired_replicas": 1,
        "config_hash": HASH,
        "deployment": deployment(),
        "probe": ProbeResult(url="http://x/v1/stats", stats=stats()),
    }
    values.update(overrides)
    return Observations(**values)


def conditions_of(obs: Observations, current: list[dict[str, Any]] | None = None) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in desired_conditions(obs, current)}


def test_ready_when_pods_are_available_and_the_runtime_serves_this_generation() -> None:
    assert conditions_of(observed()) == {
        "Ready": ("True", "Available"),
        "Progressing": ("False", "RolloutComplete"),
        "Degraded": ("False", "AsExpected"),
    }


def test_paused_policies_are_ready_with_reason_paused() -> None:
    assert conditions_of(observed(paused=True))["Ready"] == ("True", "Paused")


def test_a_runtime_serving_an_older_generation_is_not_ready() -> None:
    result = conditions_of(observed(probe=ProbeResult(url="u", stats=stats(generation=2))))
    assert result["Ready"] == ("False", "StaleGeneration")
    assert result["Progressing"] == ("True", "StaleGeneration")


@pytest.mark.parametrize(
    "dep",
    [
        deployment(config_hash="old"),
        deployment(available=0, ready=0),
        deployment(observed_generation=1),
        deployment(replicas=2),  # an old pod still terminating
    ],
)
def test_rollout_in_progress(dep: DeploymentState) -> None:
    result = conditions_of(observed(deployment=dep, probe=None))
    assert result["Ready"] == ("False", "RolloutInProgress")
    assert result["Progressing"] == ("True", "RolloutInProgress")
    assert result["Degraded"] == ("False", "AsExpected")


def test_missing_deployment_is_a_rollout_in_progress() -> None:
    assert conditions_of(observed(deployment=None, probe=None))["Ready"] == ("False", "RolloutInProgress")


def test_a_stalled_rollout_is_degraded() -> None:
    dep = deployment(available=0, ready=0, stalled_message="ReplicaSet has timed out progressing.")
    result = conditions_of(observed(deployment=dep, probe=None))
    assert result["Ready"] == ("False", "RolloutStalled")
    assert result["Degraded"] == ("True", "RolloutStalled")


def test_an_invalid_spec_says_why_in_every_condition() -> None:
    error = InvalidObjectError(Reason.INVALID_SPEC, "spec.arms: duplicate arm names ['a']")
    result = desired_conditions(observed(invalid=error, deployment=None, probe=None), None)
    assert {(c.type, c.status, c.reason) for c in result} == {
        ("Ready", "False", "InvalidSpec"),
        ("Progressing", "False", "InvalidSpec"),
        ("Degraded", "True", "InvalidSpec"),
    }
    assert all("duplicate arm names" in c.message for c in result)


def test_apply_problems_are_degraded() -> None:
    result = conditions_of(
        observed(apply_problem=ApplyProblem(ChildReason.CHILD_CONFLICT, "Service banner exists"), probe=None)
    )
    assert result["Ready"] == ("False", "ChildConflict")
    assert result["Degraded"] == ("True", "ChildConflict")


def test_scaled_to_zero_is_not_ready_but_not_degraded() -> None:
    result = conditions_of(observed(desired_replicas=0, deployment=deployment(spec_replicas=0), probe=None))
    assert result["Ready"] == ("False", "ScaledToZero")
    assert result["Degraded"] == ("False", "AsExpected")


def test_probing_disabled_means_ready_on_available_pods() -> None:
    result = desired_conditions(observed(probe_enabled=False, probe=None), None)
    ready = result[0]
    assert (ready.status, ready.reason) == ("True", "Available")
    assert "not verified" in ready.message


def test_an_unreachable_runtime_does_not_flap_ready_once_confirmed_for_this_generation() -> None:
    ready = desired_status(observed(), None, T0)
    unreachable = observed(probe=ProbeResult(url="u", error="GET u failed (ConnectError)"))
    after = wire(desired_status(unreachable, ready, T1))
    by_type = {c["type"]: c for c in after["conditions"]}
    assert by_type["Ready"]["status"] == "True"
    assert by_type["Ready"]["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert (by_type["Degraded"]["status"], by_type["Degraded"]["reason"]) == ("True", "RuntimeUnreachable")
    assert after["arms"] == wire(ready)["arms"] and after["lastProbeTime"] == wire(ready)["lastProbeTime"]  # kept


def test_an_unreachable_runtime_blocks_ready_for_a_new_generation() -> None:
    ready = desired_status(observed(), None, T0)
    newer = observed(generation=4, probe=ProbeResult(url="u", error="GET u failed (ConnectError)"))
    result = {c["type"]: c for c in wire_conditions(desired_status(newer, ready, T1))}
    assert (result["Ready"]["status"], result["Ready"]["reason"]) == ("False", "RuntimeUnreachable")
    assert result["Ready"]["observedGeneration"] == 4


def test_status_carries_replicas_endpoint_generation_and_the_table() -> None:
    status = wire(desired_status(observed(), None, T0))
    assert status["observedGeneration"] == 3
    assert status["endpoint"] == "http://banner.shop.svc:80"
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert status["servedGeneration"] == 3
    assert status["arms"][0] == {
        "name": "blue",
        "pulls": 10,
        "rewards": 4,
        "rewardSum": 3.0,
        "mean": 0.75,
        "probability": 0.5,
    }
    assert status["totals"] == {"decisions": 12, "rewards": 5, "defaultRewards": 0}
    assert status["bestArm"] == "blue"
    assert status["lastProbeTime"] == "2025-01-01T12:00:00Z"
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Progressing", "Degraded", "Reconciling", "Stalled"]
    assert all(c["observedGeneration"] == 3 for c in status["conditions"])


def test_an_unchanged_world_produces_no_patch() -> None:
    first = desired_status(observed(), None, T0)
    second = desired_status(observed(), first, T1)
    assert second == first
    assert status_patch(first, second) is None


def test_probability_noise_without_new_counts_writes_nothing() -> None:
    first = desired_status(observed(), None, T0)
    noisy = observed(probe=ProbeResult(url="u", stats=stats(probability=0.5123)))
    assert status_patch(first, desired_status(noisy, first, T1)) is None


def test_new_counts_refresh_the_table_and_the_probe_time_only() -> None:
    first = desired_status(observed(), None, T0)
    busier = desired_status(observed(probe=ProbeResult(url="u", stats=stats(pulls=11))), first, T1)
    patch = status_patch(first, busier)
    assert patch is not None
    assert set(patch) == {"arms", "totals", "lastProbeTime"}
    assert patch["lastProbeTime"] == "2025-01-01T12:00:15Z"


def test_a_condition_change_moves_only_its_transition_time() -> None:
    first = desired_status(observed(), None, T0)
    stale = desired_status(observed(probe=ProbeResult(url="u", stats=stats(generation=2))), first, T1)
    before = {c["type"]: c for c in wire_conditions(first)}
    after = {c["type"]: c for c in wire_conditions(stale)}
    assert after["Ready"]["lastTransitionTime"] == "2025-01-01T12:00:15Z"
    assert after["Progressing"]["lastTransitionTime"] == "2025-01-01T12:00:15Z"
    assert after["Degraded"]["lastTransitionTime"] == before["Degraded"]["lastTransitionTime"]


def test_status_patch_removes_fields_with_null() -> None:
    patch = status_patch({"bestArm": "blue", "observedGeneration": 1}, DecisionPolicyStatus(observed_generation=1))
    assert patch == {"bestArm": None}


def test_status_patch_nulls_nested_fields_that_became_unset() -> None:
    # A merge patch merges objects: naming only the top-level key would keep the stale nested field on the server.
    stored = {"rollout": {"state": "Progressing", "message": "waiting", "history": [1, 2]}, "observedGeneration": 1}
    wanted = {"rollout": {"state": "Complete", "history": [2]}, "observedGeneration": 1}
    assert merge_patch(stored["rollout"], wanted["rollout"]) == {"message": None, "state": "Complete", "history": [2]}
    assert merge_patch({"a": {"b": 1}}, {"a": {"b": 1}, "c": 2}) == {"c": 2}
    assert merge_patch({"a": 1}, None) is None


def test_the_status_validates_against_the_api_model() -> None:
    status = desired_status(observed(), None, T0)
    assert isinstance(status, DecisionPolicyStatus)
    assert DecisionPolicyStatus.model_validate(wire(status)) == status  # the stored form reads back the same


def _decided(ready: ConditionStatus, reason: Reason) -> list[DesiredCondition]:
    progressing = ConditionStatus.TRUE if ready == ConditionStatus.FALSE else ConditionStatus.FALSE
    return [
        DesiredCondition(ConditionType.READY, ready, reason),
        DesiredCondition(ConditionType.PROGRESSING, progressing, reason),
        DesiredCondition(ConditionType.DEGRADED, ConditionStatus.FALSE, Reason.AS_EXPECTED),
    ]


def test_merge_conditions_keeps_transition_time_when_only_the_reason_changes() -> None:
    first = merge_conditions(None, _decided(ConditionStatus.FALSE, Reason.ROLLOUT_IN_PROGRESS), generation=1, now=T0)
    second = merge_conditions(first, _decided(ConditionStatus.FALSE, Reason.STALE_GENERATION), generation=1, now=T1)
    assert wire(second[0])["lastTransitionTime"] == "2025-01-01T12:00:00Z"
    assert wire(second[0])["reason"] == "StaleGeneration"
    assert transitions(first, second) == []
    third = merge_conditions(second, _decided(ConditionStatus.TRUE, Reason.AVAILABLE), generation=1, now=T1)
    changes = [(c.type, c.status, c.previous_status) for c in transitions(second, third)]
    assert changes == [("Ready", "True", "False"), ("Progressing", "False", "True"), ("Reconciling", "False", "True")]
    ready = find(third, ConditionType.READY)
    assert ready is not None and wire(ready)["lastTransitionTime"] == "2025-01-01T12:00:15Z"
    stalled = find(third, ConditionType.STALLED)
    assert stalled is not None and wire(stalled)["lastTransitionTime"] == "2025-01-01T12:00:00Z"


def test_a_kind_decides_ready_progressing_and_degraded_and_nothing_else() -> None:
    only_ready = [DesiredCondition(ConditionType.READY, ConditionStatus.TRUE, Reason.AVAILABLE)]
    with pytest.raises(ValueError, match="decides exactly Ready, Progressing, Degraded; got \\['Ready'\\]"):
        merge_conditions(None, only_ready, generation=1, now=T0)
    stalled = DesiredCondition(ConditionType.STALLED, ConditionStatus.TRUE, Reason.ROLLOUT_STALLED)
    with pytest.raises(ValueError, match="Stalled"):
        merge_conditions(None, [*_decided(ConditionStatus.TRUE, Reason.AVAILABLE), stalled], generation=1, now=T0)


def _kstatus(conditions: list[Any]) -> dict[str, tuple[str, str, str]]:
    return {
        c.type: (str(c.status), c.reason, c.message)
        for c in conditions
        if c.type in (ConditionType.RECONCILING, ConditionType.STALLED)
    }


@pytest.mark.parametrize(
    ("dep", "expected"),
    [
        (
            DeploymentState(1, 2, 2, 1, 1, 0, 0, HASH),
            {
                "Reconciling": ("True", "RolloutInProgress", "1/1 runtime pods updated, 0 available"),
                "Stalled": ("False", "AsExpected", ""),
            },
        ),
        (
            DeploymentState(1, 2, 2, 1, 1, 0, 0, "old", stalled_message="ReplicaSet x has timed out progressing."),
            {
                "Reconciling": ("False", "RolloutStalled", "ReplicaSet x has timed out progressing."),
                "Stalled": ("True", "RolloutStalled", "ReplicaSet x has timed out progressing."),
            },
        ),
    ],
)
def test_kstatus_reconciling_follows_progressing_and_stalled_the_declared_degraded_reasons(
    dep: DeploymentState, expected: dict[str, tuple[str, str, str]]
) -> None:
    assert _kstatus(desired_status(observed(deployment=dep), None, T0).conditions or []) == expected


def test_a_degraded_reason_that_is_retried_is_not_stalled() -> None:
    failed = ProbeResult(url="http://x/v1/stats", error="GET http://x/v1/stats failed")
    status = desired_status(observed(probe=failed), None, T0)
    conditions = {c.type: (str(c.status), c.reason) for c in status.conditions or []}
    assert conditions["Degraded"] == ("True", "RuntimeUnreachable")
    assert conditions["Stalled"] == ("False", "RuntimeUnreachable")
    assert conditions["Reconciling"] == ("False", "RuntimeUnreachable")


def test_kstatus_conditions_are_rewritten_only_when_their_source_changes() -> None:
    first = desired_status(observed(), None, T0)
    assert status_patch(first, desired_status(observed(), first, T1)) is None


def test_deployment_state_from_an_object() -> None:
    obj = {
        "metadata": {"generation": 4},
        "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"croupier.dev/config-hash": HASH}}}},
        "status": {
            "observedGeneration": 4,
            "replicas": 2,
            "updatedReplicas": 2,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "False",
                    "reason": "ProgressDeadlineExceeded",
                    "message": "ReplicaSet x has timed out progressing.",
                }
            ],
        },
    }
    state = DeploymentState.from_object(obj, "croupier.dev/config-hash")
    assert state.config_hash == HASH
    assert not state.rolled_out(HASH)
    assert state.stalled_message == "ReplicaSet x has timed out progressing."
    assert state.progress() == "2/2 runtime pods updated, 1 available"


def test_a_single_failed_read_below_the_threshold_changes_nothing() -> None:
    ready = desired_status(observed(), None, T0)
    once = observed(
        probe=ProbeResult(url="u", error="GET u failed (ReadTimeout)"), probe_failures=1, probe_failure_threshold=2
    )
    assert status_patch(ready, desired_status(once, ready, T1)) is None
    twice = observed(
        probe=ProbeResult(url="u", error="GET u failed (ReadTimeout)"), probe_failures=2, probe_failure_threshold=2
    )
    degraded = {c["type"]: c for c in wire_conditions(desired_status(twice, ready, T1))}["Degraded"]
    assert (degraded["status"], degraded["reason"]) == ("True", "RuntimeUnreachable")


def test_events_only_for_news() -> None:
    created = desired_status(observed(deployment=None, probe=None), None, T0)
    assert events_for(transitions(None, created.conditions)) == []  # a new object progressing is not news
    ready = desired_status(observed(), created, T1)
    assert [(n.type, n.reason) for n in events_for(transitions(created.conditions, ready.conditions))] == [
        ("Normal", "Available")
    ]
    stalled = desired_status(
        observed(deployment=deployment(available=0, stalled_message="timed out"), probe=None), ready, T1
    )
    notes = events_for(transitions(ready.conditions, stalled.conditions))
    assert [(n.type, n.reason) for n in notes] == [("Warning", "RolloutStalled"), ("Warning", "RolloutStalled")]
    recovered = desired_status(observed(), stalled, T1)
    assert events_for(transitions(stalled.conditions, recovered.conditions)) == [
        EventNote("Normal", "Available", "Ready: 1/1 runtime pods available; the runtime serves generation 3"),
        EventNote("Normal", "Recovered", "No longer degraded"),
    ]
