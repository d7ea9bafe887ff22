"""The embedded demo: Croupier end to end on one machine, without Docker or a cloud.

1. starts the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) and a Redis server;
2. installs the CRDs and runs the operator as a process, exactly as it runs in a cluster;
3. applies the DecisionPolicies in examples/; kwok runs their pods as fakes, so the demo runs each policy's runtime
   as a local process from the very ConfigMap the operator rendered (the file a pod would mount);
4. sends simulated traffic (decisions, and rewards drawn from hidden click rates) and shows `kubectl get croupier`
   and the per-arm table in `status` while the policies learn;
5. ModelDeployment (routing mode VersionLabels): writes real SavedModel versions, serves them with the local model
   server behind two model router processes (one per router pod, fed the routing table the operator writes), walks a
   canary through its steps under simulated Predict traffic through the routers (`kubectl get md`; the analysis adds
   up both routers' per-version counters), then rolls a failing version back automatically.
6. Experiments (``run_experiments``, about 40 s more): an A/B/n where one variant truly converts better (`kubectl get
   exp` shows the exposures, the p-values falling and the winner) and an A/B whose treatment loses 30% of its
   exposures (SampleRatioMismatch); their runtimes run from their rendered ConfigMaps like the policies'. The demo
   fails unless social-login is the winner and checkout-split shows SampleRatioMismatch.

    python hack/demo.py [--dir .demo] [--seconds 40] [--keep]      # `make demo`
    python hack/demo.py --dir .demo --down                         # stop what --keep left running
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from croupier.devcluster.dispatcher import LoopbackDispatcher
from croupier.devcluster.modelrouter import router_command

ROOT = Path(__file__).resolve().parents[1]
NAMESPACE = "demo"
SCORED_EXAMPLE = ROOT / "examples" / "decisionpolicy-scored.yaml"  # needs the ModelDeployment: applied in its part
POLICY_EXAMPLES = sorted(p for p in (ROOT / "examples").glob("decisionpolicy-*.yaml") if p != SCORED_EXAMPLE)


# Bold headings on a terminal only: a log file or a pipe gets plain text, not escape codes.
BOLD, PLAIN = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


def say(message: str) -> None:
    print(f"\n{BOLD}==> {message}{PLAIN}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _exited(pid: int) -> bool:
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)  # our child (this run): reap it, or it lingers as a zombie
        return reaped == pid
    except ChildProcessError:  # not our child (a --keep run stopped by --down)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False


def stop_group(pid: int, timeout: float = 15) -> bool:
    """SIGTERM a process group and wait until its leader has exited (SIGKILL after ``timeout``); False if none."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline, killed = time.monotonic() + timeout, False
    while not _exited(pid):
        if time.monotonic() > deadline:
            if killed:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            deadline, killed = time.monotonic() + 5, True
        time.sleep(0.05)
    return True


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.dir = workdir.resolve()
        self.cluster_dir = self.dir / "cluster"
        self.kubeconfig = self.cluster_dir / "kubeconfig"
        self.pids_file = self.dir / "pids.json"
        self.bin_dir = Path(
            subprocess.check_output([sys.executable, "-m", "croupier.devcluster", "build"], text=True)
            .strip()
            .splitlines()[-1]
        )
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "PATH": f"{self.bin_dir}:{os.environ['PATH']}"}

    # -- processes ------------------------------------------------------------------------------------------------
    def spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.dir / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env or self.env, cwd=ROOT, start_new_session=True
        )
        pids = json.loads(self.pids_file.read_text()) if self.pids_file.exists() else {}
        pids[name] = proc.pid
        self.pids_file.write_text(json.dumps(pids))
        return proc

    def kubectl(self, *args: str, check: bool = True, capture: bool = False) -> str:
        out = subprocess.run(
            [str(self.bin_dir / "kubectl"), *args], env=self.env, check=check, text=True, capture_output=capture
        )
        return out.stdout if capture else ""

    def down(self) -> None:
        # Reverse start order, each gone before the next: the runtimes (they write to Redis) and the operator (it
        # probes the runtimes) stop before Redis, and all of them before the control plane.
        if self.pids_file.exists():
            for name, pid in reversed(json.loads(self.pids_file.read_text()).items()):
                if stop_group(pid):
                    print(f"stopped {name} (pid {pid})")
            self.pids_file.unlink()
        subprocess.run(
            [sys.executable, "-m", "croupier.devcluster", "down", "--dir", str(self.cluster_dir)], check=False
        )

    # -- steps ------------------------------------------------------------------------------------------------------
    def start_cluster(self) -> None:
        say("Starting the local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        subprocess.run(
            [sys.executable, "-m", "croupier.devcluster", "up", "--dir", str(self.cluster_dir), "--detach"], check=True
        )
        self.kubectl("get", "nodes")

    def start_redis(self) -> str:
        port = free_port()
        redis = shutil.which("redis-server")
        if redis is None:
            raise SystemExit("demo: redis-server is missing (make bootstrap installs it)")
        (self.dir / "redis").mkdir(exist_ok=True)
        self.spawn(
            "redis",
            [
                redis,
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir / "redis"),
            ],
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return f"redis://127.0.0.1:{port}/0"
            except OSError:
                time.sleep(0.1)
        raise SystemExit("demo: redis-server did not start")

    def install(self) -> None:
        say("Installing the CRDs")
        self.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", "--timeout=60s")
        self.kubectl("create", "namespace", NAMESPACE, check=False, capture=True)
        # This control plane has no storage provisioner: provide volumes the way a cluster admin would, so that
        # the PersistentVolumeClaims of policies with embedded state bind (kube-controller-manager binds them).
        volumes = [
            {
                "apiVersion": "v1",
                "kind": "PersistentVolume",
                "metadata": {"name": f"croupier-demo-{i}"},
                "spec": {
                    "capacity": {"storage": "1Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "hostPath": {"path": str(self.dir / "volumes" / str(i))},
                },
            }
            for i in range(len(POLICY_EXAMPLES))
        ]
        self.kubectl_apply({"apiVersion": "v1", "kind": "List", "items": volumes})

    def kubectl_apply(self, manifest: dict[str, Any], *, quiet: bool = False) -> None:
        subprocess.run(
            [str(self.bin_dir / "kubectl"), "apply", "-f", "-"],
            input=json.dumps(manifest),
            text=True,
            env=self.env,
            check=True,
            stdout=subprocess.DEVNULL if quiet else None,
        )

    def start_operator(self, runtime_url_template: str, extra: dict[str, str] | None = None) -> None:
        say("Starting the operator (croupier-operator)")
        env = {
            **(extra or {}),
            **self.env,
            "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": runtime_url_template,
            "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": "3",
            "CROUPIER_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "0",
            "CROUPIER_OPERATOR_LOG_FORMAT": "console",
            "CROUPIER_OPERATOR_METRICS_PORT": "0",
        }
        self.spawn("operator", [sys.executable, "-m", "croupier.operator.cli"], env=env)

    def policy_manifest(self, name: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            out = self.kubectl(
                "get",
                "configmap",
                "-n",
                NAMESPACE,
                "-l",
                f"croupier.dev/policy={name}",
                "-o",
                "json",
                check=False,
                capture=True,
            )
            items = json.loads(out or "{}").get("items", [])
            if items and "policy.yaml" in items[0].get("data", {}):
                return str(items[0]["data"]["policy.yaml"])
            time.sleep(0.5)
        raise SystemExit(
            f"demo: the operator rendered no ConfigMap for {name} in {timeout:.0f}s (see {self.dir}/logs/operator.log)"
        )

    def start_runtime(self, name: str, port: int, redis_url: str | None) -> str:
        manifest = self.policy_manifest(name)
        policy_file = self.dir / "policies" / f"{name}.yaml"
        policy_file.parent.mkdir(exist_ok=True)
        policy_file.write_text(manifest)
        argv = [
            sys.executable,
            "-m",
            "croupier.runtime.cli",
            "--policy",
            str(policy_file),
            "--port",
            str(port),
            "--state-dir",
            str(self.dir / "state" / name),
        ]
        if redis_url:
            argv += ["--redis-url", redis_url]
        self.spawn(f"runtime-{name}", argv)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    return url
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise SystemExit(f"demo: runtime of {name} did not get ready (see {self.dir}/logs/runtime-{name}.log)")


class Traffic:
    """Simulated users: each arm has a hidden reward rate (or a hidden linear model) the policy must discover."""

    def __init__(self, url: str, spec: dict[str, Any], seed: int) -> None:
        self.client = httpx.Client(base_url=url, timeout=5)
        self.rng = np.random.default_rng(seed)
        self.arms = [a["name"] for a in spec["arms"]]
        self.features: list[str] = (spec.get("context") or {}).get("features") or []
        self.binary = (spec.get("reward") or {}).get("type", "Binary") == "Binary"
        self.rates = dict(
            zip(self.arms, np.linspace(0.02, 0.12, len(self.arms))[self.rng.permutation(len(self.arms))], strict=True)
        )
        self.weights = {a: self.rng.normal(0, 1, len(self.features)) for a in self.arms}

    def step(self, n: int) -> None:
        rewards = []
        for _ in range(n):
            body: dict[str, Any] = {"unitId": f"user-{self.rng.integers(1_000_000)}"}
            x = self.rng.uniform(-1, 1, len(self.features))
            if self.features:
                body["context"] = {f: float(v) for f, v in zip(self.features, x, strict=True)}
            decision = self.client.post("/v1/decide", json=body).json()
            arm = decision["arm"]
            if self.features and self.binary:  # a click whose chance follows the hidden linear model
                reward = float(self.rng.random() < 1 / (1 + np.exp(-(self.weights[arm] @ x))))
            elif self.features:
                reward = float(self.weights[arm] @ x + self.rng.normal(0, 0.1))
            else:
                reward = float(self.rng.random() < self.rates[arm])
            rewards.append({"decisionId": decision["decisionId"], "reward": reward})
        for start in range(0, len(rewards), 200):
            self.client.post("/v1/rewards", json={"rewards": rewards[start : start + 200]}).raise_for_status()


def ranking_demo(traffic: list[Traffic], slates: int = 2000, k: int = 3) -> None:
    """Rankings (POST /v1/rank) through the Python SDK on the first non-contextual policy: one slate with each
    position's conditional propensity, then the top position's frequencies beside the propensities the runtime
    returned, and a click per position rewarded by that position's decisionId."""
    from croupier.client import Client  # noqa: PLC0415  (the demo's other parts need no SDK)

    plain = next(t for t in traffic if not t.features)
    say(f"Rankings: {slates} slates of {k} arms from {plain.client.base_url} with the Python SDK (croupier.client)")
    with Client(str(plain.client.base_url)) as client:
        first = client.rank("user-1", k=k)
        for position in first.slate:
            vector = ", ".join(f"{arm}={p:.3f}" for arm, p in position.probabilities.items())
            arm, propensity = position.arm, position.propensity
            print(f"   position {position.position}: {arm:<14} propensity {propensity:.3f}  ({vector})")
        top: dict[str, int] = {}
        expected: dict[str, float] = {}
        clicks = []
        rng = np.random.default_rng(11)
        for i in range(slates):
            answer = client.rank(f"user-{i}", k=k)
            head = answer.slate[0]
            top[head.arm] = top.get(head.arm, 0) + 1
            for arm, p in head.probabilities.items():
                expected[arm] = expected.get(arm, 0.0) + p
            for position in answer.slate:  # position bias: lower positions are seen less
                seen = 1.0 / position.position
                clicks.append((position, float(rng.random() < seen * plain.rates[position.arm] * 3)))
        stored = client.rewards(clicks)
    print(f"   {'arm':<16}{'top position':>14}{'expected':>10}")
    for arm in sorted(expected, key=lambda a: -expected[a]):
        print(f"   {arm:<16}{top.get(arm, 0):>14}{expected[arm]:>10.1f}")
    accepted = 0 if stored is None else stored.accepted
    print(f"   {accepted} position rewards accepted (each position is a logged decision with its own propensity)")


MD_STEPS = [{"weight": 20, "pauseSeconds": 10}, {"weight": 50, "pauseSeconds": 10}, {"weight": 100, "pauseSeconds": 10}]
MD_ANALYSIS = {"intervalSeconds": 10, "minRequests": 10, "maxErrorRate": 0.05, "failureLimit": 0}
MD_FAILING_VERSION = 3
MD_REPLICAS = 2  # two router pods: the analysis adds up both routers' counters
ROUTER_SELECTOR = "app.kubernetes.io/name=croupier-model-router,app.kubernetes.io/instance=ranker"
KUBELET_SYNC_SECONDS = 60.0  # the kubelet's --sync-frequency: a ConfigMap volume refreshes at least this often


class ModelDemo:
    """The ModelDeployment part, in routing mode VersionLabels: one local model server process plays the TF Serving pods
    (both versions, labels stable/canary) and one `croupier-modelrouter` process (the compiled router a router pod runs)
    per router pod plays that pod (kwok pods run nothing). The demo plays the kubelet: it copies the model config
    ConfigMap into the file the model server polls, and the routing table ConfigMap into the routers' routing file
    whenever a router pod object changes (the operator annotates them after each table change; any pod update makes the
    kubelet refresh its volumes) or once per kubelet sync period. The operator reaches the model server through
    CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE and each router pod's counters through
    CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE, which names the pod: the demo's LoopbackDispatcher sends
    /<namespace>/<pod>/metrics to that pod's router process. ``bring_up`` runs in the background while the
    DecisionPolicy part runs: it waits for the SavedModels, applies ranker with its stable version only and starts the
    model server (TensorFlow's start is most of the cost) and the routers, so the canary part begins with a Ready
    model."""

    def __init__(self, demo: Demo) -> None:
        self.demo = demo
        self.base = demo.dir / "models" / "ranker"
        self.config = demo.dir / "models" / "models.config"
        self.monitoring = demo.dir / "models" / "monitoring.config"
        self.routing = demo.dir / "models" / "routing" / "routing.yaml"
        self.host = "127.0.0.1"
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.rest_url = f"http://{self.host}:{self.rest_port}"
        self.routers: dict[str, tuple[str, int]] = {}  # router pod -> (its REST URL, its gRPC port)
        self.stop = threading.Event()
        self.writers: list[subprocess.Popen[bytes]] = []
        self.failure: BaseException | None = None
        self.ready = threading.Event()
        self.pods_seen: tuple[tuple[str, str], ...] = ()
        self.routing_synced = 0.0
        self.routing_copies = 0

    def operator_env(self, stats_router: LoopbackDispatcher) -> dict[str, str]:
        metrics = stats_router.url_template("pod", "/metrics")
        return {
            "CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE": f"{self.host}:{self.grpc_port}",
            "CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE": metrics,
        }

    def start_writing(self) -> None:
        """Write SavedModel versions 1, 2 (rankers) and 3 (fails half its inputs) with TensorFlow, in the background
        while the rest of the demo runs (``wait_written``)."""
        shutil.rmtree(self.base, ignore_errors=True)
        self.base.mkdir(parents=True)
        extra = {1: [], 2: [], MD_FAILING_VERSION: ["--weights-version", "1", "--error-fraction", "0.5"]}
        env = {**self.demo.env, "TF_CPP_MIN_LOG_LEVEL": "2"}
        self.writers = [
            self.demo.spawn(
                f"savedmodel-{v}",
                [sys.executable, "-m", "croupier.modelserver.savedmodels", str(self.base), str(v), *args],
                env=env,
            )
            for v, args in extra.items()
        ]

    def wait_written(self) -> None:
        if any(w.wait(timeout=300) != 0 for w in self.writers):
            raise SystemExit(f"demo: writing a SavedModel failed (see {self.demo.dir}/logs/savedmodel-*.log)")

    # -- the kubelet's part ---------------------------------------------------------------------------------------
    def objects(self) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        """ranker's ConfigMaps by name and its router pods, in one read."""
        out = self.demo.kubectl(
            "get", "configmap,pod", "-n", NAMESPACE, "-l", "app.kubernetes.io/instance=ranker", "-o", "json",
            check=False, capture=True,
        )  # fmt: skip
        items = json.loads(out or "{}").get("items") or []
        configmaps = {i["metadata"]["name"]: i for i in items if i["kind"] == "ConfigMap"}
        routers = [
            i for i in items
            if i["kind"] == "Pod" and i["metadata"]["labels"].get("app.kubernetes.io/name") == "croupier-model-router"
        ]  # fmt: skip
        return configmaps, routers

    def sync(self) -> tuple[bool, list[str]]:
        """Copy the model config (always) and the routing table (when a router pod changed, or once per sync period)
        into the files the processes read; returns whether the model config exists, and the router pods' names."""
        configmaps, pods = self.objects()
        models = (configmaps.get("ranker-models") or {}).get("data", {}).get("models.config")
        if models is not None and (not self.config.exists() or self.config.read_text() != models):
            _write_atomically(self.config, models)
        seen = tuple(sorted((p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in pods))
        table = (configmaps.get("ranker-routing") or {}).get("data", {}).get("routing.yaml")
        due = seen != self.pods_seen or time.monotonic() - self.routing_synced >= KUBELET_SYNC_SECONDS
        if table is not None and due:
            self.pods_seen, self.routing_synced = seen, time.monotonic()
            if not self.routing.exists() or self.routing.read_text() != table:
                _write_atomically(self.routing, table)
                self.routing_copies += 1
        return models is not None, sorted(
            p["metadata"]["name"] for p in pods if not p["metadata"].get("deletionTimestamp")
        )

    def _kubelet(self) -> None:
        while not self.stop.wait(0.5):
            with contextlib.suppress(Exception):  # a failed read is retried on the next tick, as the kubelet does
                self.sync()

    # -- bring-up (background) -------------------------------------------------------------------------------------
    def start_bring_up(self, stats_router: LoopbackDispatcher) -> None:
        def run() -> None:
            try:
                self.bring_up(stats_router)
            except BaseException as error:  # handed to the main thread by wait_ready
                self.failure = error
            finally:
                self.ready.set()

        threading.Thread(target=run, daemon=True).start()

    def wait_ready(self, timeout: float = 300) -> None:
        if not self.ready.wait(timeout):
            raise SystemExit(f"demo: the model server and routers did not start in {timeout:.0f}s")
        if self.failure is not None:
            raise self.failure

    def bring_up(self, stats_router: LoopbackDispatcher) -> None:
        # The model server process starts first, with an empty model config (TensorFlow's import is most of a minute
        # on a busy 2-core machine); the ModelDeployment is applied once it listens, so the operator's first
        # GetModelStatus finds a server that does not know the model yet (VersionLoading), and the kubelet's copy of
        # the operator's model config makes it load version 1.
        self.config.parent.mkdir(parents=True, exist_ok=True)
        _write_atomically(self.config, "model_config_list {\n}\n")
        self.monitoring.write_text('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
        argv = [
            sys.executable, "-m", "croupier.modelserver", f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}", f"--host={self.host}", f"--model_config_file={self.config}",
            "--model_config_file_poll_wait_seconds=1", f"--monitoring_config_file={self.monitoring}",
        ]  # fmt: skip
        self.demo.spawn("modelserver", argv, env={**self.demo.env, "TF_CPP_MIN_LOG_LEVEL": "2"})
        self.wait_written()
        deadline = time.monotonic() + 240
        while not _listening(self.host, self.grpc_port):
            if time.monotonic() > deadline:
                raise SystemExit(f"demo: the model server did not start (see {self.demo.dir}/logs/modelserver.log)")
            time.sleep(0.5)
        self.apply(None)
        self.routing.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + 60
        while not (found := self.sync())[0] or len(found[1]) < MD_REPLICAS:
            if time.monotonic() > deadline:
                raise SystemExit("demo: the operator rendered no model config or router pods for ranker")
            time.sleep(0.5)
        threading.Thread(target=self._kubelet, daemon=True).start()
        for pod in found[1][:MD_REPLICAS]:
            rest, grpc = free_port(), free_port()
            self.demo.spawn(
                f"router-{pod}",
                [
                    *router_command(), f"--host={self.host}",
                    f"--rest-port={rest}", f"--grpc-port={grpc}", f"--upstream-rest={self.rest_url}",
                    f"--upstream-grpc={self.host}:{self.grpc_port}", f"--routing-file={self.routing}",
                    "--log-level=warning",
                ],
            )  # fmt: skip
            self.routers[pod] = (f"http://{self.host}:{rest}", grpc)
            stats_router.routes[f"{NAMESPACE}/{pod}"] = self.routers[pod][0]
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.rest_url}/v1/models/ranker", timeout=1).status_code == 200 and all(
                    httpx.get(f"{url}/metrics", timeout=1).status_code == 200 for url, _ in self.routers.values()
                ):
                    return
            time.sleep(0.5)
        raise SystemExit(f"demo: the model or a router did not get ready (see {self.demo.dir}/logs/)")

    def apply(self, canary_version: int | None) -> None:
        spec: dict[str, Any] = {
            "model": {"name": "ranker", "storageUri": f"file://{self.base}"},
            "stable": {"version": 1},
            "routing": {"mode": "VersionLabels"},
            "serving": {"replicas": MD_REPLICAS},
        }
        if canary_version is not None:
            spec["canary"] = {"version": canary_version, "steps": MD_STEPS, "analysis": MD_ANALYSIS}
        manifest = {"apiVersion": "croupier.dev/v1alpha1", "kind": "ModelDeployment"}
        body = {**manifest, "metadata": {"name": "ranker", "namespace": NAMESPACE}, "spec": spec}
        self.demo.kubectl_apply(body, quiet=canary_version is None)  # the first apply runs in the background

    def status(self) -> dict[str, Any]:
        out = self.demo.kubectl("get", "md", "ranker", "-n", NAMESPACE, "-o", "json", capture=True)
        found: dict[str, Any] = json.loads(out).get("status") or {}
        return found

    def traffic_until(self, done: Any, timeout: float) -> dict[str, Any]:
        """Predict requests that name no version, spread over the router pods as their Service would spread them,
        until ``done(status)``; `kubectl get md` as the weight moves, with the split the routers served."""
        rng = np.random.default_rng(11)
        urls = [url for url, _ in self.routers.values()]
        shown: Any = None
        served: dict[str, int] = {}
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                for i in range(20):
                    body = {"instances": [{"context": rng.random(4).tolist(), "arms": rng.random((2, 4)).tolist()}]}
                    with contextlib.suppress(httpx.HTTPError):
                        answer = client.post(f"{urls[i % len(urls)]}/v1/models/ranker:predict", json=body)
                        version = answer.headers.get("x-croupier-model-version", "?")
                        served[version] = served.get(version, 0) + 1
                    time.sleep(0.02)
                status = self.status()
                now = (
                    status.get("canaryWeight"),
                    status.get("currentStep"),
                    (status.get("rollout") or {}).get("state"),
                )
                if now != shown:
                    if shown is not None:
                        split = ", ".join(f"version {v}: {n}" for v, n in sorted(served.items()))
                        print(f"   the routers served {split} meanwhile")
                    shown, served = now, {}
                    self.demo.kubectl("get", "md", "-n", NAMESPACE)
                if done(status):
                    return status
        raise SystemExit(f"demo: the ModelDeployment did not get there in {timeout:.0f}s; status {self.status()}")


def _listening(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text)
    staged.replace(path)  # as the kubelet swaps a volume's ..data link


def model_deployment_demo(models: ModelDemo, router: LoopbackDispatcher) -> None:
    """Canary steps under traffic through the routers, then a failing version rolled back automatically."""
    started = time.monotonic()
    say("ModelDeployment ranker (VersionLabels): the model server and two router pods' processes, started meanwhile")
    models.wait_ready()
    print(f"   {', '.join(sorted(p.name for p in models.base.iterdir()))} under {models.base}")
    for pod, (url, _) in models.routers.items():
        print(f"   router pod {pod}: croupier-modelrouter at {url}")
    models.demo.kubectl("wait", "md/ranker", "-n", NAMESPACE, "--for=condition=Ready", "--timeout=120s")
    models.demo.kubectl("get", "md", "-n", NAMESPACE)
    say("Applying canary 2 in steps 20% / 50% / 100% with analysis every 10 s of both routers' per-version counters")
    models.apply(2)
    say("Sending Predict traffic that names no version through the routers; they split it by the live weight")
    models.traffic_until(lambda s: (s.get("rollout") or {}).get("state") == "Complete", timeout=120)
    analyses = ((models.status().get("rollout") or {}).get("analyses") or [])[-3:]
    for a in analyses:
        print(f"   interval at weight {a.get('weight')}: {a.get('requests')} canary requests, {a.get('result')}")
    say(f"Applying a failing canary (version {MD_FAILING_VERSION}: half its answers are TensorFlow errors)")
    models.apply(MD_FAILING_VERSION)
    rolled = models.traffic_until(lambda s: (s.get("rollout") or {}).get("state") == "RolledBack", timeout=90)
    rollback = (rolled.get("rollout") or {}).get("rollback") or {}
    print(f"   rolled back version {rollback.get('version')}: {rollback.get('reason')}")
    print(
        f"   the routers' table was refreshed {models.routing_copies} times, each after the operator touched the pods"
    )
    models.demo.kubectl("get", "events", "-n", NAMESPACE, "--field-selector", "involvedObject.kind=ModelDeployment")
    scored_policy_demo(models, router)
    print(f"   the ModelDeployment part took {time.monotonic() - started:.0f}s")
    models.stop.set()


def scored_policy_demo(models: ModelDemo, router: LoopbackDispatcher) -> None:
    """A DecisionPolicy whose arms the ranker scores: one Predict per decision, InverseGap over the scores."""
    demo, name = models.demo, "scored-offers"
    say(f"Applying {SCORED_EXAMPLE.name}: the ModelDeployment ranker scores the arms of every decision")
    demo.kubectl("apply", "-n", NAMESPACE, "-f", str(SCORED_EXAMPLE))
    deadline = time.monotonic() + 60
    while "scoring" not in (document := yaml.safe_load(demo.policy_manifest(name))):
        if time.monotonic() > deadline:
            raise SystemExit("demo: the operator did not render the model's address into the runtime's config")
        time.sleep(0.5)
    print(f"   the operator rendered the model into the runtime's config: {document['scoring']}")
    _, grpc_port = next(iter(models.routers.values()))
    document["scoring"]["address"] = f"{models.host}:{grpc_port}"  # a router process plays the model's Service
    policy_file = demo.dir / "policies" / f"{name}.yaml"
    policy_file.write_text(yaml.safe_dump(document))
    port = free_port()
    argv = [sys.executable, "-m", "croupier.runtime.cli", "--policy", str(policy_file), "--port", str(port)]
    demo.spawn(f"runtime-{name}", [*argv, "--state-dir", str(demo.dir / "state" / name)])
    url = f"http://127.0.0.1:{port}"
    router.routes[f"{NAMESPACE}/{name}"] = url
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        time.sleep(0.2)
    traffic = Traffic(url, document["spec"], seed=21)
    for _ in range(10):
        traffic.step(50)
    stats = httpx.get(f"{url}/v1/stats", timeout=5).json()["scoring"]
    print(f"   500 decisions: model version {stats['modelVersion']}, fallbacks {stats['fallbacks'] or 'none'}")
    time.sleep(4)  # one more status refresh
    demo.kubectl("get", "dp", name, "-n", NAMESPACE, "-o", "jsonpath={.status.scoring}")
    print()


# -- Experiments ------------------------------------------------------------------------------------------------------
EXPERIMENT_SALT = "demo-2026"


def experiment_manifest(name: str, variants: list[tuple[str, int]]) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "variants": [{"name": v, "weight": w, "payload": {"layout": v}} for v, w in variants],
            "control": variants[0][0],
            "assignment": {"unitKey": "userId", "salt": EXPERIMENT_SALT},
            "metric": {"name": "signup", "type": "Binary", "direction": "Increase"},
            "analysis": {"method": "Sequential", "minimumSamplesPerVariant": 300},
        },
    }


