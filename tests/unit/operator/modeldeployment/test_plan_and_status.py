"""GetModelStatus -> serving plan -> status: labels only on AVAILABLE versions, weight only to an AVAILABLE canary,
promotion that keeps the old stable until the new one is AVAILABLE, the progress deadline and named load failures."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.api.modeldeployment import ModelVersionState
from croupier.operator.core.status import status_patch
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.modeldeployment.children import CANARY, MAIN, STABLE, server_roles
from croupier.operator.modeldeployment.handlers import OWNED_STATUS
from croupier.operator.modeldeployment.model import ModelDeploymentObject, parse_model_deployment
from croupier.operator.modeldeployment.plan import ServerView, plan
from croupier.operator.modeldeployment.status import Observations, ServerState, desired_status, failure_reason
from croupier.operator.settings import OperatorSettings
from croupier.runtime.tfserving.client import ErrorCode, VersionStatus

pytestmark = pytest.mark.unit

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
AVAILABLE, LOADING, END = ModelVersionState.AVAILABLE, ModelVersionState.LOADING, ModelVersionState.END
HASH = "h"


def md(**spec: Any) -> ModelDeploymentObject:
    body = {
        "metadata": {"name": "ranker", "namespace": "ml", "uid": "u", "generation": 1},
        "spec": {"model": {"name": "ranker", "storageUri": "file:///models/ranker"}, "stable": {"version": 1}, **spec},
    }
    return parse_model_deployment(body)


def rolled_out(replicas: int = 1) -> DeploymentState:
    return DeploymentState(
        spec_replicas=replicas,
        generation=1,
        observed_generation=1,
        replicas=replicas,
        updated=replicas,
        ready=replicas,
        available=replicas,
        config_hash=HASH,
    )


def observe(
    obj: ModelDeploymentObject,
    answers: dict[str, tuple[VersionStatus, ...] | None],
    applied: dict[str, dict[str, int]] | None = None,
    *,
    served: bool = True,
    errors: dict[str, str] | None = None,
    failures: int = 0,
) -> Observations:
    views = {r: ServerView(r, answers.get(r), (applied or {}).get(r)) for r in server_roles(obj)}
    serving = plan(obj, views)
    servers = {}
    for role in server_roles(obj):
        replicas = 0 if role == CANARY and obj.spec.canary is None else obj.spec.serving.replicas
        error = (errors or {}).get(role)
        servers[role] = ServerState(role, replicas, rolled_out(replicas), HASH, versions=answers.get(role), error=error)
    return Observations(
        generation=obj.generation,
        md=obj,
        servers=servers,
        plan=serving,
        served=served,
        failures=failures,
        failure_threshold=2,
        endpoint="ranker.ml.svc:8500",
        rest_endpoint="http://ranker.ml.svc:8501",
    )


def conditions(status: Any) -> list[tuple[str, str, str]]:
    return [(c.type, str(c.status), c.reason) for c in status.conditions]


def v(number: int, state: ModelVersionState, code: ErrorCode = ErrorCode.OK, message: str = "") -> VersionStatus:
    return VersionStatus(number, state, code, message)


CANARY_10 = {"canary": {"version": 2, "weight": 10}}


def test_nothing_labelled_or_weighted_before_tf_serving_reports_available() -> None:
    obj = md(**CANARY_10)
    serving = plan(obj, {})
    assert [(s.role, s.versions, dict(s.labels)) for s in serving.servers] == [(MAIN, (1, 2), {})]
    assert serving.canary_weight == 0
    status = desired_status(observe(obj, {MAIN: (v(1, LOADING), v(2, LOADING))}), None, T0)
    assert conditions(status) == [
        ("Ready", "False", "VersionLoading"),
        ("Progressing", "True", "VersionLoading"),
        ("Degraded", "False", "AsExpected"),
        ("Reconciling", "True", "VersionLoading"),
        ("Stalled", "False", "AsExpected"),
    ]
    assert [(r.version, r.role, r.state, r.weight) for r in status.versions or []] == [
        (1, "stable", "LOADING", 0),
        (2, "canary", "LOADING", 0),
    ]


def test_canary_gets_its_weight_only_once_available_then_ready() -> None:
    obj = md(**CANARY_10)
    loading = observe(obj, {MAIN: (v(1, AVAILABLE), v(2, LOADING))})
    assert loading.plan is not None and loading.plan.canary_weight == 0
    assert dict(loading.plan.servers[0].labels) == {"stable": 1}
    status = desired_status(loading, None, T0)
    assert status.canary_weight == 0 and conditions(status)[0] == ("Ready", "False", "VersionLoading")
    ready = desired_status(observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))}), status, T0 + timedelta(seconds=5))
    assert conditions(ready) == [
        ("Ready", "True", "Available"),
        ("Progressing", "False", "Available"),
        ("Degraded", "False", "AsExpected"),
        ("Reconciling", "False", "Available"),
        ("Stalled", "False", "AsExpected"),
    ]
    assert ready.canary_weight == 10
    assert [(r.version, r.weight, r.state) for r in ready.versions or []] == [
        (1, 90, "AVAILABLE"),
        (2, 10, "AVAILABLE"),
    ]
    # The split not carried yet by the live route/config: not Ready.
    lagging = observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))}, served=False)
    assert conditions(desired_status(lagging, ready, T0))[0] == ("Ready", "False", "WeightNotServed")


def test_steps_start_at_the_first_steps_weight() -> None:
    obj = md(canary={"version": 2, "steps": [{"weight": 5}, {"weight": 50}]})
    status = desired_status(observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))}), None, T0)
    assert (status.canary_weight, status.current_step) == (5, 0)
    assert conditions(status)[0] == ("Ready", "True", "Available")


def test_unchanged_observations_write_nothing_and_keep_requested_times() -> None:
    obj = md(**CANARY_10)
    observed = observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))})
    first = desired_status(observed, None, T0)
    again = desired_status(observed, first, T0 + timedelta(minutes=3))
    assert status_patch(first.to_wire(), again, OWNED_STATUS) is None
    # Fields the canary engine owns are not touched.
    stored = {**first.to_wire(), "rollbackReason": "kept", "stepStartTime": "2026-01-01T00:00:00Z"}
    assert status_patch(stored, again, OWNED_STATUS) is None


@pytest.mark.parametrize(
    ("code", "message", "reason"),
    [
        (
            ErrorCode.NOT_FOUND,
            "Could not find base path /models/ranker/3 for servable ranker with error NOT_FOUND",
            "VersionNotFound",
        ),
        (
            ErrorCode.DATA_LOSS,
            "Can't parse /models/ranker/3/saved_model.pb as binary proto",
            "SavedModelInvalid",
        ),
        (
            ErrorCode.NOT_FOUND,
            "SavedModel file does not exist at: /models/ranker/3/{saved_model.pbtxt|saved_model.pb}",
            "SavedModelInvalid",
        ),
        (ErrorCode.INVALID_ARGUMENT, "Invalid GraphDef", "SavedModelInvalid"),
        (ErrorCode.PERMISSION_DENIED, "s3://bucket/ranker: Access Denied", "StorageUnreadable"),
        (ErrorCode.UNKNOWN, "Error executing an HTTP request: HTTP response code 403 Forbidden", "StorageUnreadable"),
        (ErrorCode.UNAUTHENTICATED, "missing credentials", "StorageUnreadable"),
        (ErrorCode.RESOURCE_EXHAUSTED, "OOM when allocating tensor", "VersionNotAvailable"),
    ],
)
def test_tf_serving_errors_get_named_reasons(code: ErrorCode, message: str, reason: str) -> None:
    assert failure_reason(code, message) == reason


def test_a_failed_canary_degrades_with_tf_servings_text_while_stable_keeps_everything() -> None:
    obj = md(**CANARY_10)
    text = "Can't parse /models/ranker/2/saved_model.pb as binary proto"
    status = desired_status(observe(obj, {MAIN: (v(1, AVAILABLE), v(2, END, ErrorCode.DATA_LOSS, text))}), None, T0)
    assert conditions(status) == [
        ("Ready", "False", "SavedModelInvalid"),
        ("Progressing", "False", "SavedModelInvalid"),
        ("Degraded", "True", "SavedModelInvalid"),
        ("Reconciling", "False", "SavedModelInvalid"),
        ("Stalled", "True", "SavedModelInvalid"),
    ]
    assert status.conditions is not None and text in status.conditions[2].message
    assert status.canary_weight == 0
    assert [(r.version, r.weight, r.message) for r in status.versions or []] == [(1, 100, None), (2, 0, text)]


def test_progress_deadline_turns_loading_into_degraded_with_a_named_reason() -> None:
    obj = md(canary={"version": 3, "weight": 10}, progressDeadlineSeconds=60)
    missing = observe(obj, {MAIN: (v(1, AVAILABLE),)})
    first = desired_status(missing, None, T0)
    assert conditions(first)[1] == ("Progressing", "True", "VersionLoading")
    later = desired_status(missing, first, T0 + timedelta(seconds=61))
    assert conditions(later)[2] == ("Degraded", "True", "VersionNotFound")
    assert later.conditions is not None and "canary version 3 not AVAILABLE after 60s" in later.conditions[2].message
    slow = observe(obj, {MAIN: (v(1, AVAILABLE), v(3, LOADING))})
    assert conditions(desired_status(slow, first, T0 + timedelta(seconds=61)))[2] == (
        "Degraded",
        "True",
        "VersionNotAvailable",
    )


def test_promotion_keeps_the_old_stable_loaded_and_labelled_until_the_new_one_is_available() -> None:
    obj = md()  # stable.version 1 ... promoted to 2 below
    promoted = md(stable={"version": 2})
    applied = {MAIN: {"stable": 1, "canary": 2}}
    during = observe(promoted, {MAIN: (v(1, AVAILABLE), v(2, LOADING))}, applied)
    assert during.plan is not None
    assert (during.plan.servers[0].versions, dict(during.plan.servers[0].labels)) == ((1, 2), {"stable": 1})
    status = desired_status(during, None, T0)
    assert conditions(status)[:2] == [("Ready", "False", "Promoting"), ("Progressing", "True", "Promoting")]
    assert [(r.version, r.weight) for r in status.versions or []] == [(1, 100), (2, 0)]
    # Once 2 is AVAILABLE, 1 leaves the config (TF Serving unloads it) and 2 carries the label and the traffic.
    done = observe(promoted, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))}, {MAIN: {"stable": 1}})
    assert done.plan is not None
    assert (done.plan.servers[0].versions, dict(done.plan.servers[0].labels)) == ((2,), {"stable": 2})
    assert conditions(desired_status(done, status, T0))[0] == ("Ready", "True", "Available")
    assert obj.spec.stable.version == 1


def test_gateway_mode_weights_the_canary_server_by_its_own_status() -> None:
    obj = md(canary={"version": 2, "weight": 30}, routing={"mode": "GatewayAPI", "parentRefs": [{"name": "gw"}]})
    loading = observe(obj, {STABLE: (v(1, AVAILABLE),), CANARY: (v(2, LOADING),)})
    assert loading.plan is not None and loading.plan.canary_weight == 0
    ready = observe(obj, {STABLE: (v(1, AVAILABLE),), CANARY: (v(2, AVAILABLE),)})
    assert ready.plan is not None and ready.plan.canary_weight == 30
    assert [(s.role, s.versions, dict(s.labels)) for s in ready.plan.servers] == [
        (STABLE, (1,), {"stable": 1}),
        (CANARY, (2,), {"canary": 2}),
    ]
    assert conditions(desired_status(ready, None, T0))[0] == ("Ready", "True", "Available")


def test_an_unreachable_model_server_is_inconclusive_once_then_degraded() -> None:
    obj = md(**CANARY_10)
    good = desired_status(observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))}), None, T0)
    applied = {MAIN: {"stable": 1, "canary": 2}}
    error = {MAIN: "GetModelStatus on ranker.ml.svc:8500 failed: UNAVAILABLE: connection refused"}
    once = observe(obj, {MAIN: None}, applied, errors=error, failures=1)
    assert once.plan is not None and once.plan.canary_weight == 10  # unread status changes nothing applied
    assert conditions(desired_status(once, good, T0)) == conditions(good)
    twice = observe(obj, {MAIN: None}, applied, errors=error, failures=2)
    assert conditions(desired_status(twice, good, T0))[2] == ("Degraded", "True", "ModelServerUnreachable")


STATES = [None, LOADING, AVAILABLE, END]


@pytest.mark.parametrize("mode", ["VersionLabels", "GatewayAPI"])
def test_labels_only_ever_point_at_available_versions(mode: str) -> None:
    routing = {"mode": mode, **({"parentRefs": [{"name": "gw"}]} if mode == "GatewayAPI" else {})}
    obj = md(stable={"version": 2}, canary={"version": 3, "weight": 25}, routing=routing)
    roles = server_roles(obj)
    for states in itertools.product(STATES, repeat=3):
        answers = tuple(v(n, s) for n, s in zip((1, 2, 3), states, strict=True) if s is not None)
        for previous in ({}, {"stable": 1}, {"stable": 1, "canary": 3}):
            views = {r: ServerView(r, answers, previous) for r in roles}
            serving = plan(obj, views)
            available = {a.version for a in answers if a.state == AVAILABLE}
            for server in serving.servers:
                assert set(server.labels.values()) <= available & set(server.versions)
            assert serving.canary_weight in (0, 25)
            assert (serving.canary_weight == 25) == (3 in available)


def test_example_manifest_parses() -> None:
    root = Path(__file__).resolve().parents[4]
    body = yaml.safe_load((root / "examples" / "modeldeployment-canary.yaml").read_text())
    body["metadata"].update(namespace="ml", uid="u", generation=1)
    assert parse_model_deployment(body).spec.model.name == "ranker"


def test_a_version_that_failed_leaves_the_config_and_stays_out_while_the_spec_names_it() -> None:
    obj = md(**CANARY_10)
    text = "Can't parse /models/ranker/2/saved_model.pb as binary proto"
    failed = observe(obj, {MAIN: (v(1, AVAILABLE), v(2, END, ErrorCode.DATA_LOSS, text))}, {MAIN: {"stable": 1}})
    assert failed.plan is not None
    server = failed.plan.servers[0]
    assert (server.versions, server.failed, dict(server.labels)) == ((1,), (2,), {"stable": 1})
    first = desired_status(failed, None, T0)
    # A new pod no longer reports version 2 at all; the live config's record keeps it out, the status keeps the text.
    views = {MAIN: ServerView(MAIN, (v(1, AVAILABLE),), {"stable": 1}, frozenset({2}))}
    again = plan(obj, views)
    assert (again.servers[0].versions, again.servers[0].failed, again.canary_weight) == ((1,), (2,), 0)
    fresh_pod = ServerState(MAIN, 1, rolled_out(), HASH, versions=(v(1, AVAILABLE),))
    later = Observations(**{**failed.__dict__, "plan": again, "servers": {MAIN: fresh_pod}})
    status = desired_status(later, first, T0 + timedelta(minutes=1))
    assert conditions(status)[2] == ("Degraded", "True", "SavedModelInvalid")
    assert [(r.version, r.state, r.message) for r in status.versions or []] == [
        (1, "AVAILABLE", None),
        (2, "END", text),
    ]
    # A new canary version clears the record.
    newer = md(canary={"version": 3, "weight": 10})
    assert plan(newer, views).servers[0].failed == ()


def test_not_ready_until_tf_serving_resolves_the_planned_labels() -> None:
    obj = md(**CANARY_10)
    observed = observe(obj, {MAIN: (v(1, AVAILABLE), v(2, AVAILABLE))})
    behind = replace(observed.servers[MAIN], unapplied_labels=("canary",))
    lagging = Observations(**{**observed.__dict__, "servers": {MAIN: behind}})
    status = desired_status(lagging, None, T0)
    assert conditions(status)[0] == ("Ready", "False", "WeightNotServed")
    assert status.conditions is not None and "canary" in status.conditions[0].message


def test_the_progress_deadline_starts_when_a_running_server_can_be_asked() -> None:
    obj = md(progressDeadlineSeconds=60)
    starting = observe(obj, {MAIN: None})
    unread = Observations(**{**starting.__dict__, "servers": {MAIN: replace(starting.servers[MAIN], error=None)}})
    first = desired_status(unread, None, T0)
    assert [(r.version, r.requested_time) for r in first.versions or []] == [(1, None)]
    asked = desired_status(observe(obj, {MAIN: (v(1, LOADING),)}), first, T0 + timedelta(minutes=30))
    assert [r.requested_time for r in asked.versions or []] == [T0 + timedelta(minutes=30)]
    assert conditions(asked)[1] == ("Progressing", "True", "VersionLoading")


def test_a_decided_weight_replaces_the_specs_only_once_the_canary_is_available() -> None:
    obj = md(canary={"version": 2, "steps": [{"weight": 5}, {"weight": 50}]})
    ready = {MAIN: ServerView(MAIN, (v(1, AVAILABLE), v(2, AVAILABLE)))}
    assert plan(obj, ready, desired_weight=50).canary_weight == 50
    loading = {MAIN: ServerView(MAIN, (v(1, AVAILABLE), v(2, LOADING)))}
    assert plan(obj, loading, desired_weight=50).canary_weight == 0


def test_the_model_server_address_is_the_service_unless_the_deployer_overrides_it() -> None:
    assert (
        OperatorSettings().model_server_address(name="r", namespace="ml", service="r-stable") == "r-stable.ml.svc:8500"
    )
    local = OperatorSettings(model_server_address_template="127.0.0.1:9000")
    assert local.model_server_address(name="r", namespace="ml", service="r-stable") == "127.0.0.1:9000"
    with pytest.raises(ValidationError, match="unknown placeholders"):
        OperatorSettings(model_server_address_template="{pod}:8500")
