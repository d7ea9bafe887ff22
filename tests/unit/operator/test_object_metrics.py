"""Per-object gauges follow the computed status: set, changed, and removed when a label set or the object goes."""

from __future__ import annotations

from datetime import UTC, datetime

from croupier.api.common import Condition, ConditionStatus
from croupier.api.experiment import ExperimentStatus, GuardrailStatus, VariantStatus
from croupier.api.modeldeployment import (
    AnalysisResult,
    AnalysisStatus,
    ModelDeploymentStatus,
    RolloutState,
    RolloutStatus,
)
from croupier.operator.core.controller import Target
from croupier.operator.core.object_metrics import ObjectMetrics, condition_samples
from croupier.operator.experiment.metrics import status_samples as experiment_samples
from croupier.operator.metrics import REGISTRY
from croupier.operator.modeldeployment.metrics import status_samples as model_samples

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _target(name: str, uid: str) -> Target:
    return Target(kind="Experiment", name=name, namespace="games", uid=uid, generation=1)


def _value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def _ready(status: ConditionStatus, reason: str) -> Condition:
    return Condition(type="Ready", status=status, reason=reason, message="", last_transition_time=T0)


def test_a_condition_series_moves_with_its_reason_and_goes_with_the_object() -> None:
    metrics = ObjectMetrics()
    target = _target("signup-flow", "uid-cond")
    first = ExperimentStatus(conditions=[_ready(ConditionStatus.TRUE, "Running")])
    metrics.publish(target, condition_samples("Experiment", first))
    labels = {"object_namespace": "games", "object_name": "signup-flow", "kind": "Experiment", "type": "Ready"}
    assert _value("croupier_operator_condition", **labels, status="True", reason="Running") == 1.0

    srm = ExperimentStatus(conditions=[_ready(ConditionStatus.FALSE, "SampleRatioMismatch")])
    metrics.publish(target, condition_samples("Experiment", srm))
    assert _value("croupier_operator_condition", **labels, status="True", reason="Running") is None
    assert _value("croupier_operator_condition", **labels, status="False", reason="SampleRatioMismatch") == 1.0

    metrics.forget(target.uid)
    assert _value("croupier_operator_condition", **labels, status="False", reason="SampleRatioMismatch") is None
    assert metrics.published(target.uid) == {}


def test_experiment_gauges_carry_exposures_srm_and_guardrails() -> None:
    metrics = ObjectMetrics()
    target = _target("checkout", "uid-exp")
    status = ExperimentStatus(
        variants=[
            VariantStatus(name="control", exposures=1200),
            VariantStatus(
                name="one-click",
                exposures=1180,
                guardrails=[GuardrailStatus(name="refunds", violated=True), GuardrailStatus(name="latency")],
            ),
        ],
        srm_p_value=0.0004,
    )
    metrics.publish(target, experiment_samples(status))
    obj = {"object_namespace": "games", "object_name": "checkout"}
    assert _value("croupier_operator_experiment_exposures", **obj, variant="control") == 1200.0
    assert _value("croupier_operator_experiment_exposures", **obj, variant="one-click") == 1180.0
    assert _value("croupier_operator_experiment_srm_p_value", **obj) == 0.0004
    violated = "croupier_operator_experiment_guardrail_violated"
    assert _value(violated, **obj, variant="one-click", metric="refunds") == 1.0
    assert _value(violated, **obj, variant="one-click", metric="latency") == 0.0

    # A variant removed from the spec (a new epoch) leaves no series behind.
    metrics.publish(target, experiment_samples(ExperimentStatus(variants=[VariantStatus(name="control")])))
    assert _value("croupier_operator_experiment_exposures", **obj, variant="one-click") is None
    assert _value(violated, **obj, variant="one-click", metric="refunds") is None
    assert _value("croupier_operator_experiment_srm_p_value", **obj) is None
    assert _value("croupier_operator_experiment_exposures", **obj, variant="control") == 0.0
    metrics.forget(target.uid)


def test_model_deployment_gauges_follow_the_rollout() -> None:
    metrics = ObjectMetrics()
    target = Target(kind="ModelDeployment", name="ranker", namespace="ml", uid="uid-md", generation=3)
    failed = AnalysisStatus(
        result=AnalysisResult.FAILED, start_time=T0, end_time=T0, weight=20, error_rate=0.51, stable_error_rate=0.01
    )
    status = ModelDeploymentStatus(
        canary_weight=20,
        rollout=RolloutStatus(
            canary_version=3, spec_hash="abc", state=RolloutState.PROGRESSING, weight=20, analyses=[failed]
        ),
    )
    metrics.publish(target, model_samples(status))
    obj = {"object_namespace": "ml", "object_name": "ranker"}
    assert _value("croupier_operator_canary_weight", **obj) == 20.0
    assert _value("croupier_operator_canary_state", **obj, version="3", state="Progressing") == 1.0
    assert _value("croupier_operator_canary_analysis", **obj, version="3", result="Failed") == 1.0
    assert _value("croupier_operator_canary_error_rate", **obj, role="canary") == 0.51
    assert _value("croupier_operator_canary_error_rate", **obj, role="stable") == 0.01

    rolled_back = ModelDeploymentStatus(
        canary_weight=0,
        rollout=RolloutStatus(
            canary_version=3, spec_hash="abc", state=RolloutState.ROLLED_BACK, weight=0, analyses=[failed]
        ),
    )
    metrics.publish(target, model_samples(rolled_back))
    assert _value("croupier_operator_canary_weight", **obj) == 0.0
    assert _value("croupier_operator_canary_state", **obj, version="3", state="Progressing") is None
    assert _value("croupier_operator_canary_state", **obj, version="3", state="RolledBack") == 1.0

    metrics.publish(target, model_samples(ModelDeploymentStatus()))  # no canary any more
    assert _value("croupier_operator_canary_state", **obj, version="3", state="RolledBack") is None
    assert _value("croupier_operator_canary_error_rate", **obj, role="canary") is None
    metrics.forget(target.uid)