def start_experiment_runtime(demo: Demo, name: str, port: int, timeout: float = 60) -> str:
    """Play the kubelet for an Experiment: run `croupier-runtime --experiment` with its rendered ConfigMap."""
    deadline = time.monotonic() + timeout
    manifest = ""
    while not manifest and time.monotonic() < deadline:
        out = demo.kubectl(
            "get", "configmap", f"{name}-experiment", "-n", NAMESPACE, "-o", "json", check=False, capture=True
        )
        manifest = json.loads(out or "{}").get("data", {}).get("experiment.yaml", "")
        time.sleep(0 if manifest else 0.5)
    if not manifest:
        raise SystemExit(f"demo: the operator rendered no ConfigMap for experiment {name} (see logs/operator.log)")
    path = demo.dir / "experiments" / f"{name}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(manifest)
    # The Experiment is new in this run's cluster, so is its state: units remembered from an earlier run's epoch are
    # (rightly) not counted again in a new epoch, and would leave this run's experiment without exposures.
    state = demo.dir / "state" / f"experiment-{name}"
    shutil.rmtree(state, ignore_errors=True)
    state.mkdir(parents=True)
    argv = [sys.executable, "-m", "croupier.runtime.cli", "--experiment", str(path), "--port", str(port)]
    demo.spawn(f"runtime-exp-{name}", [*argv, "--state-dir", str(state)])
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return url
        time.sleep(0.2)
    raise SystemExit(f"demo: the runtime of experiment {name} did not get ready (see logs/runtime-exp-{name}.log)")


