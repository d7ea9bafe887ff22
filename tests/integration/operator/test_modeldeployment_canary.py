"""A ModelDeployment's canary driven by the operator on the real local control plane, measured from the real local
model server's own Prometheus endpoint under Predict traffic the test sends.

Routing mode GatewayAPI (one server per version, so TF Serving's metrics, which carry no version, are per version).
kwok pods run nothing, so one local model server process plays both servers: the test plays the kubelet and merges
the stable and canary servers' model config ConfigMaps into the file it polls, and the operator reaches it through
``CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE`` and ``CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE``. The test
sends its Predict traffic to the canary version only, so the server's counters are the canary's.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from integration.ops.health_recorder import record
from support.savedmodels import DIMS, FAILING_VERSION, model_config, ranker_repository

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.modelserver.process import ModelServerProcess
from croupier.operator.modeldeployment.children import LABELS_ANNOTATION

from ..test_crd_admission_modeldeployment import install_gateway_api
from .test_modeldeployment import ADDRESS_ENV, Deployments, conditions

METRICS_ENV = "CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE"
STEPS = [{"weight": 20, "pauseSeconds": 10}, {"weight": 50, "pauseSeconds": 10}, {"weight": 100, "pauseSeconds": 10}]
ANALYSIS = {"intervalSeconds": 10, "minRequests": 10, "maxErrorRate": 0.05, "failureLimit": 0}


class MergingKubelet:
    """Plays the kubelet for two servers served by one process: the union of their model configs in one file."""

    def __init__(self, kubectl: Kubectl, namespace: str, configmaps: tuple[str, ...], path: Path, base: Path) -> None:
        self.kubectl, self.namespace, self.configmaps, self.path, self.base = kubectl, namespace, configmaps, path, base
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sync(self) -> bool:
        versions: set[int] = set()
        labels: dict[str, int] = {}
        for name in self.configmaps:
            found = self.kubectl("get", "configmap", name, "-n", self.namespace, "-o", "json", check=False)
            if found.returncode != 0:
                return False
            body = json.loads(found.stdout)
            versions |= {int(v) for v in re.findall(r"versions: (\d+)", body["data"]["models.config"])}
            labels |= json.loads((body["metadata"].get("annotations") or {}).get(LABELS_ANNOTATION) or "{}")
        text = model_config([("ranker", self.base, sorted(versions), labels)])
        if not self.path.exists() or self.path.read_text() != text:
            self.path.write_text(text)
        return True

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            self.sync()

    def __enter__(self) -> MergingKubelet:
        wait_for(self.sync, timeout=30, what=f"ConfigMaps {self.configmaps}")
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


class Traffic:
    """Predict requests to one version, about 20 a second, until stopped."""

    def __init__(self, rest_url: str, dims: int) -> None:
        self.rest_url, self.dims = rest_url, dims
        self.version: int | None = None
        self.sent = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        rng = random.Random(7)
        with httpx.Client(timeout=5) as client:
            while not self.stop.wait(0.05):
                version = self.version
                if version is None:
                    continue
                context = [rng.random() for _ in range(self.dims)]
                arms = [[rng.random() for _ in range(self.dims)] for _ in range(2)]
                body = {"instances": [{"context": context, "arms": arms}]}
                try:
                    client.post(f"{self.rest_url}/v1/models/ranker/versions/{version}:predict", json=body)
                except httpx.HTTPError:
                    continue
                self.sent += 1

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


def event_reasons(kubectl: Kubectl, namespace: str) -> list[str]:
    events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "involvedObject.kind=ModelDeployment")
    return [str(e.get("reason")) for e in events.get("items") or ()]


def test_a_canary_walks_its_steps_under_traffic_and_a_failing_one_is_rolled_back(
    gateway_api: Path, operator: Any, kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    repository = ranker_repository(tmp_path)
    config, monitoring = tmp_path / "models.config", tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
    canary = {"version": 2, "steps": STEPS, "analysis": ANALYSIS}
    spec = {
        "model": {"name": "ranker", "storageUri": f"file://{repository.base_path}"},
        "stable": {"version": 1},
        "canary": canary,
        "routing": {"mode": "GatewayAPI", "protocol": "HTTP", "parentRefs": [{"name": "gw"}]},
    }
    body = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
    kubectl.apply(json.dumps({**body, "metadata": {"name": "ranker", "namespace": namespace}, "spec": spec}))
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
            with Traffic(server.rest_url, DIMS) as traffic:
                traffic.version = 2
                seen: list[tuple[int, int]] = []
                recorded: set[str | None] = set()

                def complete() -> dict[str, Any] | None:
                    found = mds.get("ranker")
                    status = found.get("status") or {}
                    pair = (status.get("currentStep"), status.get("canaryWeight"))
                    if pair[1] and (not seen or seen[-1] != pair):
                        seen.append(pair)
                    progressing = (conditions(found).get("Progressing") or {}).get("reason")
                    if progressing not in recorded:  # health-check testdata: each canary state as written
                        recorded.add(progressing)
                        record(found)
                    return found if (status.get("rollout") or {}).get("state") == "Complete" else None

                try:
                    done = wait_for(complete, timeout=150, interval=0.5, what="the canary's last step")
                except TimeoutError:
                    raise AssertionError(f"steps seen {seen}; status {mds.get('ranker').get('status')}") from None
                assert seen[0] == (0, 20) and seen[-1] == (2, 100), seen
                assert (1, 50) in seen
                assert conditions(done)["Ready"]["status"] == "True"
                analyses = done["status"]["rollout"]["analyses"]
                assert all(a["result"] == "Passed" for a in analyses[-3:]) and analyses[-1]["requests"] >= 10

                # A failing canary (half its answers are TensorFlow errors): rolled back with the reason in status.
                failing = {**canary, "version": FAILING_VERSION}
                kubectl("patch", "modeldeployment", "ranker", "-n", namespace, "--type=merge",
                        "-p", json.dumps({"spec": {"canary": failing}}))  # fmt: skip
                traffic.version = FAILING_VERSION
                started = time.monotonic()
                rolled = mds.wait("ranker", "Degraded", "True", "RolledBack", timeout=90)
                took = time.monotonic() - started
                record(rolled)
            status = rolled["status"]
            assert status["canaryWeight"] == 0
            assert status["rollout"]["rollback"]["version"] == FAILING_VERSION
            message = conditions(rolled)["Degraded"]["message"]
            assert f"canary version {FAILING_VERSION} rolled back" in message and "maxErrorRate" in message
            assert took < 60, f"rollback took {took:.1f}s"
            # What the rollback alert reads (config/prometheus/croupier.rules.yaml): the operator's per-object gauges.
            md = {"object_namespace": namespace, "object_name": "ranker"}
            rolled_back = {**md, "version": str(FAILING_VERSION), "state": "RolledBack"}
            assert operator.metric("croupier_operator_canary_state", **rolled_back) == 1
            assert operator.metric("croupier_operator_canary_weight", **md) == 0
            reasons = wait_for(
                lambda: r if "CanaryRolledBack" in (r := event_reasons(kubectl, namespace)) else None,
                timeout=20,
                what="the rollback Event",
            )
            assert {"CanaryStarted", "CanaryStepAdvanced", "CanaryComplete"} <= set(reasons)
            print(f"\nsteps seen {seen}; rollback {took:.1f}s after the failing canary was applied")
        finally:
            server.stop()
