"""Do the operator and its data plane stay flat and quiet for ten minutes under traffic?

    uv run python benchmarks/soak.py [--minutes 10] [--policies 3] [--replicas 2 [--takeover]] [--auth]
        [--json results.json]

Starts the local control plane (or uses ``CROUPIER_KUBECONFIG``), installs the CRDs (and Gateway API's), runs the
operator as production does (``croupier-operator`` with a token of config/rbac's ServiceAccount, default resync
interval) and plays the kubelet for every pod, since kwok pods run nothing:

* ``--policies`` DecisionPolicies, each served by its own ``croupier-runtime`` process;
* one Experiment (A/B with static payloads) served by ``croupier-runtime --experiment``;
* one ModelDeployment (stable version 1 of a real SavedModel, written with TensorFlow) served by the local model
  server (``croupier-modelserver``), its model config copied from the operator's ConfigMap as a kubelet would.

The operator reaches the runtimes through a small path router on loopback standing in for their Services
(``CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE=http://127.0.0.1:PORT/{namespace}/{name}``) and the model server through
its documented address settings. Simulated traffic runs for ``--minutes``: decide + reward on every policy,
assignment (its exposure) + outcome on the experiment, Predict on the model server. Measured:

1. RSS of the operator, every runtime and the model server, sampled every ``--sample-seconds``: the first sample
   after the warm-up (``--warmup-seconds`` of traffic), the last, the peak, and the least-squares growth per minute;
2. the operator's writes during traffic: child applies (must be 0: nothing about the children changes) and status
   patches (the statistics in status change under traffic: at most one per object per resync interval);
3. steady state: after the traffic stops and the statuses settle, mutating requests of the operator's
   ServiceAccount over ``--quiet-seconds`` (the API server's count): must be 0;
4. error lines in every log (operator, runtimes, model server): must be 0.

With ``--replicas 2`` (or more) the operator runs as the HA install does: that many ``croupier-operator`` processes
with Kopf's peering (config/peering/crds and config/peering applied first, ``CROUPIER_OPERATOR_PEERING_NAME``); the
replica started first leads, the others stand by. Their keep-alives in the peering object are counted apart (their
own FlowSchema), so the steady state's must-be-0 stays exact for every other write. ``--takeover`` kills the leader
(SIGKILL, no goodbye) halfway through the traffic and measures how long until a standby reconciles; every object must
still be Ready at the end, with as many Deployments as before (no child made twice).

With ``--auth`` every runtime requires bearer tokens, as ``spec.auth``'s default has it: each object gets its Secret
``<name>-auth`` (keys decide, rewards, admin; labelled for the operator's stats probe), the runtimes serve with
``--auth-dir`` holding the Secret's files, and the traffic sends each request's token. Before the traffic every runtime
must refuse a request without a token (401) and one with another scope's token (403); after it, no log may contain a
token.

Exit status 1 when a must-be-0 is not 0. Results, the command and the machine: docs/benchmarks/soak.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import yaml

from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.node import FakeNode
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for
from croupier.devcluster.writes import dispatched_writes, sum_metric, writes_flow_schema

ROOT = Path(__file__).resolve().parents[1]
OPERATOR_NAMESPACE = "croupier-system"
WRITES_FLOW = "croupier-operator-writes"
PEERING = "croupier-operator"  # config/peering/peering.yaml
PEERING_FLOW = "croupier-operator-peering-writes"
MODEL = "ranker"
EXPERIMENT = "checkout"
SALT = "soak"


# --- the objects ------------------------------------------------------------------------------------------------------


# spec.auth: the default (bearer tokens from the Secret <name>-auth, keys decide, rewards and admin), or off.
AUTH_ON: dict[str, Any] = {}
AUTH_OFF = {"auth": {"mode": "Disabled"}}
AUTH_KEYS = ("decide", "rewards", "admin")


def policy(name: str, namespace: str, *, auth: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "red"}, {"name": "green"}],
            "algorithm": {"type": "ThompsonSampling"},
            "state": {"persistence": {"enabled": False}},
            **(AUTH_ON if auth else AUTH_OFF),
        },
    }


def auth_secret(owner: str, namespace: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The Secret ``<owner>-auth`` with a fresh token per default key, labelled for the operator's stats probe
    (docs/operations.md#authentication), and its tokens by key."""
    tokens = {key: f"soak-{key}-{secrets.token_urlsafe(24)}" for key in AUTH_KEYS}
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{owner}-auth", "namespace": namespace, "labels": {"croupier.dev/runtime-auth": "true"}},
        "stringData": tokens,
    }
    return secret, tokens