def send_experiment_traffic(
    url: str, variants: list[tuple[str, int]], rates: dict[str, float], users: range, rng: np.random.Generator, *,
    drop: dict[str, float] | None = None,
) -> None:  # fmt: skip
    """Simulated users: an SDK assigns locally (the published hash) and reports exposures, then signups drawn from
    hidden per-variant rates; ``drop`` loses a share of one variant's exposures (a broken logging path)."""
    from croupier.api.assignment import assign  # noqa: PLC0415 - the demo's only use of the hash contract

    exposures, outcomes = [], []
    for i in users:
        unit = f"user-{i}"
        variant = assign(unit, EXPERIMENT_SALT, variants)
        if rng.random() < (drop or {}).get(variant, 0.0):
            continue
        exposures.append({"unitId": unit, "variant": variant})
        if rng.random() < rates[variant]:
            outcomes.append({"unitId": unit, "metric": "signup", "value": 1, "eventId": f"signup-{i}"})
    with httpx.Client(base_url=url, timeout=10) as client:
        for key, items in (("exposures", exposures), ("outcomes", outcomes)):
            for start in range(0, len(items), 1000):
                client.post(f"/v1/{key}", json={key: items[start : start + 1000]}).raise_for_status()


def run_experiments(demo: Demo, router: LoopbackDispatcher, rounds: int = 6) -> None:
    """An A/B/n where one variant truly wins, and an A/B with a broken split (SampleRatioMismatch); about 40 s."""
    abn = [("classic", 34), ("short-form", 33), ("social-login", 33)]
    ab = [("control", 50), ("treatment", 50)]
    rates = {"classic": 0.10, "short-form": 0.105, "social-login": 0.14, "control": 0.1, "treatment": 0.1}
    volumes = [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"croupier-demo-exp-{name}"},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(demo.dir / "volumes" / f"exp-{name}")},
                "claimRef": {"namespace": NAMESPACE, "name": f"{name}-experiment-state"},
            },
        }
        for name in ("signup-flow", "checkout-split")
    ]
    demo.kubectl_apply({"apiVersion": "v1", "kind": "List", "items": volumes})
    say("Experiments: an A/B/n (signup-flow, social-login truly converts better) and an A/B whose treatment loses 30% "
        "of its exposures on the way (checkout-split)")  # fmt: skip
    demo.kubectl_apply(experiment_manifest("signup-flow", abn))
    demo.kubectl_apply(experiment_manifest("checkout-split", ab))
    urls = {}
    for name in ("signup-flow", "checkout-split"):
        urls[name] = start_experiment_runtime(demo, name, free_port())
        router.routes[f"{NAMESPACE}/{name}"] = urls[name]
        print(f"   runtime of experiment {name} serves {urls[name]}")
    rng = np.random.default_rng(11)
    per_round = 1500
    for i in range(rounds):
        users = range(i * per_round, (i + 1) * per_round)
        send_experiment_traffic(urls["signup-flow"], abn, rates, users, rng)
        send_experiment_traffic(urls["checkout-split"], ab, rates, users, rng, drop={"treatment": 0.3})
        time.sleep(4)  # the operator's resync (3 s) reads the sums and writes the analysis
        out = demo.kubectl("get", "exp", "signup-flow", "-n", NAMESPACE, "-o", "json", check=False, capture=True)
        variants = (json.loads(out or "{}").get("status") or {}).get("variants") or []
        p_values = ", ".join(f"{v['name']}={v['pValue']:.2g}" for v in variants if v.get("pValue") is not None)
        print(
            f"   after {(i + 1) * per_round} users: p-values vs classic: {p_values or 'not yet (too little traffic)'}"
        )
        demo.kubectl("get", "exp", "-n", NAMESPACE, "-o", "wide")
    say("kubectl get exp signup-flow -n demo -o jsonpath='{.status.conditions[0].message}'")
    demo.kubectl("get", "exp", "signup-flow", "-n", NAMESPACE, "-o", "jsonpath={.status.conditions[0].message}")
    print()
    demo.kubectl("get", "exp", "checkout-split", "-n", NAMESPACE, "-o", "jsonpath={.status.conditions[0].message}")
    print()
    expect_experiment_results(demo, winner="social-login")


