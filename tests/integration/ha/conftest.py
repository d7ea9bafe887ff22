"""An operator that survives its own failures: several operator processes with Kopf's peering, and restarts of the
control plane under them.

Built on the operator tests' fixtures (imported, not copied): the CRDs, the ``croupier-operator`` ServiceAccount's
kubeconfig, ``OperatorProcess``. kwok pods run nothing, so one ``croupier-runtime`` process stands in for every
policy's pods (as benchmarks/operator_scale.py does): every policy here is created at generation 1 with the same spec,
and the operators' stats probe goes to that process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from integration.operator.conftest import (  # noqa: F401 - fixtures are found by name
    OPERATOR_NAMESPACE,
    WRITES_FLOW,
    OperatorProcess,
    crds,
    operator_kubeconfig,
)
from kubernetes import client

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for
from croupier.devcluster.writes import dispatched_writes, writes_flow_schema

ROOT = Path(__file__).resolve().parents[3]
GROUP, VERSION, PLURAL = "croupier.dev", "v1alpha1", "decisionpolicies"
PEERING = "croupier-operator"  # config/peering/peering.yaml
# Kopf's keep-alives are the one write peering adds; a FlowSchema matched before the operator's writes schema counts
# them apart, so "no writes in a steady state" stays exact for everything else.
PEERING_FLOW = "croupier-operator-peering-writes"
CHILD_KINDS = "configmaps,deployments,services,poddisruptionbudgets,networkpolicies,persistentvolumeclaims"


def peering_flow_schema() -> dict[str, Any]:
    schema = writes_flow_schema(PEERING_FLOW, "croupier-operator", OPERATOR_NAMESPACE)
    schema["spec"]["matchingPrecedence"] = 400
    rule = schema["spec"]["rules"][0]["resourceRules"][0]
    rule.update({"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings", "kopfpeerings"]})
    return schema


@pytest.fixture(scope="session")
def peering(kubectl: Kubectl, operator_kubeconfig: Path) -> str:  # noqa: F811 - the imported fixture
    """Kopf's peering CRDs, then config/peering (the ClusterKopfPeering and its RBAC), as docs/operations.md says."""
    kubectl("apply", "--server-side", "-k", str(ROOT / "config" / "peering" / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/clusterkopfpeerings.kopf.dev")
    kubectl("apply", "--server-side", "-k", str(ROOT / "config" / "peering"))
    kubectl.apply(json.dumps(peering_flow_schema()))
    return PEERING


def policy(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "red"}, {"name": "green"}],
            "algorithm": {"type": "EpsilonGreedy"},
            "state": {"persistence": {"enabled": False}},
            "auth": {"mode": "Disabled"},
        },
    }


@dataclass
class SharedRuntime:
    """One ``croupier-runtime`` serving the common policy at generation 1 (every policy's probe lands here)."""

    port: int
    workdir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        served = policy("shared", "default")
        served["metadata"]["generation"] = 1
        (self.workdir / "policy.yaml").write_text(yaml.safe_dump(served))
        state = self.workdir / "state"
        shutil.rmtree(state, ignore_errors=True)
        state.mkdir(parents=True)
        argv = [
            str(Path(sys.executable).parent / "croupier-runtime"),
            "--policy",
            str(self.workdir / "policy.yaml"),
            "--port",
            str(self.port),
            "--host",
            "127.0.0.1",
            "--state-dir",
            str(state),
        ]
        log = (self.workdir / "runtime.log").open("ab")
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        wait_for(
            lambda: httpx.get(f"{self.url}/readyz", timeout=1, trust_env=False).status_code == 200,
            timeout=30,
            what=f"croupier-runtime on {self.url}",
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture(scope="module")
def shared_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedRuntime]:
    (port,) = free_ports(1)
    runtime = SharedRuntime(port=port, workdir=tmp_path_factory.mktemp("shared-runtime"))
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.stop()


OperatorFactory = Callable[..., OperatorProcess]


@pytest.fixture
def operators(
    crds: None,  # noqa: F811 - the imported fixture
    operator_kubeconfig: Path,  # noqa: F811 - the imported fixture
    shared_runtime: SharedRuntime,
    tmp_path: Path,
) -> Iterator[OperatorFactory]:
    """Start operator processes as production runs them: ``operators("a", CROUPIER_OPERATOR_...="...")``."""
    started: list[OperatorProcess] = []

    def start(identity: str, **settings: str) -> OperatorProcess:
        liveness_port, metrics_port = free_ports(2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(operator_kubeconfig),
                "POD_ID": identity,  # Kopf's peering identity (a pod's name in a cluster)
                "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": shared_runtime.url,
                "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": "2",
                "CROUPIER_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "0.5",
                "CROUPIER_OPERATOR_PROBE_TIMEOUT_SECONDS": "1",
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
                "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
                "CROUPIER_OPERATOR_RUNTIME_IMAGE": "ghcr.io/croupier-dev/croupier-runtime:test",
                **settings,
            }
        )
        process = OperatorProcess(
            env=env, log=tmp_path / f"operator-{identity}.log", liveness_port=liveness_port, metrics_port=metrics_port
        )
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()
            if os.environ.get("CROUPIER_SHOW_OPERATOR_LOG"):
                print(process.log.read_text(errors="replace"))


