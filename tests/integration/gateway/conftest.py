"""Real Gateway API traffic: Traefik (hack/traefik/build.sh) on the host, real model servers at kwok pod IPs.

The local control plane's pods are fake (kwok), but kwok gives them pod IPs and the real endpointslice controller
puts those IPs into the Services' EndpointSlices. ``serve_pods`` places each pod's IP on a network namespace
(tests/support/netns.py) and runs ``croupier-modelserver`` there, bound to that IP on TF Serving's ports, so Traefik
routes to real servers exactly where the cluster says the pods are.

Environment:
  CROUPIER_TRAEFIK_BIN   a prebuilt Traefik binary (else hack/traefik/build.sh: ~12 min cold on 2 cores, cached)
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import pytest
from support import netns as netns_support
from support.netns import NetworkNamespace
from support.savedmodels import RANKER, model_config

from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.modelserver import savedmodels
from croupier.modelserver.metrics import REQUEST_COUNT
from croupier.modelserver.process import ModelServerProcess

from .traefik import CONTROLLER_NAME, TraefikProcess

ROOT = Path(__file__).resolve().parents[3]
TRAEFIK_BIN_ENV = "CROUPIER_TRAEFIK_BIN"
GRPC_PORT = 8500  # TF Serving's ports, as the Services' targetPorts
REST_PORT = 8501
MONITORING = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'

# One fixed request; each ranker version answers it with its own scores (savedmodels.expected_scores).
CONTEXT = [[0.6, 0.2, 0.1, 0.9]]
ARMS = [[[1.0, 0.0, 0.5, 0.2], [0.1, 0.9, 0.3, 0.4], [0.3, 0.3, 0.8, 0.1]]]
PREDICT_BODY = {"instances": [{"context": c, "arms": a} for c, a in zip(CONTEXT, ARMS, strict=True)]}


@pytest.fixture(scope="session")
def traefik_binary() -> Path:
    prebuilt = os.environ.get(TRAEFIK_BIN_ENV)
    if prebuilt:
        return Path(prebuilt)
    result = subprocess.run(
        [str(ROOT / "hack" / "traefik" / "build.sh")], capture_output=True, text=True, timeout=3600, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"hack/traefik/build.sh failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def gateway_api(kubectl: Kubectl) -> None:
    """Gateway API's standard CRDs in the cluster (hack/gatewayapi/crds.sh --apply)."""
    script = ROOT / "hack" / "gatewayapi" / "crds.sh"
    result = subprocess.run(
        [str(script), "--apply"],
        env={**kubectl.env, "KUBECTL": str(kubectl.binary)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{script} --apply failed ({result.returncode}):\n{result.stderr[-3000:]}")


@pytest.fixture(scope="session")
def local_plane(control_plane: ControlPlane | None) -> ControlPlane:
    if control_plane is None:
        pytest.skip("gateway data-plane tests need the local control plane (kwok pod IPs), not CROUPIER_KUBECONFIG")
    return control_plane


@pytest.fixture(scope="session")
def ranker_base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model base path with ranker versions 1 and 2 (real SavedModels; they score differently)."""
    base = tmp_path_factory.mktemp("gateway-models") / RANKER
    savedmodels.write_ranker(base, 1)
    savedmodels.write_ranker(base, 2)
    return base


@pytest.fixture
def netns() -> Iterator[NetworkNamespace]:
    reason = netns_support.supported()
    if reason is not None:
        pytest.skip(reason)
    with netns_support.network_namespace() as created:
        yield created


@pytest.fixture
def traefik(
    traefik_binary: Path, local_plane: ControlPlane, gateway_api: None, namespace: str, tmp_path: Path
) -> Iterator[TraefikProcess]:
    token = tmp_path / "traefik" / "token"
    token.parent.mkdir(parents=True)
    token.touch(mode=0o600)
    token.write_text(local_plane.token)
    process = TraefikProcess(
        traefik_binary,
        server=local_plane.server,
        token_file=token,
        ca_cert=local_plane.ca_cert,
        namespaces=[namespace],
        log=tmp_path / "traefik" / "traefik.log",
    )
    with process.start():
        yield process


@dataclass(frozen=True)
class Gateway:
    name: str
    namespace: str
    gateway_class: str
    url: str


@pytest.fixture
def gateway(kubectl: Kubectl, namespace: str, traefik: TraefikProcess) -> Iterator[Gateway]:
    """A GatewayClass for Traefik's controller (unique per test, deleted after) and a Gateway ``edge`` whose HTTP
    listener is Traefik's ``web`` entrypoint; yields once Traefik reports the Gateway Programmed."""
    class_name = f"traefik-{secrets.token_hex(3)}"
    kubectl.apply(
        _yaml(
            {
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "GatewayClass",
                "metadata": {"name": class_name},
                "spec": {"controllerName": CONTROLLER_NAME},
            }
        )
    )
    try:
        kubectl.apply(
            _yaml(
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "Gateway",
                    "metadata": {"name": "edge", "namespace": namespace},
                    "spec": {
                        "gatewayClassName": class_name,
                        "listeners": [{"name": "http", "protocol": "HTTP", "port": traefik.web_port}],
                    },
                }
            )
        )
        wait_for(
            lambda: _condition(kubectl.json("get", "gateway", "edge", "-n", namespace), "Programmed") == "True",
            timeout=60,
            what="Gateway edge Programmed by Traefik",
            on_tick=traefik.check,
        )
        yield Gateway("edge", namespace, class_name, f"http://127.0.0.1:{traefik.web_port}")
    finally:
        kubectl("delete", "gatewayclass", class_name, "--wait=false", check=False)


def _yaml(body: dict[str, Any]) -> str:
    return json.dumps(body)  # kubectl apply reads JSON as YAML


def _condition(body: dict[str, Any], kind: str) -> str | None:
    for condition in body.get("status", {}).get("conditions", []):
        if condition.get("type") == kind:
            return str(condition.get("status"))
    return None


class NamespacedModelServer(ModelServerProcess):
    """``croupier-modelserver`` inside a network namespace, bound to ``address`` on TF Serving's ports."""

    def __init__(self, netns: NetworkNamespace, address: str, args: list[str], log: Path) -> None:
        super().__init__(args, log)
        self.netns = netns
        self.host = address
        self.grpc_port = GRPC_PORT
        self.rest_port = REST_PORT

    def command(self) -> list[str]:
        return [*self.netns.prefix(), *super().command()]


def tf_serving_workload(name: str, namespace: str) -> list[dict[str, Any]]:
    """A Deployment (one pod, on kwok) and a Service with TF Serving's gRPC (h2c) and REST ports."""
    labels = {"app": name}
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "tfserving",
                                "image": "tensorflow/serving:2.19.0",
                                "ports": [
                                    {"name": "grpc", "containerPort": GRPC_PORT},
                                    {"name": "http", "containerPort": REST_PORT},
                                ],
                            }
                        ]
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": labels,
                "ports": [
                    {"name": "grpc", "port": GRPC_PORT, "targetPort": GRPC_PORT, "appProtocol": "kubernetes.io/h2c"},
                    {"name": "http", "port": REST_PORT, "targetPort": REST_PORT},
                ],
            },
        },
    ]