def experiment_problems(abn: dict[str, Any], split: dict[str, Any], winner: str) -> list[str]:
    """What is wrong with the two experiments' statuses: the A/B/n must have declared `winner`, the broken split must
    withhold results as SampleRatioMismatch."""

    def ready(status: dict[str, Any]) -> dict[str, Any]:
        return next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})

    problems = []
    if abn.get("winner") != winner:
        problems.append(
            f"signup-flow's winner is {abn.get('winner')!r}, expected {winner!r} "
            f"(Ready: {ready(abn).get('reason')}: {ready(abn).get('message')})"
        )
    if ready(split).get("reason") != "SampleRatioMismatch":
        problems.append(
            f"checkout-split's Ready reason is {ready(split).get('reason')!r}, expected SampleRatioMismatch "
            f"(srmPValue {split.get('srmPValue')}, "
            f"exposures {[v.get('exposures') for v in split.get('variants') or []]})"
        )
    return problems


def expect_experiment_results(demo: Demo, winner: str, timeout: float = 20) -> None:
    """Fail the demo unless the statuses show the expected winner and the SampleRatioMismatch, waiting a few of the
    operator's resyncs for the last round's traffic to be analysed."""
    deadline = time.monotonic() + timeout
    while True:
        statuses = []
        for name in ("signup-flow", "checkout-split"):
            out = demo.kubectl("get", "exp", name, "-n", NAMESPACE, "-o", "json", check=False, capture=True)
            statuses.append(json.loads(out or "{}").get("status") or {})
        problems = experiment_problems(*statuses, winner=winner)
        if not problems:
            say(f"Experiments as expected: signup-flow's winner is {winner}, checkout-split is SampleRatioMismatch")
            return
        if time.monotonic() > deadline:
            raise SystemExit("demo: experiments did not end as expected: " + "; ".join(problems))
        time.sleep(1)