def experiment(namespace: str, *, auth: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": EXPERIMENT, "namespace": namespace},
        "spec": {
            **(AUTH_ON if auth else AUTH_OFF),
            "variants": [
                {"name": "a", "weight": 50, "payload": {"color": "blue"}},
                {"name": "b", "weight": 50, "payload": {"color": "green"}},
            ],
            "control": "a",
            "assignment": {"unitKey": "userId", "salt": SALT},
            "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
            "analysis": {"method": "Sequential", "minimumSamplesPerVariant": 200},
        },
    }


def experiment_volume(namespace: str) -> dict[str, Any]:
    """A volume for the experiment's state claim to bind (no provisioner here; binder and scheduler are real)."""
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-{EXPERIMENT}"[:63]},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": f"/tmp/{namespace}-{EXPERIMENT}"},
            "claimRef": {"namespace": namespace, "name": f"{EXPERIMENT}-experiment-state"},
        },
    }


def model_deployment(namespace: str, base: Path) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": MODEL, "namespace": namespace},
        "spec": {"model": {"name": MODEL, "storageUri": f"file://{base}"}, "stable": {"version": 1}},
    }


def is_ready(body: dict[str, Any]) -> bool:
    generation = body["metadata"].get("generation")
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True" and condition.get("observedGeneration") == generation)
    return False


# --- processes --------------------------------------------------------------------------------------------------------


@dataclass
class Process:
    """A child process with its log; RSS read from /proc."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str] | None = None
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd=ROOT)
        return self

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        if self.popen is not None and self.popen.poll() is not None:
            tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])
            raise RuntimeError(f"{self.name} exited with {self.popen.returncode}:\n{tail}")

    def rss_mib(self) -> float:
        assert self.popen is not None
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.alive():
            assert self.popen is not None
            self.popen.send_signal(sig)
            try:
                self.popen.wait(30)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)


def runtime_argv(kind: str, manifest: Path, port: int, state: Path, auth_dir: Path | None = None) -> list[str]:
    """``croupier-runtime --policy|--experiment MANIFEST`` on a loopback port, as a pod would run it (with
    ``--auth-dir``, the mounted auth Secret, as the operator sets it unless the spec disables auth)."""
    runtime = str(Path(sys.executable).parent / "croupier-runtime")
    argv = [runtime, kind, str(manifest), "--port", str(port), "--host", "127.0.0.1", "--state-dir", str(state)]
    return argv if auth_dir is None else [*argv, "--auth-dir", str(auth_dir)]


def mount_secret(kubectl: Kubectl, namespace: str, name: str, directory: Path) -> Path:
    """What the kubelet's Secret volume holds: one file per key, read back from the API server."""
    data = kubectl.json("get", "secret", name, "-n", namespace)["data"]
    directory.mkdir(parents=True)
    for key, value in data.items():
        (directory / key).write_bytes(base64.b64decode(value))
    return directory


@dataclass
class Replicas:
    """The operator processes and their metrics; a killed replica's counters are kept from just before it died."""

    processes: list[Process] = field(default_factory=list)
    ports: dict[str, int] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)
    last: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def add(self, process: Process, metrics_port: int) -> None:
        self.processes.append(process)
        self.ports[process.name] = metrics_port

    def replica_metric(self, replica: str, name: str, **labels: str) -> float:
        if replica in self.killed:
            return self.last.get((replica, name, json.dumps(labels, sort_keys=True)), 0.0)
        text = httpx.get(f"http://127.0.0.1:{self.ports[replica]}/metrics", timeout=5, trust_env=False).text
        return float(sum_metric(text, name, labels))

    def metric(self, name: str, **labels: str) -> float:
        return sum(self.replica_metric(p.name, name, **labels) for p in self.processes)

    def take_over(self, timeout: float) -> dict[str, Any]:
        """SIGKILL the leader (the replica started first); time until a standby reconciles."""
        leader, standbys = self.processes[0], self.processes[1:]
        for name, labels in COUNTED:
            key = (leader.name, name, json.dumps(labels, sort_keys=True))
            self.last[key] = self.replica_metric(leader.name, name, **labels)
        worked = {p.name: self.replica_metric(p.name, "croupier_operator_reconciles_total") for p in standbys}
        assert leader.popen is not None
        leader.popen.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        leader.popen.wait(10)
        self.killed.add(leader.name)

        def reconciled() -> str | None:
            for standby in standbys:
                standby.check()
                if self.replica_metric(standby.name, "croupier_operator_reconciles_total") > 0:
                    return standby.name
            return None

        successor = wait_for(reconciled, timeout=timeout, interval=0.25, what="a standby taking over")
        return {"standby_reconciles_before": worked, "successor": successor, "seconds": time.monotonic() - killed_at}


