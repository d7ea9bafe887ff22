"""An Experiment whose variants target versions of a ModelDeployment, end to end on the real control plane: the
operator, the local model server on real SavedModels, a real `croupier-modelrouter` process in front of it (routing
mode VersionLabels) and a real runtime process serving the Experiment.

kwok pods run nothing, so the test plays the kubelet (``support.modelrouting``): the model server's config is copied
from ``ranker-models``, the router's routing table from ``ranker-routing``; one ``LoopbackDispatcher`` is the cluster
network the operator's URL templates point at (the Experiment's Service, the router pod's metrics). The ModelDeployment
serves version 1 (stable) and version 2 (a canary at weight 0: loaded, no unpinned traffic). While no model server
runs, the ModelDeployment is not Ready and the Experiment reports TargetNotReady and serves control; once it is Ready,
`POST /v1/assign` answers each variant's route (header and value), and a Predict through the router carrying it is
served by that version (the router's served-version header says which).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from integration.operator.conftest import OperatorProcess, condition
from integration.operator.test_experiment import Experiments, experiment
from integration.operator.test_experiment import experiments as experiments  # noqa: PLC0414 - a fixture, by name
from integration.runtime.experiments.conftest import ExperimentProcess
from support.modelrouting import VERSION_HEADER, RouterProcess, router_selector, version_labels_pods
from support.savedmodels import DIMS, ranker_repository

from croupier.api.assignment import assign
from croupier.devcluster.dispatcher import LoopbackDispatcher
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

from ..test_crd_admission_modeldeployment import install_gateway_api
from .test_modeldeployment import ADDRESS_ENV, Deployments

pytestmark = pytest.mark.integration

SALT = "it-salt"
VARIANTS = [
    {"name": "control", "weight": 50, "modelDeploymentRef": {"name": "ranker", "version": 1}},
    {"name": "candidate", "weight": 50, "modelDeploymentRef": {"name": "ranker", "version": 2}},
]
ROUTER_METRICS_ENV = "CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE"
ROUTER_SELECTOR = router_selector("ranker")
START_TIMEOUT = 120.0  # a runtime process's start, on a loaded 2-core machine


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


@pytest.fixture(scope="module")
def dispatcher() -> Iterator[LoopbackDispatcher]:
    with LoopbackDispatcher() as network:
        yield network


@pytest.fixture(scope="module")
def runtime_url_template(dispatcher: LoopbackDispatcher) -> str:
    """The operator reads each object's runtime at its Service's address (see `operator` in conftest.py)."""
    return dispatcher.url_template("service")


def _unit_of(variant: str) -> str:
    weights = [(str(v["name"]), int(str(v["weight"]))) for v in VARIANTS]
    return next(f"user-{i}" for i in range(10_000) if assign(f"user-{i}", SALT, weights) == variant)


def _predict(rng: random.Random) -> dict[str, Any]:
    return {
        "instances": [
            {"context": [rng.random() for _ in range(DIMS)], "arms": [[rng.random() for _ in range(DIMS)]] * 2}
        ]
    }


def _router_pods(kubectl: Kubectl, namespace: str) -> list[str] | None:
    pods = kubectl.json("get", "pods", "-n", namespace, "-l", ROUTER_SELECTOR).get("items") or []
    return [p["metadata"]["name"] for p in pods] or None


def test_model_version_variants_route_predicts_to_their_version_once_the_deployment_is_ready(
    gateway_api: Path,
    experiments: Experiments,
    operator: OperatorProcess,
    dispatcher: LoopbackDispatcher,
    tmp_path: Path,
) -> None:
    namespace, kubectl = experiments.namespace, experiments.kubectl
    repository = ranker_repository(tmp_path)
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"},
        "stable": {"version": 1},
        "canary": {"version": 2, "weight": 0},  # loaded and routable by header; no unpinned traffic
        "routing": {"mode": "VersionLabels"},
    }
    meta = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
    kubectl.apply(json.dumps({**meta, "metadata": {"name": "ranker", "namespace": namespace}, "spec": spec}))
    mds = Deployments(kubectl, namespace)

    # Nothing serves the model yet: the ModelDeployment is not Ready, so the Experiment serves control and says why.
    experiments.apply(experiment("checkout", namespace, VARIANTS))
    waiting = experiments.wait_condition("checkout", "Ready", "False", "TargetNotReady", timeout=90)
    message = condition(waiting, "Ready")["message"]
    assert "ranker" in message, message
    paused = experiments.served("checkout", "Paused")
    served = yaml.safe_load(paused)
    assert served["spec"]["state"] == "Paused"
    assert served["spec"]["control"] == "control"

    # The pod's runtime on that configuration answers control's route (version 1) to every unit, uncounted.
    (tmp_path / "paused.yaml").write_text(paused)
    waiting_runtime = ExperimentProcess(tmp_path / "paused.yaml", tmp_path / "paused-state")
    try:
        waiting_runtime.start(START_TIMEOUT)
        with httpx.Client(timeout=30, trust_env=False) as http:
            for variant in ("candidate", "control"):
                answer = http.post(f"{waiting_runtime.url}/v1/assign", json={"unitId": _unit_of(variant)}).json()
                assert answer["variant"] == "control" and answer["counted"] is False, answer
                assert answer["model"]["version"] == 1 and answer["model"]["value"] == "1", answer
    finally:
        waiting_runtime.stop()

    started: list[ExperimentProcess] = []

    with version_labels_pods(kubectl, namespace, tmp_path) as (server, routing_volume):
        routing = routing_volume.path
        router: RouterProcess | None = None
        try:
            router = RouterProcess(routing, server.rest_url, server.grpc_target, tmp_path / "router.log").start()
            (pod,) = wait_for(lambda: _router_pods(kubectl, namespace), timeout=60, what="the router pod")
            dispatcher.route(namespace, pod, router.rest_url)
            operator.extra_env = {
                ADDRESS_ENV: server.grpc_target,
                ROUTER_METRICS_ENV: dispatcher.url_template("pod", "/metrics"),
            }
            operator.restart()
            mds.wait("ranker", "Ready", "True", "Available", timeout=120)

            # Both versions AVAILABLE: the Experiment runs. Its runtime plays the pod, the dispatcher its Service.
            (tmp_path / "experiment.yaml").write_text(experiments.served("checkout", "Running"))
            runtime = ExperimentProcess(tmp_path / "experiment.yaml", tmp_path / "experiment-state")
            started.append(runtime)
            runtime.start(START_TIMEOUT)
            dispatcher.route(namespace, "checkout-experiment", runtime.url)
            ready = experiments.wait_condition("checkout", "Ready", "True", "InsufficientTraffic", timeout=90)
            assert ready["status"]["split"] == "control=50,candidate=50"

            rng = random.Random(3)
            with httpx.Client(timeout=30, trust_env=False) as http:
                for variant, version in (("candidate", 2), ("control", 1)):
                    unit = _unit_of(variant)
                    # Through the Experiment's Service address, as an application in the cluster would ask.
                    service = dispatcher.url_template("service").format(
                        namespace=namespace, service="checkout-experiment"
                    )
                    answer = http.post(f"{service}/v1/assign", json={"unitId": unit})
                    assert answer.status_code == 200, answer.text
                    body = answer.json()
                    assert body["variant"] == variant and body["counted"] is True, body
                    route = body["model"]
                    assert route == {"name": "ranker", "version": version, "header": VERSION_HEADER,
                                     "value": str(version)}, route  # fmt: skip
                    assert "payload" not in body and "decision" not in body, body
                    # A Predict carrying what assign returned is served by that version, every time.
                    for _ in range(5):
                        predicted = http.post(
                            f"{router.rest_url}/v1/models/ranker:predict",
                            json=_predict(rng),
                            headers={route["header"]: route["value"]},
                        )
                        assert predicted.status_code == 200, predicted.text
                        assert predicted.headers[VERSION_HEADER] == str(version), dict(predicted.headers)
                        assert len(predicted.json()["predictions"]) == 1
                # Unpinned traffic stays on stable (the canary's weight is 0): the route, not the split, chose 2.
                unpinned = http.post(f"{router.rest_url}/v1/models/ranker:predict", json=_predict(rng))
                assert unpinned.headers[VERSION_HEADER] == "1", dict(unpinned.headers)

            def exposed() -> dict[str, Any] | None:
                body = experiments.get("checkout")
                return body if (body.get("status") or {}).get("totalExposures") == 2 else None

            body = wait_for(exposed, timeout=30, what="two exposures in the Experiment's status")
            assert {v["name"]: v["exposures"] for v in body["status"]["variants"]} == {"control": 1, "candidate": 1}
            assert dispatcher.requests[f"{namespace}/checkout-experiment"] >= 2
        finally:
            for process in started:
                process.stop()
            if router is not None:
                router.stop()
