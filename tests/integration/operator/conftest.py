"""The operator as production runs it, against the session's real control plane.

* CRDs installed from ``crds/``; RBAC from ``config/rbac``; the operator authenticates as the ``croupier-operator``
  ServiceAccount with a token from the TokenRequest API, so every test also proves the ClusterRole is sufficient.
* The operator is a subprocess (``python -m croupier.operator.cli``, what the ``croupier-operator`` script runs).
* kwok pods run nothing, so the test plays the kubelet's part for the runtime: it starts ``croupier-runtime`` on a
  loopback port with the ``policy.yaml`` from the policy's ConfigMap, and the operator's
  ``CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE`` points at that port. A module whose objects need runtimes of their own
  (an Experiment and the DecisionPolicy it targets) defines a fixture ``runtime_url_template`` returning
  ``LoopbackDispatcher.url_template("service")`` (croupier.devcluster.dispatcher): one loopback address per object,
  each forwarded to that object's runtime.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for
from croupier.devcluster.writes import dispatched_writes, sum_metric, writes_flow_schema

ROOT = Path(__file__).resolve().parents[3]
OPERATOR_NAMESPACE = "croupier-system"
RESYNC_SECONDS = 2.0
WRITES_FLOW = "croupier-operator-writes"
WRITES_FLOW_SCHEMA = writes_flow_schema(WRITES_FLOW, "croupier-operator", OPERATOR_NAMESPACE)


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "decisionpolicies.croupier.dev")


@pytest.fixture(scope="session")
def operator_kubeconfig(kubectl: Kubectl, kubeconfig: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A kubeconfig for the croupier-operator ServiceAccount bound to config/rbac's ClusterRole (least privilege)."""
    kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    kubectl("apply", "--server-side", "-k", str(ROOT / "config" / "rbac"))
    token = kubectl("create", "token", "croupier-operator", "-n", OPERATOR_NAMESPACE, "--duration=4h").stdout.strip()
    admin = yaml.safe_load(kubeconfig.read_text())
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": admin["clusters"],
        "users": [{"name": "croupier-operator", "user": {"token": token}}],
        "contexts": [
            {"name": "operator", "context": {"cluster": admin["clusters"][0]["name"], "user": "croupier-operator"}}
        ],
        "current-context": "operator",
    }
    # Attribute the operator's writes: API Priority and Fairness counts requests per FlowSchema, and this one matches
    # exactly the ServiceAccount's mutating requests (Kopf's patches, server-side applies, status patches, Events).
    kubectl.apply(json.dumps(WRITES_FLOW_SCHEMA))
    path = tmp_path_factory.mktemp("operator") / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


@dataclass
class LocalRuntime:
    """``croupier-runtime`` on a fixed loopback port: the stand-in for a policy's pod."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, policy_yaml: str) -> None:
        """(Re)start serving this policy manifest, as a rolled pod would."""
        self.stop()
        policy = self.workdir / "policy.yaml"
        policy.write_text(policy_yaml)
        state = self.workdir / "state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        self.log = self.workdir / "runtime.log"
        argv = [
            str(Path(sys.executable).parent / "croupier-runtime"),
            "--policy",
            str(policy),
            "--port",
            str(self.port),
            "--state-dir",
            str(state),
            "--host",
            "127.0.0.1",
        ]
        self.process = subprocess.Popen(argv, stdout=self.log.open("wb"), stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(self._ready, timeout=30, what=f"croupier-runtime on {self.url}", on_tick=self._check)

    def _check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"croupier-runtime exited: {self.log.read_text() if self.log else ''}")

    def _ready(self) -> bool:
        return httpx.get(f"{self.url}/readyz", timeout=1, trust_env=False).status_code == 200

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


@dataclass
class OperatorProcess:
    """The operator subprocess; restartable (a restart is how the resume path is tested)."""

    env: dict[str, str]
    log: Path
    liveness_port: int
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n===== start #{self.starts} =====\n".encode())
        self.process = subprocess.Popen(
            [sys.executable, "-m", "croupier.operator.cli"],
            env={**self.env, **self.extra_env},
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        wait_for(self._live, timeout=60, what="the operator's liveness endpoint", on_tick=self._check)

    def _check(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the operator exited with {self.process.returncode}:\n{self.tail()}")

    def _live(self) -> bool:
        return httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1, trust_env=False).is_success

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a Prometheus counter/gauge of the operator over the series matching ``labels``."""
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5, trust_env=False).text
        return sum_metric(text, name, labels)


@pytest.fixture(scope="session")
def local_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    (port,) = free_ports(1)
    runtime = LocalRuntime(port=port, workdir=tmp_path_factory.mktemp("runtime"))
    try:
        yield runtime
    finally:
        runtime.stop()