# The operator counters the run reads (a killed replica's are kept from just before its death).
COUNTED = (("croupier_operator_api_writes_total", {"verb": "apply"}), ("croupier_operator_status_writes_total", {}))


def wait_http(url: str, what: str, process: Process, timeout: float = 180) -> None:
    wait_for(
        lambda: httpx.get(url, timeout=1, trust_env=False).status_code == 200,
        timeout=timeout,
        what=what,
        on_tick=process.check,
    )


class Router:
    """Stands in for the runtimes' Services: GET /{namespace}/{name}/... goes to that object's runtime process."""

    def __init__(self) -> None:
        self.routes: dict[str, str] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # The operator's probe may give up first (its timeout is 2 s): nothing to answer then.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._forward()

            def _forward(self) -> None:
                namespace, _, rest = self.path.lstrip("/").partition("/")
                name, _, path = rest.partition("/")
                upstream = routes.get(f"{namespace}/{name}")
                if upstream is None:
                    self.send_error(404, f"no runtime for {namespace}/{name}")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
                try:
                    answer = httpx.get(f"{upstream}/{path}", headers=headers, timeout=5, trust_env=False)
                except httpx.HTTPError:
                    self.send_error(502, f"{namespace}/{name} unreachable")
                    return
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def template(self) -> str:
        return f"http://127.0.0.1:{self.port}/{{namespace}}/{{name}}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Kubelet:
    """Copies a ConfigMap key into a file every half second, as the kubelet's ConfigMap volume would."""

    def __init__(self, kubectl: Kubectl, namespace: str, configmap: str, key: str, path: Path) -> None:
        self.kubectl, self.namespace, self.configmap, self.key, self.path = kubectl, namespace, configmap, key, path
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def sync(self) -> bool:
        found = self.kubectl("get", "configmap", self.configmap, "-n", self.namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        text = json.loads(found.stdout)["data"][self.key]
        if not self.path.exists() or self.path.read_text() != text:
            self.path.write_text(text)
        return True

    def _run(self) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(Exception):
                self.sync()

    def start_once(self) -> None:
        """Wait for the ConfigMap and copy it once (a runtime reads its manifest at start)."""
        wait_for(self.sync, timeout=120, what=f"ConfigMap {self.configmap}")

    def start(self) -> None:
        self.start_once()
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)


# --- traffic ----------------------------------------------------------------------------------------------------------


