"""ModelDeployment states as GitOps tools see them, driven against the real control plane, the operator process and the
local model server (real SavedModels, TF Serving's gRPC API and Prometheus endpoint), and recorded as health-check
testdata (CROUPIER_RECORD_HEALTH_TESTDATA, see health_recorder.py).

As in tests/integration/operator/test_modeldeployment*.py, kwok pods run nothing: the test plays the kubelet (it
copies the model config ConfigMaps into the file the model server polls) and, for RouteNotAccepted, the Gateway
controller (it writes the HTTPRoute's status as a controller whose listener refuses the route does).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from integration.ops.health_recorder import record
from integration.ops.test_health_states_blocked import quota
from support.savedmodels import DIMS, FAILING_VERSION, Repository, ranker_repository

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.modelserver.process import ModelServerProcess
from tests.integration.operator.test_modeldeployment import ADDRESS_ENV, Deployments, Kubelet, conditions, manifest
from tests.integration.operator.test_modeldeployment_canary import METRICS_ENV, MergingKubelet, Traffic

from ..test_crd_admission_modeldeployment import install_gateway_api

DEADLINE = 10  # spec.progressDeadlineSeconds, the API's minimum


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


def patch(kubectl: Kubectl, namespace: str, name: str, spec: dict[str, Any]) -> None:
    kubectl("patch", "modeldeployment", name, "-n", namespace, "--type=merge", "-p", json.dumps({"spec": spec}))


@contextlib.contextmanager
def stable_served(
    operator: Any,
    kubectl: Kubectl,
    namespace: str,
    tmp_path: Path,
    repository: Repository,
    *,
    flags: list[str],
    server_class: type[ModelServerProcess] = ModelServerProcess,
) -> Iterator[Deployments]:
    """ModelDeployment `ranker` (stable version 1, the API's minimum progress deadline) served by a local model server
    (``server_class`` with the extra TF Serving ``flags``) on the config the test copies from its ConfigMap, and the
    operator pointed at it; yields once Ready, stops the server on exit."""
    config = tmp_path / "models.config"
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"},
        "stable": {"version": 1},
        "progressDeadlineSeconds": DEADLINE,
    }
    mds = Deployments(kubectl, namespace)
    kubectl.apply(json.dumps({**json.loads(manifest("ranker", namespace)), "spec": spec}))
    with Kubelet(kubectl, namespace, "ranker-models", config):
        server = server_class(
            [f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1", *flags],
            tmp_path / "modelserver.log",
        )
        server.start(ready_model="ranker")
        try:
            operator.extra_env = {ADDRESS_ENV: server.grpc_target}
            operator.restart()
            mds.wait("ranker", "Ready", "True", "Available", timeout=120)
            yield mds
        finally:
            server.stop()


def test_pods_that_never_start_then_scaled_to_zero(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    quota(kubectl, namespace, "no-pods", {"pods": "0"})
    mds = Deployments(kubectl, namespace)
    kubectl.apply(manifest("ranker", namespace))
    body = mds.wait("ranker", "Progressing", "True", "PodsStarting")
    assert "no TF Serving pod available yet" in conditions(body)["Progressing"]["message"]
    record(body)
    patch(kubectl, namespace, "ranker", {"serving": {"replicas": 0}})
    record(mds.wait("ranker", "Ready", "False", "ScaledToZero"))


def test_versions_loading_missing_and_promoting(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    repository = ranker_repository(tmp_path)
    with stable_served(operator, kubectl, namespace, tmp_path, repository, flags=["--max_num_load_retries=0"]) as mds:
        # A canary version with no folder: loading within the deadline, not found past it; stable keeps serving.
        patch(kubectl, namespace, "ranker", {"canary": {"version": 9, "weight": 10}})
        body = mds.wait("ranker", "Progressing", "True", "VersionLoading")
        assert "canary version 9" in conditions(body)["Progressing"]["message"]
        record(body)
        body = mds.wait("ranker", "Degraded", "True", "VersionNotFound", timeout=DEADLINE + 60)
        assert body["status"]["canaryWeight"] == 0
        record(body)

        # Promotion to a version with no folder: the previous stable version serves meanwhile.
        kubectl("patch", "modeldeployment", "ranker", "-n", namespace, "--type=json", "-p", json.dumps([
            {"op": "remove", "path": "/spec/canary"}, {"op": "replace", "path": "/spec/stable/version", "value": 8},
        ]))  # fmt: skip
        record(mds.wait("ranker", "Progressing", "True", "Promoting"))
        body = mds.wait("ranker", "Degraded", "True", "VersionNotFound", timeout=DEADLINE + 60)
        assert "stable version 8" in conditions(body)["Degraded"]["message"]


# TF Serving in a pod that drops every capability (the restricted Pod Security Standard) cannot read a file its user
# may not read, even as root: the local model server runs the same way, without the capabilities that let root read
# any file.
NO_DAC = "-dac_override,-dac_read_search"


class CapabilityDroppedModelServer(ModelServerProcess):
    def command(self) -> list[str]:
        return ["setpriv", f"--bounding-set={NO_DAC}", f"--inh-caps={NO_DAC}", *super().command()]


def test_a_canary_on_storage_the_model_server_cannot_read(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """The canary's SavedModel file is there (the folder lists, the file exists) but its mode lets no one read it:
    TF Serving's loader gets PERMISSION_DENIED, the operator names it StorageUnreadable and the stable version keeps
    everything. (The canary comes after the start: a model server exits when a model of its first config fails.)"""
    repository = ranker_repository(tmp_path)
    unreadable = repository.base_path / "2" / "saved_model.pb"
    unreadable.chmod(0)
    flags = ["--max_num_load_retries=0"]
    try:
        with stable_served(
            operator, kubectl, namespace, tmp_path, repository, flags=flags, server_class=CapabilityDroppedModelServer
        ) as mds:
            patch(kubectl, namespace, "ranker", {"canary": {"version": 2, "weight": 10}})
            body = mds.wait("ranker", "Degraded", "True", "StorageUnreadable", timeout=DEADLINE + 90)
            degraded = conditions(body)["Degraded"]["message"]
            assert "canary version 2" in degraded and "Permission denied" in degraded, degraded
            assert body["status"]["canaryWeight"] == 0
            assert conditions(body)["Stalled"]["status"] == "True"
            record(body)
    finally:
        unreadable.chmod(0o644)


def test_a_version_still_loading_past_the_progress_deadline(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    """A model server that takes longer to load a version than spec.progressDeadlineSeconds allows (a large model):
    the canary stays LOADING without an error, and past the deadline the operator says VersionNotAvailable while the
    stable version (loaded as slowly, before the model server started answering) keeps everything."""
    repository = ranker_repository(tmp_path)
    slow = f"--dev_load_delay_ms={(DEADLINE + 50) * 1000}"  # each version held in LOADING past the deadline
    with stable_served(operator, kubectl, namespace, tmp_path, repository, flags=[slow]) as mds:
        patch(kubectl, namespace, "ranker", {"canary": {"version": 2, "weight": 10}})
        body = mds.wait("ranker", "Degraded", "True", "VersionNotAvailable", timeout=DEADLINE + 40)
        degraded = conditions(body)["Degraded"]["message"]
        assert f"canary version 2 not AVAILABLE after {DEADLINE}s" in degraded and "LOADING" in degraded, degraded
        assert body["status"]["canaryWeight"] == 0
        assert conditions(body)["Stalled"]["status"] == "True"
        record(body)


ANALYSIS = {
    "intervalSeconds": 10,
    "minRequests": 10,
    "maxErrorRate": 0.05,
    "failureLimit": 0,
    "maxInsufficientIntervals": 2,
}


def test_canary_states_without_traffic_paused_failing_and_refused_by_the_gateway(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    repository = ranker_repository(tmp_path)
    config, monitoring = tmp_path / "models.config", tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
    steps = [{"weight": 20, "pauseSeconds": 10}, {"weight": 100, "pauseSeconds": 10}]
    canary = {"version": 2, "steps": steps, "analysis": ANALYSIS, "onFailure": "Pause"}
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"},
        "stable": {"version": 1},
        "canary": canary,
        "routing": {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": "gw"}]},
    }
    md = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
    kubectl.apply(json.dumps({**md, "metadata": {"name": "ranker", "namespace": namespace}, "spec": spec}))
    mds = Deployments(kubectl, namespace)
    configmaps = ("ranker-stable-models", "ranker-canary-models")
    with MergingKubelet(kubectl, namespace, configmaps, config, repository.base_path):
        flags = [
            f"--model_config_file={config}",
            "--model_config_file_poll_wait_seconds=1",
            f"--monitoring_config_file={monitoring}",
        ]
        server = ModelServerProcess(flags, tmp_path / "modelserver.log")
        server.start(ready_model="ranker")
        try:
            operator.extra_env = {
                ADDRESS_ENV: server.grpc_target,
                METRICS_ENV: f"{server.rest_url}/monitoring/prometheus/metrics",
            }
            operator.restart()
            # No traffic: the first step waits for an interval with enough requests, then the rollout halts.
            record(mds.wait("ranker", "Progressing", "True", "WaitingForAnalysis", timeout=120))
            body = mds.wait("ranker", "Degraded", "True", "InsufficientData", timeout=90)
            assert "InsufficientData" in conditions(body)["Degraded"]["message"]
            record(body)

            # Held by hand (a canary spec change: the halt is over).
            patch(kubectl, namespace, "ranker", {"canary": {"paused": True}})
            record(mds.wait("ranker", "Progressing", "False", "Paused"))

            # A failing canary with onFailure Pause: halted at its weight, with the failed measurement.
            failing = {**canary, "version": FAILING_VERSION, "paused": False}
            with Traffic(server.rest_url, DIMS) as traffic:
                traffic.version = FAILING_VERSION
                patch(kubectl, namespace, "ranker", {"canary": failing})
                body = mds.wait("ranker", "Degraded", "True", "AnalysisFailed", timeout=120)
            assert "maxErrorRate" in conditions(body)["Degraded"]["message"]
            record(body)

            # The Gateway's controller refuses the route: a listener that allows no routes from this namespace.
            route = kubectl.json("get", "httproute", "ranker", "-n", namespace)
            parent = {
                "parentRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"},
                "controllerName": "example.com/gateway-controller",
                "conditions": [
                    {
                        "type": "Accepted",
                        "status": "False",
                        "reason": "NotAllowedByListeners",
                        "message": "no listener of Gateway gw allows routes from this namespace",
                        "observedGeneration": route["metadata"]["generation"],
                        "lastTransitionTime": "2026-11-30T12:00:00Z",
                    }
                ],
            }
            kubectl("patch", "httproute", "ranker", "-n", namespace, "--subresource=status", "--type=merge",
                    "-p", json.dumps({"status": {"parents": [parent]}}))  # fmt: skip
            body = mds.wait("ranker", "Degraded", "True", "RouteNotAccepted", timeout=60)
            assert "listener" in conditions(body)["Degraded"]["message"], conditions(body)
            record(body)
        finally:
            server.stop()


def test_a_scored_policy_whose_decisions_fall_back_while_its_model_is_ready(
    gateway_api: Path, operator: Any, policies: Any, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The ModelDeployment is Ready (its model server answers the operator), but the policy's runtime cannot reach the
    model at the address it was given (the Service's DNS name, which does not resolve outside a cluster): every
    decision falls back, and Degraded says so while the policy keeps serving."""
    namespace = policies.namespace
    repository = ranker_repository(tmp_path)
    config = tmp_path / "models.config"
    spec = {"model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"}, "stable": {"version": 1}}
    kubectl.apply(json.dumps({**json.loads(manifest("ranker", namespace)), "spec": spec}))
    with Kubelet(kubectl, namespace, "ranker-models", config):
        server = ModelServerProcess([f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1"],
                                    tmp_path / "modelserver.log")  # fmt: skip
        server.start(ready_model="ranker")
        try:
            operator.extra_env = {ADDRESS_ENV: server.grpc_target}
            operator.restart()
            Deployments(kubectl, namespace).wait("ranker", "Ready", "True", "Available", timeout=120)
            arms = [{"name": "blue", "features": {"x": 1.0}}, {"name": "red", "features": {"x": -1.0}}]
            scoring = {"modelDeploymentRef": {"name": "ranker"}, "timeoutMilliseconds": 40}
            policies.apply("scored", arms=arms, scoring=scoring, auth={"mode": "Disabled"})
            wait_for(
                lambda: "scoring" in yaml.safe_load(policies.policy_yaml("scored", 1)),
                timeout=60,
                what="the model's address in the runtime's config",
            )
            policies.serve("scored", 1)
            with httpx.Client(base_url=policies.runtime.url, timeout=10, trust_env=False) as http:
                for _ in range(30):
                    answer = http.post("/v1/decide", json={"unitId": "u", "context": {"x": 1.0}})
                    assert answer.status_code == 200, answer.text
            policies.wait_condition("scored", "Degraded", "True", "ScoringFallbacks")
            # Recorded once the probe has counted every decision (the same numbers in every run).
            body = wait_for(
                lambda: b if (b := policies.get("scored"))["status"]["scoring"].get("decisions") == 30 else None,
                timeout=30,
                what="30 decisions counted",
            )
            assert policies.condition(body, "Ready")["status"] == "True"
            record(body)
        finally:
            server.stop()
