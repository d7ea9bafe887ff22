"""A ModelDeployment in routing mode VersionLabels: the operator deploys the model router and drives the canary through
it, on the real local control plane, with the local model server on real SavedModels and a real router process.

kwok pods run nothing, so the test plays the kubelet (``support.modelrouting``): one model server process is the TF
Serving pod (its model config copied from ``<name>-models``), one ``croupier-modelrouter`` process is the router
pod (its routing table copied from ``<name>-routing`` only when the router's pod object changes, or once a minute, as
the kubelet refreshes a ConfigMap volume). The operator reaches TF Serving through
``CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE`` and the router's counters through
``CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE``. Traffic names no version: the router splits it by the live weight.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from integration.ops.health_recorder import record
from support.modelrouting import RouterProcess, RouterTraffic, router_selector, version_labels_pods
from support.savedmodels import DIMS, FAILING_VERSION, ranker_repository

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.operator.modeldeployment.children import ROUTING_ANNOTATION

from ..test_crd_admission_modeldeployment import install_gateway_api
from .test_modeldeployment import ADDRESS_ENV, Deployments, conditions
from .test_modeldeployment_canary import event_reasons

ROUTER_METRICS_ENV = "CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE"
ROUTER_SELECTOR = router_selector("ranker")
STEPS = [{"weight": 20, "pauseSeconds": 10}, {"weight": 50, "pauseSeconds": 10}, {"weight": 100, "pauseSeconds": 10}]
ANALYSIS = {"intervalSeconds": 10, "minRequests": 10, "maxErrorRate": 0.05, "failureLimit": 0}


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


def body(namespace: str, spec: dict[str, Any]) -> str:
    meta = {"name": "ranker", "namespace": namespace}
    kind = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
    return json.dumps({**kind, "metadata": meta, "spec": spec})


def test_a_canary_walks_its_steps_through_the_router_and_a_failing_one_is_rolled_back(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    repository = ranker_repository(tmp_path)
    canary = {"version": 2, "steps": STEPS, "analysis": ANALYSIS}
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"},
        "stable": {"version": 1},
        "canary": canary,
        "routing": {"mode": "VersionLabels"},
    }
    kubectl.apply(body(namespace, spec))
    mds = Deployments(kubectl, namespace)
    router_deployment = mds.child("deployment", "ranker-router")
    assert router_deployment["spec"]["template"]["spec"]["containers"][0]["command"] == ["croupier-modelrouter"]
    assert mds.child("service", "ranker")["spec"]["selector"]["croupier.dev/server"] == "router"
    assert mds.child("service", "ranker-tfserving")["spec"]["selector"]["croupier.dev/server"] == "main"

    with version_labels_pods(kubectl, namespace, tmp_path) as (server, routing_volume):
        routing = routing_volume.path
        router = RouterProcess(routing, server.rest_url, server.grpc_target, tmp_path / "router.log")
        try:
            router.start()
            operator.extra_env = {ADDRESS_ENV: server.grpc_target, ROUTER_METRICS_ENV: f"{router.rest_url}/metrics"}
            operator.restart()
            with RouterTraffic(router.rest_url, "ranker", DIMS) as traffic:
                seen: list[tuple[int, int]] = []
                reached: dict[int, float] = {}  # weight -> seconds from the status showing it to the router serving it
                shown: dict[int, float] = {}

                def complete() -> dict[str, Any] | None:
                    found = mds.get("ranker")
                    status = found.get("status") or {}
                    pair = (status.get("currentStep"), status.get("canaryWeight"))
                    if pair[1] and (not seen or seen[-1] != pair):
                        seen.append(pair)
                        shown.setdefault(pair[1], time.monotonic())
                    served = router.metric("croupier_router_canary_weight", model="ranker")
                    if served in shown and int(served) not in reached:
                        reached[int(served)] = time.monotonic() - shown[int(served)]
                    return found if (status.get("rollout") or {}).get("state") == "Complete" else None

                try:
                    done = wait_for(complete, timeout=180, interval=0.5, what="the canary's last step")
                except TimeoutError:
                    raise AssertionError(f"steps seen {seen}; status {mds.get('ranker').get('status')}") from None
                assert seen[0] == (0, 20) and seen[-1] == (2, 100), seen
                assert (1, 50) in seen
                assert conditions(done)["Ready"]["status"] == "True"
                analyses = done["status"]["rollout"]["analyses"]
                # Measured from the router's per-version counters: passes need minRequests canary requests.
                assert all(a["result"] == "Passed" for a in analyses[-3:]) and analyses[-1]["requests"] >= 10
                # Each weight reached the router within 5 s of the status showing it (no pod restart: the operator
                # annotates the router's pods, the "kubelet" refreshes the volume on that update).
                wait_for(
                    lambda: router.metric("croupier_router_canary_weight", model="ranker") == 100,
                    timeout=5,
                    what="weight 100 at the router",
                )
                assert all(seconds < 5 for seconds in reached.values()), reached
                assert routing_volume.pod_annotation(ROUTING_ANNOTATION)[0], "router pods were not annotated"
                moment = time.monotonic()
                wait_for(lambda: sum(traffic.since(moment).values()) >= 20, timeout=20, what="20 answers")
                assert set(traffic.since(moment)) == {"2"}, traffic.since(moment)

                # A failing canary (half its answers are TensorFlow errors): rolled back through the router's counts.
                failing = {**canary, "version": FAILING_VERSION}
                kubectl("patch", "modeldeployment", "ranker", "-n", namespace, "--type=merge",
                        "-p", json.dumps({"spec": {"canary": failing}}))  # fmt: skip
                started = time.monotonic()
                rolled = mds.wait("ranker", "Degraded", "True", "RolledBack", timeout=120)
                took = time.monotonic() - started
                wait_for(
                    lambda: router.metric("croupier_router_canary_weight", model="ranker") == 0,
                    timeout=5,
                    what="weight 0 at the router after the rollback",
                )
                after = time.monotonic()
                wait_for(lambda: sum(traffic.since(after).values()) >= 20, timeout=20, what="20 answers")
                assert set(traffic.since(after)) == {"1"}, traffic.since(after)
            status = rolled["status"]
            assert status["canaryWeight"] == 0
            assert status["rollout"]["rollback"]["version"] == FAILING_VERSION
            message = conditions(rolled)["Degraded"]["message"]
            assert f"canary version {FAILING_VERSION} rolled back" in message and "maxErrorRate" in message
            assert traffic.errors[str(FAILING_VERSION)] > 0
            reasons = wait_for(
                lambda: r if "CanaryRolledBack" in (r := event_reasons(kubectl, namespace)) else None,
                timeout=20,
                what="the rollback Event",
            )
            assert {"CanaryStarted", "CanaryStepAdvanced", "CanaryComplete"} <= set(reasons)
            print(
                f"\nsteps seen {seen}; weight at the router after the status (s): {reached}; rollback {took:.1f}s "
                f"after the failing canary was applied; served {dict(traffic.served)}; "
                f"routing volume refreshed on {routing_volume.pod_syncs} pod updates"
            )
        finally:
            router.stop()


def test_a_routing_mode_change_deletes_the_other_modes_children(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    mds = Deployments(kubectl, namespace)
    spec = {"model": {"name": "ranker", "storageUri": "file:///models/ranker"}, "stable": {"version": 1}}
    kubectl.apply(body(namespace, {**spec, "routing": {"mode": "VersionLabels"}}))
    labels_only = [
        ("deployment", "ranker"),
        ("deployment", "ranker-router"),
        ("service", "ranker"),
        ("service", "ranker-tfserving"),
        ("poddisruptionbudget", "ranker-router"),
        ("configmap", "ranker-models"),
        ("configmap", "ranker-routing"),
    ]
    for kind, name in labels_only:
        mds.child(kind, name)

    def exists(kind: str, name: str) -> bool:
        return kubectl("get", kind, name, "-n", namespace, check=False).returncode == 0

    gateway = {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": "edge"}]}
    kubectl.apply(body(namespace, {**spec, "routing": gateway}))
    for kind, name in [("deployment", "ranker-stable"), ("httproute", "ranker"), ("configmap", "ranker-stable-models")]:
        mds.child(kind, name)
    wait_for(
        lambda: not any(exists(kind, name) for kind, name in labels_only),
        timeout=60,
        what="the VersionLabels children deleted",
    )
    assert exists("configmap", "ranker-server")  # both modes use it
    # Both modes render both NetworkPolicies (the router's then selects no pod): the operator may not delete them.
    assert exists("networkpolicy", "ranker-router") and exists("networkpolicy", "ranker-tfserving")

    kubectl.apply(body(namespace, {**spec, "routing": {"mode": "VersionLabels"}}))
    mds.child("deployment", "ranker-router")
    gateway_only = [("deployment", "ranker-stable"), ("deployment", "ranker-canary"), ("httproute", "ranker")]
    wait_for(
        lambda: not any(exists(kind, name) for kind, name in gateway_only),
        timeout=60,
        what="the GatewayAPI children deleted",
    )


def test_an_experiment_targeting_a_model_version_follows_its_model_deployment(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    """No ModelDeployment: TargetNotFound; one in GatewayAPI mode (no router): TargetNotSupported; in VersionLabels mode
    with the version not AVAILABLE (no model server answers here): TargetNotReady."""
    variants = [
        {"name": "control", "weight": 50, "payload": {"ranker": "v1"}},
        {"name": "ranker-v2", "weight": 50, "modelDeploymentRef": {"name": "scorer", "version": 2}},
    ]
    spec = {
        "variants": variants,
        "control": "control",
        "assignment": {"unitKey": "userId", "salt": "s"},
        "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
    }
    meta = {"name": "models", "namespace": namespace}
    kubectl.apply(
        json.dumps({"apiVersion": "croupier.dev/v1alpha1", "kind": "Experiment", "metadata": meta, "spec": spec})
    )

    def ready_reason(reason: str) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            found: dict[str, Any] = kubectl.json("get", "experiment", "models", "-n", namespace)
            ready = conditions(found).get("Ready", {})
            return found if ready.get("reason") == reason and ready.get("status") == "False" else None

        try:
            found: dict[str, Any] = wait_for(check, timeout=60, what=f"Experiment Ready reason {reason}")
        except TimeoutError:
            now = kubectl.json("get", "experiment", "models", "-n", namespace).get("status")
            raise AssertionError(f"never {reason}; status {now}") from None
        return found

    assert "modelDeploymentRef scorer" in conditions(ready_reason("TargetNotFound"))["Ready"]["message"]
    model = {"model": {"name": "scorer", "storageUri": "file:///models/scorer"}, "stable": {"version": 1}}
    canary = {"canary": {"version": 2, "weight": 10}}
    gateway = {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": "edge"}]}
    md = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
    md_meta = {"name": "scorer", "namespace": namespace}
    kubectl.apply(json.dumps({**md, "metadata": md_meta, "spec": {**model, **canary, "routing": gateway}}))
    record(ready_reason("TargetNotSupported"))
    unsupported = conditions(ready_reason("TargetNotSupported"))["Ready"]["message"]
    assert "ranker-v2" in unsupported and "VersionLabels" in unsupported
    kubectl.apply(
        json.dumps({**md, "metadata": md_meta, "spec": {**model, **canary, "routing": {"mode": "VersionLabels"}}})
    )
    assert "scorer (version 2 " in conditions(ready_reason("TargetNotReady"))["Ready"]["message"]

    def settled() -> dict[str, Any] | None:  # the ModelDeployment has written the version's state (no server: Unknown)
        found = ready_reason("TargetNotReady")
        return found if "scorer (version 2 is Unknown)" in conditions(found)["Ready"]["message"] else None

    record(wait_for(settled, timeout=60, what="TargetNotReady naming the version's state"))