@dataclass
class Traffic:
    """Decide + reward, assign + outcome and Predict requests at a fixed pace, in one thread per target."""

    policies: dict[str, str]
    experiment_url: str
    model_url: str
    pause: float = 0.05
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)
    """With --auth: the tokens by key (decide, rewards) of each runtime, by its URL."""
    counts: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _loop(self, name: str, step: Any) -> None:
        rng = random.Random(name)
        with httpx.Client(timeout=10, trust_env=False) as http:
            i = 0
            while not self._stop.is_set():
                i += 1
                try:
                    step(http, rng, i)
                    self.counts[name] = self.counts.get(name, 0) + 1
                except (httpx.HTTPError, KeyError, ValueError) as error:
                    self.failures.append(f"{name}: {type(error).__name__}: {error}")
                self._stop.wait(self.pause)

    def headers(self, url: str, key: str) -> dict[str, str]:
        """The request's Authorization header with the runtime's token of that key (none without --auth)."""
        token = self.tokens.get(url, {}).get(key)
        return {} if token is None else {"Authorization": f"Bearer {token}"}

    def _policy_step(self, url: str) -> Any:
        decide, rewards = self.headers(url, "decide"), self.headers(url, "rewards")

        def step(http: httpx.Client, rng: random.Random, i: int) -> None:
            decided = http.post(f"{url}/v1/decide", json={"unitId": f"u{i}"}, headers=decide)
            decided.raise_for_status()
            body = decided.json()
            reward = 1 if rng.random() < {"blue": 0.1, "red": 0.2, "green": 0.3}[body["arm"]] else 0
            reward_body = {"decisionId": body["decisionId"], "reward": reward}
            http.post(f"{url}/v1/rewards", json=reward_body, headers=rewards).raise_for_status()

        return step

    def _experiment_step(self, http: httpx.Client, rng: random.Random, i: int) -> None:
        unit = f"user-{i}"
        url = self.experiment_url
        assigned = http.post(f"{url}/v1/assign", json={"unitId": unit}, headers=self.headers(url, "decide"))
        assigned.raise_for_status()
        variant = assigned.json()["variant"]  # the unit's first assignment logs its exposure
        if rng.random() < {"a": 0.10, "b": 0.12}.get(variant, 0.1):
            outcome = {"unitId": unit, "metric": "conversion", "value": 1, "eventId": f"e-{i}"}
            http.post(
                f"{url}/v1/outcomes", json={"outcomes": [outcome]}, headers=self.headers(url, "rewards")
            ).raise_for_status()

    def _model_step(self, http: httpx.Client, rng: random.Random, i: int) -> None:
        instance = {"context": [rng.random() for _ in range(4)], "arms": [[rng.random() for _ in range(4)]] * 2}
        http.post(f"{self.model_url}/v1/models/{MODEL}:predict", json={"instances": [instance]}).raise_for_status()

    def __enter__(self) -> Traffic:
        steps = [(f"policy {name}", self._policy_step(url)) for name, url in self.policies.items()]
        steps += [("experiment", self._experiment_step), ("model", self._model_step)]
        for name, step in steps:
            thread = threading.Thread(target=self._loop, args=(name, step), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


# --- the run ----------------------------------------------------------------------------------------------------------


# JSON log lines at error level (operator, runtimes), Python tracebacks, and glog/absl error lines (TensorFlow's C++).
ERROR_LINE = re.compile(
    r'"level":\s*"(error|critical|exception)"|Traceback \(most recent call last\)|^E\d{4} ', re.IGNORECASE
)


def error_lines(log: Path) -> list[str]:
    return [line[:300] for line in log.read_text(errors="replace").splitlines() if ERROR_LINE.search(line)]


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    xs, ys = [s[0] for s in samples], [s[1] for s in samples]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    return 0.0 if var == 0 else 60 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var


@contextlib.contextmanager
def cluster(keep: bool) -> Iterator[tuple[Path, Kubectl]]:
    external = os.environ.get("CROUPIER_KUBECONFIG")
    if external:
        kubeconfig = Path(external)
        yield kubeconfig, Kubectl(binary=Path(os.environ.get("KUBECTL", "kubectl")), kubeconfig=kubeconfig)
        return
    with ControlPlane(node=FakeNode(pods="200"), keep=keep) as plane:
        yield plane.kubeconfig, Kubectl(binary=plane.binaries.path("kubectl"), kubeconfig=plane.kubeconfig)


def operator_kubeconfig(kubectl: Kubectl, admin: Path, path: Path) -> Path:
    """The ServiceAccount of config/rbac with a TokenRequest token, and the FlowSchema that counts its writes."""
    kubectl("create", "namespace", OPERATOR_NAMESPACE, check=False)
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "config" / "rbac"))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(writes_flow_schema(
        WRITES_FLOW, "croupier-operator", OPERATOR_NAMESPACE)))  # fmt: skip
    token = kubectl("create", "token", "croupier-operator", "-n", OPERATOR_NAMESPACE, "--duration=4h").stdout.strip()
    config = yaml.safe_load(admin.read_text())
    cluster_name = config["clusters"][0]["name"]
    config["users"] = [{"name": "croupier-operator", "user": {"token": token}}]
    config["contexts"] = [{"name": "operator", "context": {"cluster": cluster_name, "user": "croupier-operator"}}]
    config["current-context"] = "operator"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


# The resources the operator lists and watches from its start (its own kinds and the routes it renders).
WATCHED = [f"{plural}.croupier.dev" for plural in ("decisionpolicies", "experiments", "modeldeployments")] + [
    f"{plural}.gateway.networking.k8s.io" for plural in ("httproutes", "grpcroutes")
]


def served(kubectl: Kubectl, resources: list[str]) -> None:
    """Wait until each resource's CRD is Established and the API server lists it. Right after a CRD is created its
    conditions may still be empty (`kubectl wait` then fails) and its list answers 503 "storage is (re)initializing"
    for a moment, which Kopf would log as an error while it retries."""
    for resource in resources:
        wait_for(
            lambda resource=resource: kubectl("get", resource, "-A", check=False).returncode == 0,
            timeout=120,
            interval=0.5,
            what=f"{resource} served",
        )


def install(kubectl: Kubectl) -> None:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    env = {**kubectl.env, "KUBECTL": str(kubectl.binary)}
    script = ROOT / "hack" / "gatewayapi" / "crds.sh"
    subprocess.run(["bash", str(script), "--apply"], env=env, check=True, capture_output=True, timeout=600)
    served(kubectl, WATCHED)


