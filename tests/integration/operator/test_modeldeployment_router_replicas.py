"""Canary analysis with several model router replicas: the operator scrapes every ready router pod and adds their
per-version counters up, and a pod it cannot scrape makes the interval InsufficientData with the reason.

A ModelDeployment in routing mode VersionLabels with ``serving.replicas: 2`` gets two router pods (kwok's). The test
plays the kubelet as ``test_modeldeployment_router`` does, with one ``croupier-modelrouter`` process per router pod
(both in front of one local model server on real SavedModels), and plays the pod network for the operator's scrapes:
``CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE`` names the pod, and a dispatcher on loopback sends
``/<namespace>/<pod>/metrics`` to that pod's process. The two routers serve different counts in one interval; the
interval's request count in ``status.rollout.analyses`` is their sum.

Routing mode GatewayAPI reads TF Serving's own metrics of each version's pods the same way: two model server processes
play the two pods of the canary's server (``CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE`` through the same dispatcher).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.modelrouting import PodDispatcher, RouterProcess, version_labels_pods
from support.savedmodels import DIMS

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.modelserver import savedmodels
from croupier.modelserver.process import ModelServerProcess

from ..test_crd_admission_modeldeployment import install_gateway_api
from .test_modeldeployment import ADDRESS_ENV, Deployments
from .test_modeldeployment_canary import METRICS_ENV, MergingKubelet
from .test_modeldeployment_router import ROUTER_METRICS_ENV, ROUTER_SELECTOR, body

# One long step, so the rollout keeps measuring; intervals without traffic are InsufficientData (never a pass), and
# the limit on those in a row is far away.
CANARY = {
    "version": 2,
    "steps": [{"weight": 50, "pauseSeconds": 3600}],
    "analysis": {
        "intervalSeconds": 10,
        "minRequests": 10,
        "maxErrorRate": 0.5,
        "failureLimit": 0,
        "maxInsufficientIntervals": 1000,
    },
}
SENT = {"a": 30, "b": 12}


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


def ready_router_pods(kubectl: Kubectl, namespace: str, selector: str = ROUTER_SELECTOR) -> list[str] | None:
    found = kubectl.json("get", "pods", "-n", namespace, "-l", selector)
    names = [
        p["metadata"]["name"]
        for p in found.get("items") or ()
        if any(c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or ())
    ]
    return sorted(names) if len(names) == 2 else None


def predict(router: RouterProcess | ModelServerProcess, count: int) -> None:
    """``count`` Predicts that name the canary's version (so each pod's count is exact, not a weighted draw)."""
    instance = {"context": [0.7] * DIMS, "arms": [[0.1] * DIMS, [0.2] * DIMS]}
    with httpx.Client(timeout=5, trust_env=False) as client:
        for _ in range(count):
            answer = client.post(
                f"{router.rest_url}/v1/models/ranker/versions/2:predict", json={"instances": [instance]}
            )
            assert answer.status_code == 200, answer.text


def apply_canary(kubectl: Kubectl, namespace: str, tmp_path: Path, routing: dict[str, Any]) -> tuple[Deployments, Path]:
    """The ModelDeployment ``ranker`` (versions 1 and 2 on disk, ``serving.replicas: 2``) with the canary under test."""
    base = tmp_path / "ranker"
    for version in (1, 2):
        savedmodels.write_ranker(base, version)
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{base}"},
        "stable": {"version": 1},
        "canary": CANARY,
        "routing": routing,
        "serving": {"replicas": 2},
    }
    kubectl.apply(body(namespace, spec))
    return Deployments(kubectl, namespace), base


def analyses(mds: Deployments, at_least: int) -> list[dict[str, Any]] | None:
    rollout = (mds.get("ranker").get("status") or {}).get("rollout") or {}
    found: list[dict[str, Any]] = rollout.get("analyses") or []
    return found if len(found) >= at_least else None


def burst_interval(mds: Deployments, pods: dict[str, RouterProcess | ModelServerProcess]) -> tuple[dict[str, Any], int]:
    """The interval after the first one to end (the canary is AVAILABLE and routed by then), into which ``SENT``
    Predicts go through the pods' processes, and how many intervals have ended with it."""
    seen = wait_for(lambda: analyses(mds, 1), timeout=120, what="a first analysis interval")
    # Right after an interval's end was written (its closing scrape is the next one's opening): the whole burst lands
    # in the next interval, 30 requests through pod a, 12 through pod b.
    for name, count in SENT.items():
        predict(pods[name], count)
    after = wait_for(lambda: analyses(mds, len(seen) + 1), timeout=60, what="the next analysis interval")
    return after[len(seen)], len(after)