# Per module, not per session: the operator writes status on every kind, and tests elsewhere in the session play the
# operator's part on those kinds themselves (tests/integration/test_crd_admission.py).
@pytest.fixture(scope="module")
def operator(
    crds: None,
    operator_kubeconfig: Path,
    local_runtime: LocalRuntime,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[OperatorProcess]:
    # Where the operator reads every object's runtime: the one local runtime, unless the module defines a fixture
    # `runtime_url_template` (e.g. a `LoopbackDispatcher`'s: an address per object).
    try:
        template: str = request.getfixturevalue("runtime_url_template")
    except pytest.FixtureLookupError:
        template = local_runtime.url
    liveness_port, metrics_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
    env.update(
        {
            "KUBECONFIG": str(operator_kubeconfig),
            "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": template,
            "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": str(RESYNC_SECONDS),
            "CROUPIER_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "0.5",
            "CROUPIER_OPERATOR_PROBE_TIMEOUT_SECONDS": "1",
            "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
            "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
            "CROUPIER_OPERATOR_LOG_FORMAT": "json",
            "CROUPIER_OPERATOR_RUNTIME_IMAGE": "ghcr.io/croupier-dev/croupier-runtime:test",
        }
    )
    process = OperatorProcess(
        env=env,
        log=tmp_path_factory.mktemp("operator-log") / "operator.log",
        liveness_port=liveness_port,
        metrics_port=metrics_port,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
        if os.environ.get("CROUPIER_SHOW_OPERATOR_LOG"):
            print(process.log.read_text(errors="replace"))


@pytest.fixture(autouse=True)
def _operator_survives(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every operator test ends with the operator still running; its log tail is shown on failure."""
    yield
    if "operator" in request.fixturenames:
        process: OperatorProcess = request.getfixturevalue("operator")
        assert process.alive(), f"the operator died:\n{process.tail()}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed and "operator" in getattr(item, "fixturenames", ()):
        process = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
        if isinstance(process, OperatorProcess):
            report.sections.append(("operator log (tail)", process.tail(120)))


CHILD_KINDS = ("configmap", "deployment", "service", "poddisruptionbudget", "persistentvolumeclaim")
WRITE_VERBS = ("POST", "PUT", "PATCH", "APPLY", "DELETE")


def manifest(name: str, namespace: str, **spec: Any) -> str:
    body = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "red"}, {"name": "green"}],
            "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.1}},
            # No storage provisioner in the test cluster: an emptyDir unless a test brings its own volume.
            "state": {"persistence": {"enabled": False}},
            **spec,
        },
    }
    return json.dumps(body)


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in (body.get("status") or {}).get("conditions") or ():
        if entry["type"] == kind:
            return dict(entry)
    return {}


@dataclass
class Policies:
    """Helpers for tests of DecisionPolicies in one namespace."""

    kubectl: Kubectl
    namespace: str
    runtime: LocalRuntime
    resync_seconds: float = RESYNC_SECONDS

    manifest = staticmethod(manifest)
    condition = staticmethod(condition)

    def apply(self, name: str, **spec: Any) -> None:
        self.kubectl.apply(manifest(name, self.namespace, **spec))

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.kubectl.json("get", "decisionpolicy", name, "-n", self.namespace)
        return found

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def wait_condition(
        self, name: str, kind: str, status: str, reason: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the condition has this status (and reason) for the object's current generation."""

        def check() -> dict[str, Any] | None:
            body = self.get(name)
            found = condition(body, kind)
            if (
                found.get("status") == status
                and (reason is None or found.get("reason") == reason)
                and found.get("observedGeneration") == body["metadata"]["generation"]
            ):
                return body
            return None

        try:
            result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{kind}={status} ({reason}) on {name}")
        except TimeoutError:
            now = json.dumps(self.status(name), indent=1)
            raise AssertionError(f"{kind} never became {status}/{reason} on {name}; status: {now}") from None
        return result

    def policy_yaml(self, name: str, generation: int) -> str:
        """The ConfigMap's policy.yaml once it carries ``generation`` (what a rolled pod would mount)."""

        def check() -> str | None:
            configmap = self.kubectl.json("get", "configmap", f"{name}-policy", "-n", self.namespace)
            data: str = configmap["data"]["policy.yaml"]
            return data if yaml.safe_load(data)["metadata"]["generation"] == generation else None

        text: str = wait_for(check, timeout=30, what=f"ConfigMap {name}-policy at generation {generation}")
        return text

    def serve(self, name: str, generation: int) -> None:
        """Play the kubelet: run the local runtime with what the policy's pods would mount."""
        self.runtime.serve(self.policy_yaml(name, generation))

    def children(self, name: str) -> dict[str, dict[str, Any]]:
        found = self.kubectl.json(
            "get", ",".join(CHILD_KINDS), "-n", self.namespace, "-l", f"croupier.dev/policy={name}"
        )
        return {item["kind"]: item for item in found["items"]}

    def wait_children(self, name: str, count: int, timeout: float = 30) -> dict[str, dict[str, Any]]:
        def check() -> dict[str, dict[str, Any]] | None:
            found = self.children(name)
            return found if len(found) == count else None

        result: dict[str, dict[str, Any]] = wait_for(check, timeout=timeout, what=f"{count} children of {name}")
        return result

    def write_series(self) -> dict[str, float]:
        """Every client's writes by verb/resource/code (to explain a failed assertion on operator_writes)."""
        found = {}
        for line in self.kubectl("get", "--raw", "/metrics").stdout.splitlines():
            if line.startswith("apiserver_request_total{") and any(f'verb="{v}"' in line for v in WRITE_VERBS):
                series, _, value = line.rpartition(" ")
                found[series] = float(value)
        return found

    def operator_writes(self) -> float:
        """Every mutating request the operator's ServiceAccount made (API server's count, Kopf's writes included)."""
        return dispatched_writes(self.kubectl, WRITES_FLOW)


@pytest.fixture
def policies(kubectl: Kubectl, namespace: str, operator: OperatorProcess, local_runtime: LocalRuntime) -> Policies:
    # The runtime process is shared by the session: a test starts, as in a fresh namespace, with no pod serving (one
    # left serving an earlier test's generation would answer this test's probes).
    local_runtime.stop()
    return Policies(kubectl=kubectl, namespace=namespace, runtime=local_runtime)