def install_peering(kubectl: Kubectl) -> None:
    """Kopf's peering CRDs, config/peering (the ClusterKopfPeering and its RBAC), and a FlowSchema for keep-alives
    matched before the operator's writes schema (tests/integration/ha/conftest.py does the same)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "config" / "peering" / "crds"))
    served(kubectl, ["clusterkopfpeerings.kopf.dev"])
    kubectl("apply", "--server-side", "--force-conflicts", "-k", str(ROOT / "config" / "peering"))
    schema = writes_flow_schema(PEERING_FLOW, "croupier-operator", OPERATOR_NAMESPACE)
    schema["spec"]["matchingPrecedence"] = 400
    schema["spec"]["rules"][0]["resourceRules"][0].update(
        {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings", "kopfpeerings"]}
    )
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=json.dumps(schema))


def run(args: argparse.Namespace, kubeconfig: Path, kubectl: Kubectl, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    namespace = f"soak-{secrets.token_hex(3)}"
    install(kubectl)
    kubectl("create", "namespace", namespace)
    wait_for(
        lambda: kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0,
        timeout=60,
        what="the default ServiceAccount",
    )
    processes: list[Process] = []
    router = Router()
    kubelets: list[Kubelet] = []
    tokens: dict[str, dict[str, str]] = {}  # with --auth: each runtime's tokens by key, by object name
    try:
        # SavedModel version 1 (TensorFlow, seconds), while the rest starts.
        base = work / "models" / MODEL
        writer = Process(
            "savedmodel",
            [sys.executable, "-m", "croupier.modelserver.savedmodels", str(base), "1"],
            work / "savedmodel.log",
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        ).start()
        grpc_port, rest_port = free_ports(2)
        model_url = f"http://127.0.0.1:{rest_port}"
        operator_kubeconfig_path = operator_kubeconfig(kubectl, kubeconfig, work / "operator.kubeconfig")
        if args.replicas > 1:
            install_peering(kubectl)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(operator_kubeconfig_path),
                "CROUPIER_OPERATOR_NAMESPACES": namespace,
                "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": router.template,
                "CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE": f"127.0.0.1:{grpc_port}",
                "CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE": f"{model_url}/monitoring/prometheus/metrics",
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
                "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": str(args.resync_seconds),
                "CROUPIER_OPERATOR_RUNTIME_IMAGE": "ghcr.io/croupier-dev/croupier-runtime:soak",
            }
        )
        if args.replicas > 1:
            env["CROUPIER_OPERATOR_PEERING_NAME"] = PEERING
            env["CROUPIER_OPERATOR_PEERING_LIFETIME_SECONDS"] = str(args.peering_lifetime_seconds)
        replicas = Replicas()
        for index in range(args.replicas):
            name = "operator" if args.replicas == 1 else f"operator {index}"
            metrics_port, liveness_port = free_ports(2)
            replica_env = {
                **env,
                "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
            }
            log = work / f"{name.replace(' ', '-')}.log"
            operator = Process(name, [sys.executable, "-m", "croupier.operator.cli"], log, replica_env)
            processes.append(operator.start())
            replicas.add(operator, metrics_port)
            # One at a time: the replica that started first has the highest priority (it leads).
            wait_http(f"http://127.0.0.1:{liveness_port}/healthz", f"{name} liveness", operator, timeout=300)
        metric = replicas.metric

        names = [f"policy-{i}" for i in range(args.policies)]
        for name in names if args.auth else ():
            secret, tokens[name] = auth_secret(name, namespace)
            kubectl.apply(json.dumps(secret))
        if args.auth:
            secret, tokens[EXPERIMENT] = auth_secret(EXPERIMENT, namespace)
            kubectl.apply(json.dumps(secret))
        for name in names:
            kubectl.apply(json.dumps(policy(name, namespace, auth=args.auth)))
        kubectl.apply(json.dumps(experiment_volume(namespace)))
        kubectl.apply(json.dumps(experiment(namespace, auth=args.auth)))
        if writer.popen is not None and writer.popen.wait(600) != 0:
            writer.check()
        kubectl.apply(json.dumps(model_deployment(namespace, base)))

        # The kubelet's part: every runtime serves what its pod would mount.
        policy_urls: dict[str, str] = {}
        served_url: dict[str, str] = {}  # process name -> URL
        for name in names:
            served = work / name
            served.mkdir()
            Kubelet(kubectl, namespace, f"{name}-policy", "policy.yaml", served / "policy.yaml").start_once()
            (port,) = free_ports(1)
            auth_dir = mount_secret(kubectl, namespace, f"{name}-auth", served / "auth") if args.auth else None
            argv = runtime_argv("--policy", served / "policy.yaml", port, served, auth_dir)
            processes.append(Process(f"runtime {name}", argv, work / f"runtime-{name}.log").start())
            policy_urls[name] = served_url[f"runtime {name}"] = f"http://127.0.0.1:{port}"
            router.routes[f"{namespace}/{name}"] = policy_urls[name]
        served = work / EXPERIMENT
        served.mkdir()
        Kubelet(kubectl, namespace, f"{EXPERIMENT}-experiment", "experiment.yaml", served / "exp.yaml").start_once()
        (experiment_port,) = free_ports(1)
        auth_dir = mount_secret(kubectl, namespace, f"{EXPERIMENT}-auth", served / "auth") if args.auth else None
        argv = runtime_argv("--experiment", served / "exp.yaml", experiment_port, served, auth_dir)
        experiment_runtime = Process("runtime experiment", argv, work / "runtime-experiment.log")
        processes.append(experiment_runtime.start())
        experiment_url = served_url["runtime experiment"] = f"http://127.0.0.1:{experiment_port}"
        router.routes[f"{namespace}/{EXPERIMENT}"] = experiment_url
        config = work / "models" / "models.config"
        kubelet = Kubelet(kubectl, namespace, f"{MODEL}-models", "models.config", config)
        kubelet.start()
        kubelets.append(kubelet)
        monitoring = work / "models" / "monitoring.config"
        monitoring.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
        model_server = Process(
            "model server",
            [
                *(sys.executable, "-m", "croupier.modelserver", "--host=127.0.0.1"),
                *(f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_config_file={config}"),
                *("--model_config_file_poll_wait_seconds=1", f"--monitoring_config_file={monitoring}"),
            ],
            work / "modelserver.log",
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        processes.append(model_server.start())
        for process in processes[len(replicas.processes) :]:
            if process is not model_server:
                wait_http(f"{served_url[process.name]}/readyz", process.name, process)
        wait_http(f"{model_url}/v1/models/{MODEL}", "the model server", model_server, timeout=300)

        kinds = ["decisionpolicies", "experiments", "modeldeployments"]

        def bodies() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = kubectl.json("get", ",".join(kinds), "-n", namespace)["items"]
            return found

        def all_ready() -> bool:
            found = bodies()
            return len(found) == args.policies + 2 and all(is_ready(b) for b in found)

        try:
            wait_for(all_ready, timeout=300, interval=1.0, what="every object Ready")
        except TimeoutError:
            states = {b["metadata"]["name"]: (b.get("status") or {}).get("conditions") for b in bodies()}
            raise RuntimeError(f"not every object became Ready: {json.dumps(states)[:3000]}") from None

        by_url = {url: tokens[name] for name, url in policy_urls.items() if name in tokens}
        if EXPERIMENT in tokens:
            by_url[experiment_url] = tokens[EXPERIMENT]
        if args.auth:
            results["auth"] = refusals(policy_urls | {EXPERIMENT: experiment_url}, tokens)
        deployments_before = len(kubectl.json("get", "deployments", "-n", namespace)["items"])
        measured = list(processes)
        samples: dict[str, list[tuple[float, float]]] = {p.name: [] for p in measured}
        with Traffic(policy_urls, experiment_url, model_url, pause=args.pause, tokens=by_url) as traffic:
            time.sleep(args.warmup_seconds)
            applies = metric("croupier_operator_api_writes_total", verb="apply")
            status_writes = metric("croupier_operator_status_writes_total")
            started = time.monotonic()
            while (elapsed := time.monotonic() - started) < args.minutes * 60:
                for process in measured:
                    if process.name in replicas.killed:
                        continue
                    process.check()
                    samples[process.name].append((elapsed, process.rss_mib()))
                if args.takeover and not replicas.killed and elapsed >= args.minutes * 30:
                    results["takeover"] = replicas.take_over(args.peering_lifetime_seconds + 60)
                time.sleep(min(args.sample_seconds, max(args.minutes * 60 - elapsed, 0.1)))
            for process in measured:
                if process.name not in replicas.killed:
                    samples[process.name].append((time.monotonic() - started, process.rss_mib()))
            results["traffic_seconds"] = time.monotonic() - started
            results["traffic_applies"] = metric("croupier_operator_api_writes_total", verb="apply") - applies
            results["traffic_status_writes"] = metric("croupier_operator_status_writes_total") - status_writes
        results["requests"] = dict(traffic.counts)
        results["traffic_failures"] = traffic.failures[:20]
        results["traffic_failure_count"] = len(traffic.failures)
        results["objects"] = args.policies + 2
        results["replicas"] = args.replicas
        results["rss"] = {
            name: {
                "first": points[0][1],
                "last": points[-1][1],
                "peak": max(p[1] for p in points),
                "slope_mib_per_min": slope_per_minute(points),
            }
            for name, points in samples.items()
        }

        # Steady state: the statuses settle (the last statistics written), then nothing may be written.
        time.sleep(args.settle_seconds)
        before = dispatched_writes(kubectl, WRITES_FLOW)
        keepalives = dispatched_writes(kubectl, PEERING_FLOW) if args.replicas > 1 else 0.0
        versions = {(b["kind"], b["metadata"]["name"]): b["metadata"]["resourceVersion"] for b in bodies()}
        time.sleep(args.quiet_seconds)
        results["quiet_seconds"] = args.quiet_seconds
        results["quiet_writes"] = dispatched_writes(kubectl, WRITES_FLOW) - before
        if args.replicas > 1:
            results["quiet_keepalives"] = dispatched_writes(kubectl, PEERING_FLOW) - keepalives
        results["quiet_changed_objects"] = sum(
            1 for b in bodies() if versions.get((b["kind"], b["metadata"]["name"])) != b["metadata"]["resourceVersion"]
        )
        results["all_ready_at_end"] = all_ready()
        results["deployments"] = {
            "before": deployments_before,
            "after": len(kubectl.json("get", "deployments", "-n", namespace)["items"]),
        }
        for process in measured:
            if process.name not in replicas.killed:
                process.check()
    finally:
        for kubelet in kubelets:
            kubelet.close()
        for process in reversed(processes):
            process.stop(signal.SIGINT if process.name.startswith("operator") else signal.SIGTERM)
        router.close()
        kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        kubectl("delete", "pv", experiment_volume(namespace)["metadata"]["name"], "--wait=false", check=False)
    logs = sorted(work.glob("*.log"))
    results["error_lines"] = {log.name: error_lines(log) for log in logs if log.name != "savedmodel.log"}
    if args.auth:
        secret_values = [token for by_key in tokens.values() for token in by_key.values()]
        results["auth"]["logs_with_a_token"] = [
            log.name for log in logs if any(token in log.read_text(errors="replace") for token in secret_values)
        ]
    return results


def refusals(urls: dict[str, str], tokens: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Before the traffic, what each runtime answers a data-plane request without a token and with a token of the
    wrong scope (must be 401 and 403): proof that the traffic below is authenticated, not merely carrying headers."""
    answers: dict[str, list[int]] = {}
    for name, url in urls.items():
        path, body = ("/v1/assign", {"unitId": "nobody"}) if name == EXPERIMENT else ("/v1/decide", {"unitId": "x"})
        wrong = {"Authorization": f"Bearer {tokens[name]['rewards']}"}
        answers[name] = [
            httpx.post(f"{url}{path}", json=body, headers=headers, timeout=10, trust_env=False).status_code
            for headers in ({}, wrong)
        ]
    return {"refused": answers, "ok": all(codes == [401, 403] for codes in answers.values())}