def interval_naming(mds: Deployments, survivor: RouterProcess | ModelServerProcess, pod: str, ended: int) -> Any:
    """The first interval after the ``ended`` ones whose message names ``pod`` (traffic through ``survivor``)."""

    def found() -> dict[str, Any] | None:
        predict(survivor, 5)
        found = analyses(mds, ended + 1) or []
        return next((a for a in found[ended:] if pod in (a.get("message") or "")), None)

    return wait_for(found, timeout=60, interval=1, what=f"an interval naming pod {pod}")


def test_the_interval_counts_the_requests_of_every_router_pod(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    mds, _ = apply_canary(kubectl, namespace, tmp_path, {"mode": "VersionLabels"})
    assert mds.child("deployment", "ranker-router")["spec"]["replicas"] == 2
    pod_a, pod_b = wait_for(lambda: ready_router_pods(kubectl, namespace), timeout=60, what="two ready router pods")

    with version_labels_pods(kubectl, namespace, tmp_path) as (server, routing_volume):
        routing = routing_volume.path
        routers = {
            name: RouterProcess(routing, server.rest_url, server.grpc_target, tmp_path / f"router-{name}.log")
            for name in SENT
        }
        try:
            for router in routers.values():
                router.start()
            pods = {"a": pod_a, "b": pod_b}
            routes = {f"{namespace}/{pods[name]}": router.rest_url for name, router in routers.items()}
            with PodDispatcher(routes) as dispatcher:
                operator.extra_env = {ADDRESS_ENV: server.grpc_target, ROUTER_METRICS_ENV: dispatcher.template}
                operator.restart()
                before = {
                    name: r.metric("croupier_router_requests_total", model="ranker", version="2")
                    for name, r in routers.items()
                }
                interval, ended = burst_interval(mds, dict(routers))
                served = {
                    name: r.metric("croupier_router_requests_total", model="ranker", version="2") - before[name]
                    for name, r in routers.items()
                }
                assert served == SENT, served
                assert interval["requests"] == sum(SENT.values()), interval
                assert interval["result"] == "Passed", interval
                assert dispatcher.requests[f"{namespace}/{pod_a}"] and dispatcher.requests[f"{namespace}/{pod_b}"]

                # Pod b stops answering: the next interval cannot count its requests, so it is InsufficientData
                # naming the scrape that failed, never a pass (pod a alone still serves enough).
                routers["b"].stop()
                insufficient = interval_naming(mds, routers["a"], pod_b, ended)
                assert insufficient["result"] == "InsufficientData", insufficient
                assert insufficient["message"].startswith("scrape of http://127.0.0.1:"), insufficient
                assert (mds.get("ranker")["status"]["rollout"]["state"]) == "Progressing"
                print(
                    f"\ninterval with {SENT} through pods {pod_a}, {pod_b}: {json.dumps(interval)}; "
                    f"with {pod_b} down: {insufficient['message']}"
                )
        finally:
            for router in routers.values():
                router.stop()


def test_the_interval_counts_the_requests_of_every_canary_server_pod(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    routing = {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": "gw"}]}
    mds, base = apply_canary(kubectl, namespace, tmp_path, routing)
    selector = "app.kubernetes.io/instance=ranker,croupier.dev/server=canary"
    pod_a, pod_b = wait_for(lambda: ready_router_pods(kubectl, namespace, selector), timeout=60, what="canary pods")
    config, monitoring = tmp_path / "models.config", tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
    flags = [f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1"]
    flags.append(f"--monitoring_config_file={monitoring}")
    with MergingKubelet(kubectl, namespace, ("ranker-stable-models", "ranker-canary-models"), config, base):
        servers = {name: ModelServerProcess(flags, tmp_path / f"modelserver-{name}.log") for name in SENT}
        try:
            for server in servers.values():
                server.start(ready_model="ranker")
            pods = {"a": pod_a, "b": pod_b}
            routes = {f"{namespace}/{pods[name]}": server.rest_url for name, server in servers.items()}
            with PodDispatcher(routes) as dispatcher:
                template = dispatcher.template.removesuffix("metrics") + "monitoring/prometheus/metrics"
                operator.extra_env = {ADDRESS_ENV: servers["a"].grpc_target, METRICS_ENV: template}
                operator.restart()
                interval, ended = burst_interval(mds, dict(servers))
                assert interval["requests"] == sum(SENT.values()) and interval["result"] == "Passed", interval
                servers["b"].stop()  # pod b's requests cannot be counted any more: never a pass
                insufficient = interval_naming(mds, servers["a"], pod_b, ended)
                assert insufficient["result"] == "InsufficientData", insufficient
                print(f"\ncanary pods {pod_a}, {pod_b}: {json.dumps(interval)}; then {insufficient['message']}")
        finally:
            for server in servers.values():
                server.stop()
