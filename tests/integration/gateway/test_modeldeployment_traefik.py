"""A ModelDeployment in GatewayAPI mode, reconciled by the real operator, splits real traffic through Traefik.

The operator writes the two TF Serving Deployments, their model-config ConfigMaps and the weighted HTTPRoute; kwok
runs the pods; ``serve_pods`` puts real model servers at the pod IPs; the test plays the kubelet's ConfigMap volume
(copying each server's models.config into the file the server polls). The operator calls GetModelStatus at
``{service}.{namespace}.svc:8500`` (its default address template): it runs in a private mount namespace whose
/etc/hosts maps those names to the pod IPs, as cluster DNS would map them to the Services.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.savedmodels import RANKER

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.ports import free_ports
from croupier.devcluster.process import Component
from croupier.devcluster.waiting import wait_for

from .conftest import PREDICT_BODY, ROOT, Backend, Gateway, ServePods, count_status_versions, count_versions
from .test_traefik_split import REQUESTS, TOLERANCE_POINTS, wait_until_traefik_runs
from .traefik import TraefikProcess

ADDRESS_TEMPLATE = "{service}.{namespace}.svc:8500"


class ConfigMapVolume:
    """Plays the kubelet's ConfigMap volume for one server: keeps ``path`` equal to the ConfigMap's models.config."""

    def __init__(self, kubectl: Kubectl, namespace: str, configmap: str, path: Path) -> None:
        self.kubectl, self.namespace, self.configmap, self.path = kubectl, namespace, configmap, path
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sync(self) -> bool:
        found = self.kubectl("get", "configmap", self.configmap, "-n", self.namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        text = json.loads(found.stdout)["data"]["models.config"]
        if not self.path.exists() or self.path.read_text() != text:
            self.path.write_text(text)
        return True

    def _run(self) -> None:
        while not self.stopping.wait(0.5):
            self.sync()

    def start(self) -> ConfigMapVolume:
        wait_for(self.sync, timeout=60, what=f"ConfigMap {self.configmap}")
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(5)


class Operator:
    """``python -m croupier.operator.cli`` in a private mount namespace with its own /etc/hosts (``hosts``)."""

    def __init__(self, kubeconfig: Path, namespace: str, work: Path) -> None:
        self.hosts = work / "hosts"
        self.hosts.write_text("127.0.0.1 localhost\n")
        self.log = work / "operator.log"
        self.liveness_port, self.metrics_port = free_ports(2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(kubeconfig),
                "CROUPIER_OPERATOR_NAMESPACES": namespace,
                "CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE": ADDRESS_TEMPLATE,
                "CROUPIER_OPERATOR_MODEL_CONFIG_POLL_SECONDS": "1",
                "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": "2",
                "CROUPIER_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "0.5",
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{self.liveness_port}/healthz",
                "CROUPIER_OPERATOR_METRICS_PORT": str(self.metrics_port),
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
            }
        )
        self.env = env
        self.component: Component | None = None

    def resolve(self, names: dict[str, str]) -> None:
        """Map host names to addresses (rewritten in place: the bind mount follows the file, not its name)."""
        lines = ["127.0.0.1 localhost", *(f"{address} {name}" for name, address in names.items())]
        with self.hosts.open("w") as out:
            out.write("\n".join(lines) + "\n")

    def start(self) -> Operator:
        command = [
            "unshare", "--mount", "--propagation", "private", "--",
            "sh", "-c", 'mount --bind "$0" /etc/hosts && exec "$@"',
            str(self.hosts), sys.executable, "-m", "croupier.operator.cli",
        ]  # fmt: skip
        self.component = Component(
            "the operator", command, log=self.log, cwd=ROOT, env=self.env, stop_signal=signal.SIGINT
        )
        self.component.start()
        self.component.wait_ready(self._live, timeout=60, what="the operator's liveness endpoint")
        return self

    def _live(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1, trust_env=False).is_success

    def check(self) -> None:
        if self.component is not None:
            self.component.check()

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(grace=30)


@pytest.fixture
def operator(kubectl: Kubectl, kubeconfig: Path, namespace: str, tmp_path: Path) -> Iterator[Operator]:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "modeldeployments.croupier.dev")
    work = tmp_path / "operator"
    work.mkdir()
    process = Operator(kubeconfig, namespace, work)
    try:
        yield process.start()
    finally:
        process.stop()


def model_deployment(namespace: str, base: Path, gateway: Gateway, step_weight: int) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": RANKER, "namespace": namespace},
        "spec": {
            "model": {"name": RANKER, "storageUri": f"file://{base}"},
            "stable": {"version": 1},
            "canary": {"version": 2, "steps": [{"weight": step_weight, "pauseSeconds": 3600}]},
            "routing": {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": gateway.name}]},
        },
    }


def wait_ready(kubectl: Kubectl, namespace: str, weight: int, operator: Operator) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        body: dict[str, Any] = kubectl.json("get", "modeldeployment", RANKER, "-n", namespace)
        status = body.get("status") or {}
        ready = {c["type"]: c for c in status.get("conditions") or []}.get("Ready", {})
        if (
            ready.get("status") == "True"
            and ready.get("observedGeneration") == body["metadata"]["generation"]
            and status.get("canaryWeight") == weight
        ):
            return body
        return None

    try:
        found: dict[str, Any] = wait_for(
            probe, timeout=180, what=f"{RANKER} Ready at canary weight {weight}", on_tick=operator.check
        )
    except TimeoutError:
        now = kubectl.json("get", "modeldeployment", RANKER, "-n", namespace).get("status")
        raise AssertionError(f"never Ready at weight {weight}; status: {now}") from None
    return found


def test_a_gateway_mode_canary_splits_traffic_through_traefik_by_its_step_weight(
    *,
    kubectl: Kubectl,
    namespace: str,
    gateway: Gateway,
    traefik: TraefikProcess,
    serve_pods: ServePods,
    ranker_base: Path,
    operator: Operator,
    tmp_path: Path,
) -> None:
    kubectl.apply(json.dumps(model_deployment(namespace, ranker_base, gateway, step_weight=10)))
    volumes: list[ConfigMapVolume] = []
    backends: dict[str, Backend] = {}
    try:
        for role, version in (("stable", 1), ("canary", 2)):
            service = f"{RANKER}-{role}"
            config = tmp_path / f"{role}-models.config"
            volumes.append(ConfigMapVolume(kubectl, namespace, f"{service}-models", config).start())
            backends[role] = serve_pods(namespace, service, version, config_file=config)
        operator.resolve({f"{RANKER}-{r}.{namespace}.svc": b.servers[0].host for r, b in backends.items()})

        for weight in (10, 30):
            if weight != 10:
                patch = {"spec": {"canary": {"steps": [{"weight": weight, "pauseSeconds": 3600}]}}}
                kubectl("patch", "modeldeployment", RANKER, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
            wait_ready(kubectl, namespace, weight, operator)
            wait_until_traefik_runs(traefik, namespace, {f"{RANKER}-stable": 100 - weight, f"{RANKER}-canary": weight})

            # Model-status reads: a path the operator's route matches; each server reports the one version it loads.
            counts = count_status_versions(gateway.url, REQUESTS)
            print(f"ModelDeployment step weight {weight}: status reads served {counts}")
            assert abs(100.0 * counts[2] / REQUESTS - weight) <= TOLERANCE_POINTS, (counts, weight)

        # Predicts, as TF Serving's REST clients send them (POST /v1/models/<model>:predict), at the last weight.
        probe = httpx.post(f"{gateway.url}/v1/models/{RANKER}:predict", json=PREDICT_BODY, timeout=30)
        assert probe.status_code == 200, probe.text  # the route has Exact matches for the latest version's verbs
        before = backends["stable"].request_count(), backends["canary"].request_count()
        counts = count_versions(gateway.url, REQUESTS)
        served = backends["stable"].request_count() - before[0], backends["canary"].request_count() - before[1]
        assert abs(100.0 * counts[2] / REQUESTS - weight) <= TOLERANCE_POINTS, (counts, weight)
        assert served == (counts[1], counts[2])
    finally:
        for volume in volumes:
            volume.stop()