@dataclass
class Fleet:
    """Many DecisionPolicies in one namespace, and what a test checks about them."""

    api: client.ApiClient
    kubectl: Kubectl
    namespace: str
    names: list[str] = field(default_factory=list)

    def create(self, count: int, prefix: str = "dp") -> None:
        custom = client.CustomObjectsApi(self.api)
        names = [f"{prefix}-{i:03d}" for i in range(count)]
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(
                pool.map(
                    lambda n: custom.create_namespaced_custom_object(
                        GROUP, VERSION, self.namespace, PLURAL, policy(n, self.namespace)
                    ),
                    names,
                )
            )
        self.names.extend(names)

    def bodies(self) -> list[dict[str, Any]]:
        custom = client.CustomObjectsApi(self.api)
        found: list[dict[str, Any]] = custom.list_namespaced_custom_object(GROUP, VERSION, self.namespace, PLURAL)[
            "items"
        ]
        return found

    def ready(self) -> set[str]:
        return {b["metadata"]["name"] for b in self.bodies() if is_ready(b)}

    def wait_ready(self, timeout: float) -> None:
        def all_ready() -> bool:
            return self.ready() >= set(self.names)

        try:
            wait_for(all_ready, timeout=timeout, interval=1.0, what=f"{len(self.names)} policies Ready")
        except TimeoutError:
            missing = sorted(set(self.names) - self.ready())
            reasons = {
                b["metadata"]["name"]: [(c["type"], c["status"], c.get("reason")) for c in b["status"]["conditions"]]
                for b in self.bodies()
                if b["metadata"]["name"] in missing[:3] and (b.get("status") or {}).get("conditions")
            }
            raise AssertionError(f"{len(missing)} policies not Ready: {missing[:10]}; {reasons}") from None

    def children(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.kubectl.json(
            "get", CHILD_KINDS, "-n", self.namespace, "-l", "app.kubernetes.io/managed-by=croupier-operator"
        )["items"]
        return found

    def versions(self) -> dict[str, str]:
        """resourceVersion of every policy and child (a write to any of them changes it)."""
        objects = [*self.bodies(), *self.children()]
        return {f"{o.get('kind')}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in objects}

    def assert_one_set_of_children_each(self) -> dict[str, int]:
        """Every policy owns exactly one child of each kind, the same kinds for all; no orphan, no second owner."""
        uids = {b["metadata"]["uid"]: b["metadata"]["name"] for b in self.bodies()}
        by_policy: dict[str, list[str]] = {name: [] for name in self.names}
        for child in self.children():
            owners = child["metadata"].get("ownerReferences") or []
            assert len(owners) == 1 and owners[0]["uid"] in uids, (child["kind"], child["metadata"]["name"], owners)
            by_policy[uids[owners[0]["uid"]]].append(child["kind"])
        kinds = {name: tuple(sorted(found)) for name, found in by_policy.items()}
        first = kinds[self.names[0]]
        assert len(set(first)) == len(first) >= 4, first
        assert all(found == first for found in kinds.values()), {n: k for n, k in kinds.items() if k != first}
        return {kind: first.count(kind) for kind in first}

    def replica_sets(self) -> dict[str, int]:
        """ReplicaSets per Deployment: more than one means a pod template was written twice (a needless roll)."""
        found = self.kubectl.json("get", "replicasets", "-n", self.namespace)["items"]
        counts: dict[str, int] = {}
        for rs in found:
            for owner in rs["metadata"].get("ownerReferences") or []:
                counts[owner["name"]] = counts.get(owner["name"], 0) + 1
        return counts


def is_ready(body: dict[str, Any]) -> bool:
    generation = body["metadata"].get("generation")
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True" and condition.get("observedGeneration") == generation)
    return False


@pytest.fixture
def fleet(k8s_api: client.ApiClient, kubectl: Kubectl, namespace: str) -> Fleet:
    return Fleet(api=k8s_api, kubectl=kubectl, namespace=namespace)


def operator_writes(kubectl: Kubectl) -> float:
    """Mutating requests of the operator's ServiceAccount since the API server started, peering keep-alives apart."""
    return dispatched_writes(kubectl, WRITES_FLOW)


def peering_writes(kubectl: Kubectl) -> float:
    return dispatched_writes(kubectl, PEERING_FLOW)


class Traffic:
    """Decide and reward against a runtime in a thread, counting what succeeded and what failed, and when."""

    def __init__(self, url: str, interval: float = 0.02) -> None:
        self.url = url
        self.interval = interval
        self.decisions = 0
        self.rewards = 0
        self.failures: list[str] = []
        self.decided_at: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5, trust_env=False) as http:
            unit = 0
            while not self._stop.is_set():
                unit += 1
                try:
                    decided = http.post("/v1/decide", json={"unitId": f"u{unit}"})
                    decided.raise_for_status()
                    self.decisions += 1
                    self.decided_at.append(time.monotonic())
                    reward = {"decisionId": decided.json()["decisionId"], "reward": unit % 2}
                    http.post("/v1/rewards", json=reward).raise_for_status()
                    self.rewards += 1
                except httpx.HTTPError as error:
                    self.failures.append(f"{type(error).__name__}: {error}")
                self._stop.wait(self.interval)

    def decisions_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.decided_at if start <= t <= end)