def running_pod_ips(kubectl: Kubectl, namespace: str, selector: str, count: int) -> list[str]:
    """The pod IPs kwok gave the ``count`` Running pods matching ``selector`` (waits for them)."""

    def probe() -> list[str] | None:
        pods = kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        ips = [
            p["status"]["podIP"]
            for p in pods
            if p.get("status", {}).get("phase") == "Running"
            and p["status"].get("podIP")
            and not p["metadata"].get("deletionTimestamp")
        ]
        return sorted(ips) if len(ips) == count else None

    return wait_for(probe, timeout=60, what=f"{count} Running pod(s) with IPs for {selector} in {namespace}")


def wait_for_endpoints(kubectl: Kubectl, namespace: str, service: str, ips: list[str]) -> None:
    """Until the Service's EndpointSlices list exactly ``ips`` as ready (the endpointslice controller's work)."""

    def probe() -> bool:
        slices = kubectl.json("get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}")
        ready = sorted(
            address
            for s in slices["items"]
            for e in s.get("endpoints") or []
            if e.get("conditions", {}).get("ready")
            for address in e["addresses"]
        )
        return ready == sorted(ips)

    wait_for(probe, timeout=60, what=f"EndpointSlices of {service} listing {ips}")


@dataclass
class Backend:
    """The real model servers behind one Service, and the ranker version they serve."""

    service: str
    version: int
    servers: list[NamespacedModelServer]

    def request_count(self) -> int:
        """Sum of the servers' own ``:tensorflow:serving:request_count`` for the ranker, status OK."""
        total = 0
        prefix = f'{REQUEST_COUNT}{{model_name="{RANKER}",status="OK"}} '
        for server in self.servers:
            text = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).text
            total += sum(int(float(line[len(prefix) :])) for line in text.splitlines() if line.startswith(prefix))
        return total