@contextmanager
def running(demo: Demo, keep: bool) -> Iterator[None]:
    try:
        yield
    finally:
        if keep:
            say(f"Left running. KUBECONFIG={demo.kubeconfig}; stop with `make demo-down`")
        else:
            say("Stopping the demo")
            demo.down()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=ROOT / ".demo")
    parser.add_argument("--seconds", type=float, default=40, help="how long to send traffic")
    parser.add_argument(
        "--keep", action="store_true", default=os.environ.get("KEEP") == "1", help="leave everything running (KEEP=1)"
    )
    parser.add_argument("--down", action="store_true", help="stop what a --keep run left running")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    (args.dir / "logs").mkdir(exist_ok=True)
    demo = Demo(args.dir)
    if args.down:
        demo.down()
        return 0
    demo.down()  # a previous run's leftovers

    with ExitStack() as stack:
        stack.enter_context(running(demo, args.keep))
        models = ModelDemo(demo)
        models.start_writing()
        demo.start_cluster()
        redis_url = demo.start_redis()
        demo.install()
        specs = {yaml.safe_load(p.read_text())["metadata"]["name"]: p for p in POLICY_EXAMPLES}
        ports = {name: free_port() for name in specs}
        # The policies' and Experiments' Services and the router pods, on loopback: the operator's URL templates.
        routes = {f"{NAMESPACE}/{name}": f"http://127.0.0.1:{port}" for name, port in ports.items()}
        router = stack.enter_context(LoopbackDispatcher(routes, timeout=2))
        demo.start_operator(router.url_template("name"), models.operator_env(router))
        demo.kubectl(
            "create",
            "secret",
            "generic",
            "croupier-redis",
            "-n",
            NAMESPACE,
            f"--from-literal=url={redis_url}",
            check=False,
            capture=True,
        )

        say(f"Applying {', '.join(p.name for p in POLICY_EXAMPLES)} to namespace {NAMESPACE}")
        for path in POLICY_EXAMPLES:
            demo.kubectl("apply", "-n", NAMESPACE, "-f", str(path))
        traffic = []
        for seed, (name, path) in enumerate(specs.items()):
            spec = yaml.safe_load(path.read_text())["spec"]
            backend = (spec.get("state") or {}).get("backend", "Embedded")
            url = demo.start_runtime(name, ports[name], redis_url if backend == "Redis" else None)
            print(f"   runtime of {name} serves {url} (state: {backend})")
            traffic.append(Traffic(url, spec, seed))

        models.start_bring_up(router)  # the ModelDeployment's model server and routers start meanwhile
        say("Waiting for the policies to be Ready (kubectl wait --for=condition=Ready dp --all)")
        demo.kubectl("wait", "-n", NAMESPACE, "--for=condition=Ready", "dp", "--all", "--timeout=120s")
        demo.kubectl("get", "croupier", "-n", NAMESPACE)

        say(
            f"Sending simulated traffic for {args.seconds:.0f}s; the operator copies the runtimes' statistics "
            "into status"
        )
        end = time.monotonic() + args.seconds
        next_show = time.monotonic() + 10
        while time.monotonic() < end:
            for t in traffic:
                t.step(50)
            if time.monotonic() >= next_show:
                demo.kubectl("get", "dp", "-n", NAMESPACE)
                next_show += 10
        time.sleep(4)  # one more status refresh
        for t in traffic:
            if not t.features:
                hidden = ", ".join(f"{a}={r:.3f}" for a, r in t.rates.items())
                print(f"   hidden click rates: {hidden}")
        say("kubectl get croupier -n demo")
        demo.kubectl("get", "croupier", "-n", NAMESPACE, "-o", "wide")
        for name in specs:
            say(f"Per-arm status of dp/{name}")
            out = demo.kubectl("get", "dp", name, "-n", NAMESPACE, "-o", "json", capture=True)
            status = json.loads(out)["status"]
            print(f"   {'arm':<16}{'pulls':>8}{'rewards':>9}{'mean':>9}{'probability':>13}")
            for arm in status.get("arms", []):
                mean = "-" if arm.get("mean") is None else f"{arm['mean']:.3f}"
                prob = "-" if arm.get("probability") is None else f"{arm['probability']:.3f}"
                print(f"   {arm['name']:<16}{arm.get('pulls', 0):>8}{arm.get('rewards', 0):>9}{mean:>9}{prob:>13}")
            totals = status.get("totals", {})
            print(f"   totals: {totals}; best arm: {status.get('bestArm')}")
        ranking_demo(traffic)
        model_deployment_demo(models, router)
        run_experiments(demo, router)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