def failed(results: dict[str, Any]) -> list[str]:
    problems = []
    if results["traffic_applies"]:
        problems.append(f"{results['traffic_applies']:.0f} child applies during traffic")
    if results["quiet_writes"] or results["quiet_changed_objects"]:
        problems.append(f"{results['quiet_writes']:.0f} writes in the steady state")
    errors = {k: v for k, v in results["error_lines"].items() if v}
    if errors:
        problems.append(f"error lines: {json.dumps(errors)[:2000]}")
    if results["traffic_failure_count"]:
        problems.append(f"{results['traffic_failure_count']} failed requests: {results['traffic_failures'][:3]}")
    if not results["all_ready_at_end"]:
        problems.append("not every object Ready at the end")
    if results["deployments"]["after"] != results["deployments"]["before"]:
        problems.append(f"Deployments before and after the traffic: {results['deployments']}")
    if "auth" in results and not results["auth"]["ok"]:
        problems.append(f"a runtime did not refuse a request without a token (401) or of another scope (403): "
                        f"{results['auth']['refused']}")  # fmt: skip
    if results.get("auth", {}).get("logs_with_a_token"):
        problems.append(f"a token appeared in logs: {results['auth']['logs_with_a_token']}")
    if any(results.get("takeover", {}).get("standby_reconciles_before", {}).values()):
        problems.append(f"a standby reconciled while the leader lived: {results['takeover']}")
    return problems


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    minutes = results["traffic_seconds"] / 60
    bound = results["objects"] * results["traffic_seconds"] / args.resync_seconds
    rows = [
        (
            "traffic",
            f"{minutes:.1f} min; "
            + ", ".join(f"{k} {v / results['traffic_seconds']:.0f}/s" for k, v in sorted(results["requests"].items())),
        ),
        ("failed requests", f"{results['traffic_failure_count']}"),
    ]
    for name, rss in results["rss"].items():
        rows.append(
            (
                f"RSS {name}: first / last / peak, growth",
                f"{rss['first']:.0f} / {rss['last']:.0f} / {rss['peak']:.0f} MiB, "
                f"{rss['last'] - rss['first']:+.1f} MiB ({rss['slope_mib_per_min']:+.2f} MiB/min fitted)",
            )
        )
    rows += [
        ("operator child applies during traffic", f"{results['traffic_applies']:.0f}"),
        (
            f"operator status patches during traffic ({results['objects']} objects, resync {args.resync_seconds} s)",
            f"{results['traffic_status_writes']:.0f} (bound {bound:.0f})",
        ),
        (
            f"steady state {results['quiet_seconds']} s after traffic: operator writes (API server's count)",
            f"{results['quiet_writes']:.0f}; objects changed {results['quiet_changed_objects']}",
        ),
        ("error lines in logs", ", ".join(f"{k} {len(v)}" for k, v in results["error_lines"].items())),
    ]
    if "auth" in results:
        refused = results["auth"]["refused"]
        rows.insert(
            1,
            (
                "authentication (bearer tokens from each object's Secret)",
                f"on for {len(refused)} runtimes; without a token / with another scope's: "
                + ", ".join(sorted({f"{a} / {b}" for a, b in refused.values()}))
                + f"; logs containing a token: {len(results['auth']['logs_with_a_token'])}",
            ),
        )
    if results["replicas"] > 1:
        rows.insert(1, ("operator replicas (Kopf peering)", f"{results['replicas']}"))
        rows.append(
            (
                f"peering keep-alives in the steady state (lifetime {args.peering_lifetime_seconds} s)",
                f"{results['quiet_keepalives']:.0f}",
            )
        )
    if "takeover" in results:
        taken = results["takeover"]
        rows.append(
            (
                "leader SIGKILLed halfway: a standby reconciles after",
                f"{taken['seconds']:.1f} s ({taken['successor']}); Deployments before / after "
                f"{results['deployments']['before']} / {results['deployments']['after']}",
            )
        )
    return "\n".join(["| Measure | Result |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)])


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--minutes", type=float, default=10, help="traffic duration measured (default 10)")
    p.add_argument("--policies", type=int, default=3, help="DecisionPolicies, each with its runtime (default 3)")
    p.add_argument("--pause", type=float, default=0.05, help="pause between requests of one target (default 0.05)")
    p.add_argument("--resync-seconds", type=float, default=15, help="the operator's resync interval (default 15)")
    p.add_argument("--warmup-seconds", type=float, default=30, help="traffic before the first sample (default 30)")
    p.add_argument("--sample-seconds", type=float, default=10, help="RSS sampling interval (default 10)")
    p.add_argument("--settle-seconds", type=float, default=30, help="after traffic, before the quiet window")
    p.add_argument("--quiet-seconds", type=float, default=60, help="the steady-state window (default 60)")
    p.add_argument("--replicas", type=int, default=1, help="operator processes; more than 1: Kopf's peering")
    p.add_argument("--takeover", action="store_true", help="with --replicas > 1: SIGKILL the leader halfway")
    p.add_argument(
        "--peering-lifetime-seconds", type=int, default=15, help="with --replicas > 1: a keep-alive's lifetime"
    )
    p.add_argument(
        "--auth",
        action="store_true",
        help="runtimes require bearer tokens (spec.auth's default, a labelled Secret per object); traffic sends them",
    )
    p.add_argument("--json", type=Path, help="also write the raw results here")
    p.add_argument("--short", action="store_true", help="the test suite's minute: " + " ".join(SHORT))
    p.add_argument("--keep", action="store_true", help="keep the control plane's work dir and the logs")
    return p


# The short mode the test suite runs (tests/integration/ha/test_soak.py): about a minute of traffic and quiet.
SHORT = ["--minutes=0.75", "--policies=2", "--resync-seconds=5", "--warmup-seconds=5", "--sample-seconds=5",
         "--settle-seconds=20", "--quiet-seconds=15"]  # fmt: skip


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    args = parser().parse_args(argv)
    if args.short:
        args = parser().parse_args([*SHORT, *(argv or sys.argv[1:])])
    if args.replicas < 1:
        parser().error(f"--replicas must be at least 1, not {args.replicas}")
    if args.takeover and args.replicas < 2:
        parser().error("--takeover needs --replicas 2 or more: a standby to take over")
    return args


def main() -> int:
    args = parse()
    with cluster(args.keep) as (kubeconfig, kubectl), tempfile.TemporaryDirectory(prefix="croupier-soak-") as tmp:
        work = Path(tmp)
        try:
            results = run(args, kubeconfig, kubectl, work)
        finally:
            if args.keep:
                kept = Path(tempfile.mkdtemp(prefix="croupier-soak-logs-"))
                for log in work.glob("*.log"):
                    (kept / log.name).write_bytes(log.read_bytes())
                print(f"logs kept in {kept}")
    print(f"soak on {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    problems = failed(results)
    for problem in problems:
        print(f"FAILED: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
