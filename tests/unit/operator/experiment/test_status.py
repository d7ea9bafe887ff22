"""Experiment observations -> status: the analysis in status, conditions, guardrail action, no write when settled."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from croupier.api.common import ConditionStatus
from croupier.api.experiment import ExperimentSpec, ExperimentStatus, PolicyToken
from croupier.api.wire import ExperimentStatsResponse
from croupier.operator.core.status import status_patch
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.experiment.children import served_document
from croupier.operator.experiment.model import parse_experiment, served_state
from croupier.operator.experiment.observer import _model_target_problem
from croupier.operator.experiment.status import Observations, desired_status, run_analysis

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=1)
HASH = "abc"
ROLLED_OUT = DeploymentState(
    spec_replicas=1, generation=1, observed_generation=1, replicas=1, updated=1, ready=1, available=1, config_hash=HASH
)
SPEC: dict[str, Any] = {
    "variants": [{"name": "a", "weight": 50, "payload": {"v": 1}}, {"name": "b", "weight": 50, "payload": {"v": 2}}],
    "control": "a",
    "assignment": {"unitKey": "userId"},
    "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
    "guardrails": [{"name": "refunds", "type": "Count", "direction": "Decrease", "threshold": 0.05}],
    "analysis": {"method": "FixedHorizon", "minimumSamplesPerVariant": 1000},
    "onGuardrailViolation": "Pause",
}


def _variant(name: str, exposures: int, conversions: int, refunds: int | None = 0) -> dict[str, Any]:
    variant: dict[str, Any] = {
        "name": name,
        "weight": 50,
        "exposures": exposures,
        "metrics": [
            {"name": "conversion", "type": "Binary", "aggregation": "Sum", "count": exposures,
             "sum": conversions, "sumSquares": conversions},
            {"name": "refunds", "type": "Count", "aggregation": "Sum", "count": exposures,
             "sum": refunds, "sumSquares": refunds},
        ],
    }  # fmt: skip
    if refunds is None:
        variant["metrics"] = variant["metrics"][:1]
    return variant


def _stats(*variants: dict[str, Any], state: str = "Running", epoch: str = "e1") -> ExperimentStatsResponse:
    return ExperimentStatsResponse.model_validate(
        {
            "experiment": {"name": "x", "namespace": "ns"},
            "generation": 1,
            "experimentVersion": "g1-x",
            "epoch": epoch,
            "epochStartTime": T0.timestamp(),
            "state": state,
            "backend": "Embedded",
            "variants": list(variants),
            "totalExposures": sum(v["exposures"] for v in variants),
        }
    )


def _observed(stats: ExperimentStatsResponse | None = None, **extra: Any) -> Observations:
    fields: dict[str, Any] = {"deployment": ROLLED_OUT, "config_hash": HASH, **extra}
    spec = ExperimentSpec.model_validate(fields.pop("spec", SPEC))
    return Observations(generation=1, spec=spec, stats=stats, **fields)


def _conditions(status: ExperimentStatus) -> list[tuple[str, str, str]]:
    return [(c.type, str(c.status), c.reason) for c in status.conditions or []]


NO_GUARDRAILS = {k: v for k, v in SPEC.items() if k != "guardrails"}


def test_b_truly_better_is_the_winner_with_the_numbers_in_status() -> None:
    stats = _stats(_variant("a", 5000, 500, refunds=None), _variant("b", 5000, 650, refunds=None))
    status = desired_status(_observed(stats, spec=NO_GUARDRAILS), None, T0)
    assert status.winner == "b"
    assert _conditions(status)[0] == ("Ready", "True", "WinnerFound")
    assert "b beats a: lift 30.0%" in (status.conditions or [])[0].message
    a, b = status.variants or []
    assert (a.exposures, a.outcomes, a.mean, a.variance) == (5000, 500.0, 0.1, 0.09)
    assert a.lift is None and b.lift is not None and b.lift.lower > 0
    assert b.p_value is not None and b.p_value < 0.001
    assert next((m.name, m.count, m.sum, m.sum_squares) for m in b.metrics or []) == ("conversion", 5000, 650.0, 650.0)
    assert status.split == "a=50,b=50" and status.total_exposures == 10000 and status.epoch == "e1"
    assert status.srm_p_value == 1.0 and status.last_analysis_time == T0


def test_a_broken_split_is_a_sample_ratio_mismatch_and_withholds_the_winner() -> None:
    status = desired_status(_observed(_stats(_variant("a", 5000, 500), _variant("b", 4000, 650))), None, T0)
    assert _conditions(status) == [
        ("Ready", "True", "SampleRatioMismatch"),
        ("Progressing", "False", "SampleRatioMismatch"),
        ("Degraded", "True", "SampleRatioMismatch"),
        ("Reconciling", "False", "SampleRatioMismatch"),
        ("Stalled", "True", "SampleRatioMismatch"),
    ]
    assert status.winner is None and status.srm_p_value is not None and status.srm_p_value < 1e-9


def test_too_little_traffic_reports_progress() -> None:
    status = desired_status(_observed(_stats(_variant("a", 250, 20), _variant("b", 250, 30))), None, T0)
    assert _conditions(status)[:2] == [
        ("Ready", "True", "InsufficientTraffic"),
        ("Progressing", "True", "InsufficientTraffic"),
    ]
    assert (status.conditions or [])[0].message.startswith("25.0% of the traffic needed")


def test_settled_writes_nothing_and_new_counts_write_once() -> None:
    observed = _observed(_stats(_variant("a", 5000, 500), _variant("b", 5000, 650)))
    first = desired_status(observed, None, T0)
    stored = first.to_wire()
    again = desired_status(observed, ExperimentStatus.model_validate(stored), T1)
    assert status_patch(stored, again, None) is None
    more = desired_status(
        _observed(_stats(_variant("a", 5001, 500), _variant("b", 5000, 650))),
        ExperimentStatus.model_validate(stored),
        T1,
    )
    assert more.last_analysis_time == T1 and (more.variants or [])[0].exposures == 5001


def test_a_guardrail_violation_is_acted_on_through_the_served_config_not_the_spec() -> None:
    stats = _stats(_variant("a", 5000, 500, refunds=100), _variant("b", 5000, 500, refunds=300))
    status = desired_status(_observed(stats), None, T0)
    action = status.guardrail_action
    assert action is not None and (action.variant, action.metric, action.action) == ("b", "refunds", "Pause")
    assert action.time == T0 and action.lift.lower > 0.05
    assert _conditions(status)[0] == ("Ready", "True", "GuardrailViolated")
    assert _conditions(status)[2] == ("Degraded", "True", "GuardrailViolated")
    assert _conditions(status)[4] == ("Stalled", "True", "GuardrailViolated")  # acted on: stays until a new epoch
    body = {"metadata": {"name": "x", "namespace": "ns"}, "spec": SPEC, "status": status.to_wire()}
    assert served_state(parse_experiment(body)) == "Paused"
    assert body["spec"].get("state") is None
    # Once taken the action stays (time included), even after the runtime stopped counting.
    paused = desired_status(_observed(_stats(*[_variant("a", 5000, 500, 100), _variant("b", 5000, 500, 300)],
                                             state="Paused")), status, T1)  # fmt: skip
    assert paused.guardrail_action == action and paused.split == "a=100"


@pytest.mark.parametrize(
    ("field", "reason", "degraded"),
    [("missing_targets", "TargetNotFound", "True"), ("unready_targets", "TargetNotReady", "False")],
)
def test_a_missing_or_unready_policy_target_is_reported(field: str, reason: str, degraded: str) -> None:
    status = desired_status(_observed(None, **{field: ("banner",)}), None, T0)
    assert _conditions(status)[0] == ("Ready", "False", reason)
    assert _conditions(status)[2][1] == degraded
    assert "decisionPolicyRef banner" in (status.conditions or [])[0].message
    assert "serving control" in (status.conditions or [])[0].message


@pytest.mark.parametrize(
    ("field", "value", "reason", "text"),
    [
        ("missing_models", ("ranker",), "TargetNotFound", "modelDeploymentRef ranker: ModelDeployment not found"),
        ("unready_models", ("ranker (version 3 is LOADING)",), "TargetNotReady", "ranker (version 3 is LOADING)"),
        ("unsupported", ("canary",), "TargetNotSupported", "routing mode VersionLabels"),
    ],
)
def test_a_model_deployment_target_that_cannot_serve_is_reported(
    field: str, value: tuple[str, ...], reason: str, text: str
) -> None:
    status = desired_status(_observed(None, **{field: value}), None, T0)
    assert _conditions(status)[0] == ("Ready", "False", reason)
    message = (status.conditions or [])[0].message
    assert text in message and "serving control" in message


def test_a_model_version_target_is_servable_only_through_the_router_and_when_available() -> None:
    def deployment(mode: str | None, state: str | None) -> dict[str, Any]:
        spec: dict[str, Any] = {"routing": {"mode": mode}} if mode else {}
        rows = [{"version": 2, "state": state}] if state else []
        return {"spec": spec, "status": {"versions": rows}}

    assert _model_target_problem(deployment(None, "AVAILABLE"), 2) is None  # VersionLabels is the default
    assert _model_target_problem(deployment("VersionLabels", "AVAILABLE"), 2) is None
    assert _model_target_problem(deployment("GatewayAPI", "AVAILABLE"), 2) == "unsupported"
    assert _model_target_problem(deployment("VersionLabels", "LOADING"), 2) == "version 2 is LOADING"
    assert "not loaded" in str(_model_target_problem(deployment("VersionLabels", None), 2))
    # Declared in the spec, not yet in the status (not observed by the ModelDeployment yet): said so.
    declared = {**deployment("VersionLabels", None), "spec": {"stable": {"version": 1}, "canary": {"version": 2}}}
    assert _model_target_problem(declared, 2) == "version 2 has no state in its status yet"


def test_paused_serves_control_and_says_so() -> None:
    status = desired_status(_observed(_stats(_variant("a", 10, 1), _variant("b", 10, 1), state="Paused")), None, T0)
    assert _conditions(status)[0] == ("Ready", "True", "Paused")
    assert status.split == "a=100"


def test_a_rollout_in_progress_is_not_ready() -> None:
    waiting = DeploymentState(1, 1, 1, 1, 0, 0, 0, HASH)
    status = desired_status(_observed(None, deployment=waiting), None, T0)
    assert _conditions(status)[0][:2] == ("Ready", str(ConditionStatus.FALSE))
    assert _conditions(status)[0][2] == "RolloutInProgress"


@pytest.mark.parametrize(("rule", "factor"), [("Bonferroni", 2.0), ("None", 1.0)])
def test_the_spec_multiple_comparison_rule_reaches_the_analysis(rule: str, factor: float) -> None:
    three = {**SPEC, "variants": [*SPEC["variants"], {"name": "c", "weight": 0, "payload": {"v": 3}}]}
    three["variants"] = [{**v, "weight": w} for v, w in zip(three["variants"], (34, 33, 33), strict=True)]
    spec = ExperimentSpec.model_validate({**three, "analysis": {**SPEC["analysis"], "multipleComparisons": rule}})
    stats = _stats(_variant("a", 3000, 300), _variant("b", 3000, 345), _variant("c", 3000, 310))
    comparisons = [v.comparison for v in run_analysis(spec, stats).variants[1:]]
    for comparison in comparisons:
        assert comparison is not None and comparison.p_value is not None
        assert comparison.adjusted_p_value == pytest.approx(min(1.0, comparison.p_value * factor), rel=1e-9)


def test_bayesian_expected_loss_is_in_status() -> None:
    spec = {**NO_GUARDRAILS, "analysis": {"method": "Bayesian", "minimumSamplesPerVariant": 1000}}
    stats = _stats(_variant("a", 5000, 500, refunds=None), _variant("b", 5000, 540, refunds=None))
    status = desired_status(_observed(stats, spec=spec), None, T0)
    a, b = status.variants or []
    comparison = run_analysis(ExperimentSpec.model_validate(spec), stats).variants[1].comparison
    assert comparison is not None and comparison.expected_loss is not None and comparison.expected_loss > 0
    assert a.expected_loss is None
    assert b.expected_loss == pytest.approx(comparison.expected_loss, rel=1e-5)
    assert b.probability_to_beat_control is not None and 0.5 < b.probability_to_beat_control < 1
    assert ExperimentStatus.model_validate(status.to_wire()).variants[1].expected_loss == b.expected_loss  # type: ignore[index]
    frequentist = desired_status(_observed(stats, spec=NO_GUARDRAILS), None, T0)
    assert all(v.expected_loss is None for v in frequentist.variants or [])


HARMFUL = (_variant("a", 5000, 500, refunds=100), _variant("b", 5000, 500, refunds=300))
HARMLESS = (_variant("a", 5000, 500, refunds=100), _variant("b", 5000, 500, refunds=100))


def _served(spec: dict[str, Any], status: ExperimentStatus) -> str:
    body = {"metadata": {"name": "x", "namespace": "ns"}, "spec": spec, "status": status.to_wire()}
    return str(served_state(parse_experiment(body)))


def test_a_new_epoch_clears_a_guardrail_pause_and_its_data_decides_again() -> None:
    paused = desired_status(_observed(_stats(*HARMFUL)), None, T0)
    assert paused.guardrail_action is not None and paused.guardrail_action.epoch == "e1"
    assert _served(SPEC, paused) == "Paused"
    # The user changes the split (a new salt): the runtime, still serving Paused, reports the new epoch.
    resumed = desired_status(_observed(_stats(*HARMFUL, state="Paused", epoch="e2")), paused, T1)
    assert resumed.guardrail_action is None and _served(SPEC, resumed) == "Running"
    assert _conditions(resumed)[0] == ("Ready", "True", "Paused")
    # The new epoch's data decides: harmful again, paused again.
    again = desired_status(_observed(_stats(*HARMFUL, epoch="e2")), resumed, T1 + timedelta(minutes=1))
    assert again.guardrail_action is not None and again.guardrail_action.epoch == "e2"


def test_an_action_stored_without_an_epoch_belongs_to_the_stored_epoch() -> None:
    paused = desired_status(_observed(_stats(*HARMFUL)), None, T0)
    assert paused.guardrail_action is not None
    legacy = paused.model_copy(update={"guardrail_action": paused.guardrail_action.model_copy(update={"epoch": None})})
    assert desired_status(_observed(_stats(*HARMFUL, state="Paused")), legacy, T1).guardrail_action is not None
    assert desired_status(_observed(_stats(*HARMFUL, state="Paused", epoch="e2")), legacy, T1).guardrail_action is None


def test_report_only_guardrails_follow_the_current_numbers() -> None:
    spec = {**SPEC, "onGuardrailViolation": "None"}
    violated = desired_status(_observed(_stats(*HARMFUL), spec=spec), None, T0)
    assert violated.guardrail_action is not None and violated.guardrail_action.action == "None"
    assert _conditions(violated)[0] == ("Ready", "True", "GuardrailViolated") and _served(spec, violated) == "Running"
    # Reported, not acted on: Degraded but not Stalled (kstatus), since it clears with the numbers by itself.
    assert ("Degraded", "True", "GuardrailViolated") in _conditions(violated)
    assert ("Stalled", "False", "GuardrailViolated") in _conditions(violated)
    still = desired_status(_observed(_stats(*HARMFUL[:1], _variant("b", 5001, 500, 300)), spec=spec), violated, T1)
    assert still.guardrail_action is not None and still.guardrail_action.time == T0
    cleared = desired_status(_observed(_stats(*HARMLESS), spec=spec), violated, T1)
    assert cleared.guardrail_action is None
    assert ("Degraded", "True", "GuardrailViolated") not in _conditions(cleared)
    assert _conditions(cleared)[0][2] != "GuardrailViolated"


@pytest.mark.parametrize("on_conclude", ["KeepWinner", "Nothing", "KeepControl"])
def test_a_guardrail_conclude_serves_control_whatever_on_conclude_says(on_conclude: str) -> None:
    spec = {**SPEC, "onGuardrailViolation": "Conclude", "onConclude": on_conclude}
    status = desired_status(_observed(_stats(*HARMFUL), spec=spec), None, T0)
    assert status.guardrail_action is not None and status.guardrail_action.action == "Conclude"
    stored = status.model_copy(update={"winner": "b"})  # even a stored winner that is the harmful variant
    body = {"metadata": {"name": "x", "namespace": "ns"}, "spec": spec, "status": stored.to_wire()}
    served = served_document(parse_experiment(body))
    assert served["spec"]["state"] == "Concluded" and served["spec"]["onConclude"] == "KeepControl"
    assert "status" not in served
    concluded = desired_status(_observed(_stats(*HARMFUL, state="Concluded"), spec=spec), stored, T1)
    assert concluded.split == "a=100"
    # The user's own Concluded keeps its onConclude.
    user = {**spec, "state": "Concluded"}
    mine = served_document(parse_experiment({**body, "spec": user}))
    assert mine["spec"]["onConclude"] == on_conclude


def test_policy_tokens_are_stored_for_the_render_and_an_unmountable_secret_is_named_in_ready() -> None:
    token = PolicyToken(policy="banner", secret_name="banner-tokens", key="frontend")
    problem = (
        "Secret shop/rank-auth of DecisionPolicy rank lacks the label croupier.dev/runtime-auth=true, so it is not"
    )
    stats = _stats(_variant("a", 5000, 500, refunds=None), _variant("b", 5000, 650, refunds=None))
    status = desired_status(
        _observed(stats, spec=NO_GUARDRAILS, policy_tokens=(token,), token_problems=(f"{problem} mounted",)), None, T0
    )
    assert status.policy_tokens == [token]
    ready = (status.conditions or [])[0]
    assert (ready.type, ready.reason) == ("Ready", "WinnerFound")
    assert ready.message.startswith("b beats a") and f"{problem} mounted" in ready.message
    # What the render reads back from the stored status.
    stored = status.to_wire()
    body = {"metadata": {"name": "x", "namespace": "shop"}, "spec": NO_GUARDRAILS, "status": stored}
    assert parse_experiment(body).policy_tokens == (("banner", "banner-tokens", "frontend"),)
    clean = desired_status(_observed(stats, spec=NO_GUARDRAILS), None, T0)
    assert clean.policy_tokens is None and "runtime-auth" not in (clean.conditions or [])[0].message


def test_targets_observed_ready_are_recorded_and_gate_the_served_state() -> None:
    """status.readyTargets is what the observer saw Ready (None: not checked, the stored list stays); while the
    rendered config still serves control for a target that is now Ready, status says the rollout is in progress."""
    policy_spec = {
        **SPEC,
        "variants": [SPEC["variants"][0], {"name": "b", "weight": 50, "decisionPolicyRef": {"name": "p"}}],
    }
    awaiting = _observed(spec=policy_spec, ready_targets=("DecisionPolicy/p",), awaiting_targets=("DecisionPolicy/p",))
    status = desired_status(awaiting, None, T0)
    assert status.ready_targets == ["DecisionPolicy/p"]
    assert _conditions(status)[0] == ("Ready", "False", "RolloutInProgress")
    assert "DecisionPolicy/p observed Ready" in (status.conditions or [])[0].message
    body = {"metadata": {"name": "x", "namespace": "ns", "generation": 1}, "spec": policy_spec}
    assert served_state(parse_experiment(body)) == "Paused"
    stored = status.to_wire()
    assert served_state(parse_experiment({**body, "status": stored})) == "Running"
    # Not checked in this pass (no API access): the stored list stays. Checked and not Ready: the list empties.
    assert desired_status(_observed(spec=policy_spec), status, T1).ready_targets == ["DecisionPolicy/p"]
    gone = _observed(spec=policy_spec, ready_targets=(), missing_targets=("p",))
    emptied = desired_status(gone, status, T1)
    assert emptied.ready_targets is None
    assert _conditions(emptied)[0] == ("Ready", "False", "TargetNotFound")
    assert served_state(parse_experiment({**body, "status": emptied.to_wire()})) == "Paused"