class ServePods(Protocol):
    def __call__(self, namespace: str, service: str, version: int, *, config_file: Path | None = None) -> Backend: ...


@pytest.fixture
def serve_pods(kubectl: Kubectl, netns: NetworkNamespace, ranker_base: Path, tmp_path: Path) -> Iterator[ServePods]:
    """``serve_pods(namespace, service, version)``: a real model server at the IP of each Running pod the Service
    selects (inside ``netns``), serving ranker ``version`` — or, with ``config_file``, whatever that polled model
    config names. Servers stop when the test ends."""
    started: list[NamespacedModelServer] = []

    def serve(namespace: str, service: str, version: int, *, config_file: Path | None = None) -> Backend:
        selector = kubectl.json("get", "service", service, "-n", namespace)["spec"]["selector"]
        ips = running_pod_ips(kubectl, namespace, ",".join(f"{k}={v}" for k, v in selector.items()), count=1)
        servers = []
        for ip in ips:
            work = tmp_path / f"server-{ip}"
            work.mkdir()
            config = config_file
            if config is None:
                config = work / "models.config"
                config.write_text(model_config([(RANKER, ranker_base, [version], {})]))
            (work / "monitoring.config").write_text(MONITORING)
            netns.add_address(ip)
            server = NamespacedModelServer(
                netns,
                ip,
                [
                    f"--model_config_file={config}",
                    "--model_config_file_poll_wait_seconds=1",
                    f"--monitoring_config_file={work / 'monitoring.config'}",
                ],
                work / "server.log",
            )
            started.append(server)
            servers.append(server.start(ready_model=RANKER))
        wait_for_endpoints(kubectl, namespace, service, ips)
        return Backend(service, version, servers)

    try:
        yield serve
    finally:
        for server in started:
            server.stop()


def served_version(predictions: Any) -> int:
    """Which ranker version produced ``predictions`` for ``PREDICT_BODY`` (1 or 2; anything else fails)."""
    got = np.asarray(predictions, dtype=np.float32)
    for version in (1, 2):
        if np.allclose(got, savedmodels.expected_scores(version, CONTEXT, ARMS), atol=1e-5):
            return version
    raise AssertionError(f"predictions {predictions} match neither ranker version 1 nor 2")


def count_versions(url: str, requests: int) -> dict[int, int]:
    """Send ``requests`` REST Predicts through the gateway; count the answers by the version that served them."""
    counts = {1: 0, 2: 0}
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(requests):
            response = client.post(f"/v1/models/{RANKER}:predict", json=PREDICT_BODY)
            assert response.status_code == 200, response.text
            counts[served_version(response.json()["predictions"])] += 1
    return counts


def count_status_versions(url: str, requests: int) -> dict[int, int]:
    """Send ``requests`` REST model-status reads (``GET /v1/models/<model>``) through the gateway; count the answers
    by the one version the answering server reports (each server of a GatewayAPI-mode deployment loads one)."""
    counts = {1: 0, 2: 0}
    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(requests):
            response = client.get(f"/v1/models/{RANKER}")
            assert response.status_code == 200, response.text
            (status,) = response.json()["model_version_status"]
            counts[int(status["version"])] += 1
    return counts
