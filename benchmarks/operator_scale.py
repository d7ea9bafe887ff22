"""How fast and how quiet is the DecisionPolicy operator on a real control plane?

    uv run python benchmarks/operator_scale.py [--runs 20] [--policies 200] [--steady-seconds 60]

Starts the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok), installs the
CRDs, runs the operator as a subprocess exactly as the tests do, and measures:

1. apply-to-Ready latency of one DecisionPolicy (p50/p95 over ``--runs`` sequential runs): from the create request to
   the first watch event showing Ready=True for generation 1;
2. ``--policies`` DecisionPolicies created at once (16 client threads): time until every one is Ready, and the
   operator's peak RSS (VmHWM of the process);
3. API writes during ``--steady-seconds`` of steady state once everything is Ready, counted three ways: the API
   server's count of mutating requests by the operator's ServiceAccount (an API Priority and Fairness FlowSchema that
   matches exactly those; Kopf's own patches and Events included), the operator's own write counter, and the
   resourceVersions of every DecisionPolicy and child. All must stay at 0 / unchanged.

The operator runs as production does: ``python -m croupier.operator.cli`` (the ``croupier-operator`` script) with a
token of the ``croupier-operator`` ServiceAccount bound to ``config/rbac``, default resync interval (15 s).

What Ready means here (read before quoting the numbers): kwok pods run no container, so a single local
``croupier-runtime`` process serves one policy at generation 1 and ``CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE`` points
every policy's stats probe at it. Every policy is created at generation 1, so each Ready is gated on exactly what
production gates it on (Deployment available with the current config hash, a successful ``GET /v1/stats`` reporting
the policy's generation) — but all probes hit the same runtime, whose table is the same for every policy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from kubernetes import client, config, watch

from croupier.devcluster import flags
from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.node import FakeNode
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for
from croupier.devcluster.writes import dispatched_writes, sum_metric, writes_flow_schema

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "croupier.dev", "v1alpha1", "decisionpolicies"
OPERATOR_NAMESPACE = "croupier-system"
WRITES_FLOW = "croupier-operator-writes"
WRITES_FLOW_SCHEMA = writes_flow_schema(WRITES_FLOW, "croupier-operator", OPERATOR_NAMESPACE)
# The same for the operator's single-object reads (GET; Kopf's list/watch excluded): reads the indexes could answer.
MANAGED = "app.kubernetes.io/managed-by=croupier-operator"
GETS_FLOW = "croupier-operator-gets"
GETS_FLOW_SCHEMA = writes_flow_schema(GETS_FLOW, "croupier-operator", OPERATOR_NAMESPACE)
GETS_FLOW_SCHEMA["spec"]["matchingPrecedence"] = 501
GETS_FLOW_SCHEMA["spec"]["rules"][0]["resourceRules"][0]["verbs"] = ["get"]
# --tracemalloc: the operator's entry point with tracemalloc started after its imports (tracing ~1,300 imports would
# take minutes) and a SIGUSR1 handler that writes a snapshot named by <dir>/label.
TRACEMALLOC_BOOTSTRAP = """
import signal, sys, tracemalloc
from pathlib import Path
out = Path(sys.argv[1])
def dump(*_):
    marker = out / "label"
    tracemalloc.take_snapshot().dump(str(out / (marker.read_text().strip() + ".tracemalloc")))
    marker.unlink()
signal.signal(signal.SIGUSR1, dump)
import croupier.operator.main
from croupier.operator.cli import main
tracemalloc.start(int(sys.argv[2]))
sys.argv = ["croupier-operator"]
raise SystemExit(main())
"""


def policy(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "red"}, {"name": "green"}],
            "algorithm": {"type": "EpsilonGreedy"},
            "state": {"persistence": {"enabled": False}},
        },
    }


def is_ready(body: dict[str, Any]) -> bool:
    generation = body["metadata"].get("generation")
    for condition in (body.get("status") or {}).get("conditions") or ():
        if condition.get("type") == "Ready":
            return bool(condition.get("status") == "True" and condition.get("observedGeneration") == generation)
    return False


class ReadyWatcher:
    """Records when each DecisionPolicy was first seen Ready (one watch over all namespaces, in a thread)."""

    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ready_at: dict[tuple[str, str], float] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self._stop = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                for event in self._watch.stream(
                    self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL, timeout_seconds=60
                ):
                    body = event["object"]
                    key = (body["metadata"]["namespace"], body["metadata"]["name"])
                    if event["type"] != "DELETED" and is_ready(body):
                        with self.changed:
                            self.ready_at.setdefault(key, time.perf_counter())
                            self.changed.notify_all()
                    if self._stop.is_set():
                        return

    def wait(self, keys: set[tuple[str, str]], timeout: float) -> float:
        deadline = time.perf_counter() + timeout
        with self.changed:
            while not keys <= self.ready_at.keys():
                left = deadline - time.perf_counter()
                if left <= 0:
                    missing = len(keys - self.ready_at.keys())
                    raise TimeoutError(f"{missing} of {len(keys)} policies not Ready after {timeout:.0f}s")
                self.changed.wait(min(left, 1.0))
            return max(self.ready_at[k] for k in keys)

    def forget(self, key: tuple[str, str]) -> None:
        with self.lock:
            self.ready_at.pop(key, None)

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()


@dataclass
class Operator:
    env: dict[str, str]
    log: Path
    metrics_port: int
    liveness_port: int
    tracemalloc_dir: Path | None = None
    tracemalloc_frames: int = 4
    process: subprocess.Popen[bytes] | None = None
    phase: str = "start"
    rss_by_phase: dict[str, float] = field(default_factory=dict)
    """Highest VmRSS seen in each phase (sampled every 0.2 s), MiB."""
    peak_phase: str = ""
    sockets_by_phase: dict[str, int] = field(default_factory=dict)
    """Most open sockets (API connections, watches, probes, listeners) seen in each phase."""
    _sampling: threading.Event = field(default_factory=threading.Event)

    def command(self) -> list[str]:
        if self.tracemalloc_dir is None:
            return [sys.executable, "-m", "croupier.operator.cli"]
        # Profiling: the same entry point with tracemalloc on; each SIGUSR1 writes a snapshot.
        return [sys.executable, "-c", TRACEMALLOC_BOOTSTRAP, str(self.tracemalloc_dir), str(self.tracemalloc_frames)]

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.command(),
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1, trust_env=False).is_success,
            timeout=60,
            what="operator liveness",
        )
        threading.Thread(target=self._sample_rss, daemon=True).start()

    def enter(self, phase: str) -> None:
        self.phase = phase

    def _sample_rss(self) -> None:
        while not self._sampling.wait(0.2):
            with contextlib.suppress(OSError, ValueError):
                rss, phase = self.rss_mib(), self.phase
                if rss > self.rss_by_phase.get(phase, 0.0):
                    self.rss_by_phase[phase] = rss
                if rss >= max(self.rss_by_phase.values()):
                    self.peak_phase = phase
                self.sockets_by_phase[phase] = max(self.sockets_by_phase.get(phase, 0), self.sockets())

    def sockets(self) -> int:
        assert self.process is not None
        fds = Path(f"/proc/{self.process.pid}/fd")
        return sum(1 for fd in fds.iterdir() if os.readlink(fd).startswith("socket:"))

    def snapshot(self, label: str) -> None:
        """Profiling only: have the operator write a tracemalloc snapshot now (``<dir>/<label>.tracemalloc``)."""
        if self.tracemalloc_dir is None or self.process is None:
            return
        marker = self.tracemalloc_dir / "label"
        marker.write_text(label)
        self.process.send_signal(signal.SIGUSR1)
        wait_for(lambda: not marker.exists(), timeout=120, what=f"tracemalloc snapshot {label}")

    def peak_rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def cpu_seconds(self) -> float:
        assert self.process is not None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def writes(self) -> float:
        return self.metric("croupier_operator_api_writes_total")

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5, trust_env=False).text
        return sum_metric(text, name, labels)

    def stop(self) -> None:
        self._sampling.set()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(2)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[index]


@contextlib.contextmanager
def cluster(keep: bool, controller_manager_qps: int | None = None) -> Iterator[tuple[Path, Kubectl]]:
    external = os.environ.get("CROUPIER_KUBECONFIG")
    if external:
        kubeconfig = Path(external)
        yield kubeconfig, Kubectl(binary=Path(os.environ.get("KUBECTL", "kubectl")), kubeconfig=kubeconfig)
        return
    if controller_manager_qps:
        # Diagnosis only: lift kube-controller-manager's client rate limit (default 20 requests/s, burst 30), which
        # paces the Deployment -> ReplicaSet -> Pod -> status chain of a burst of new policies.
        default_flags = flags.kube_controller_manager
        qps = controller_manager_qps

        def lifted(*args: Any, **kwargs: Any) -> list[str]:
            return [*default_flags(*args, **kwargs), f"--kube-api-qps={qps}", f"--kube-api-burst={qps * 3 // 2}"]

        flags.kube_controller_manager = lifted  # type: ignore[assignment]
    # Room for every policy's pod plus the latency runs' pods still terminating.
    with ControlPlane(node=FakeNode(pods="1000"), keep=keep) as plane:
        yield plane.kubeconfig, Kubectl(binary=plane.binaries.path("kubectl"), kubeconfig=plane.kubeconfig)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def control_plane_cpu_seconds(exclude: set[int]) -> dict[str, float]:
    """CPU time of this process's other children (etcd, the API server, controllers, scheduler, kwok), by name."""
    me = str(os.getpid())
    found: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in exclude:
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = (entry / "stat").read_text()
            if stat.rpartition(")")[2].split()[1] == me:
                name = stat[stat.index("(") + 1 : stat.rindex(")")]
                found[name] = found.get(name, 0.0) + _cpu_seconds(int(entry.name))
    return found


def last_child_created(kubectl: Kubectl) -> float:
    found = kubectl.json(
        "get", "configmaps,deployments,services,poddisruptionbudgets", "-n", "bench-scale", "-l", MANAGED
    )
    stamps = [i["metadata"]["creationTimestamp"] for i in found["items"]]
    return max(datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() for s in stamps)


def children_versions(kubectl: Kubectl) -> dict[str, str]:
    found = kubectl.json(
        "get",
        "configmaps,deployments,services,poddisruptionbudgets",
        "-n",
        "bench-scale",
        "-l",
        MANAGED,
    )
    return {f"{i['kind']}/{i['metadata']['name']}": i["metadata"]["resourceVersion"] for i in found["items"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with cluster(args.keep, args.controller_manager_qps) as (kubeconfig, kubectl), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", f"{PLURAL}.{GROUP}")
        for namespace in ("bench-latency", "bench-scale"):
            kubectl("create", "namespace", namespace)
        wait_for(
            lambda: kubectl("get", "serviceaccount", "default", "-n", "bench-scale", check=False).returncode == 0,
            timeout=60,
            what="default ServiceAccounts",
        )

        # One runtime process stands in for every policy's pods (see the module docstring).
        runtime_port, metrics_port, liveness_port = free_ports(3)
        served = policy("bench", "bench-latency")
        served["metadata"]["generation"] = 1
        (work / "policy.yaml").write_text(yaml.safe_dump(served))
        (work / "state").mkdir()
        runtime = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "croupier-runtime"),
                "--policy",
                str(work / "policy.yaml"),
                "--port",
                str(runtime_port),
                "--state-dir",
                str(work / "state"),
            ],
            stdout=(work / "runtime.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(operator_kubeconfig(kubectl, kubeconfig, work / "operator.kubeconfig")),
                "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": f"http://127.0.0.1:{runtime_port}",
                "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
                "CROUPIER_OPERATOR_LOG_LEVEL": "info" if args.logs else "warning",
            }
        )
        operator = Operator(
            env=env,
            log=work / "operator.log",
            metrics_port=metrics_port,
            liveness_port=liveness_port,
            tracemalloc_dir=args.tracemalloc,
            tracemalloc_frames=args.tracemalloc_frames,
        )
        if args.tracemalloc:
            args.tracemalloc.mkdir(parents=True, exist_ok=True)
        api = config.new_client_from_config(config_file=str(kubeconfig))
        custom = client.CustomObjectsApi(api)
        watcher = ReadyWatcher(api)
        try:
            wait_for(
                lambda: httpx.get(f"http://127.0.0.1:{runtime_port}/readyz", trust_env=False).is_success,
                timeout=30,
                what="runtime",
            )
            operator.start()
            operator.enter("idle")
            time.sleep(2)  # the first list of every watched kind
            results["rss_idle_mib"] = operator.rss_mib()
            operator.snapshot("idle")

            operator.enter("latency runs")
            latencies = []
            for i in range(args.runs):
                name = f"latency-{i}"
                started = time.perf_counter()
                custom.create_namespaced_custom_object(
                    GROUP, VERSION, "bench-latency", PLURAL, policy(name, "bench-latency")
                )
                ready = watcher.wait({("bench-latency", name)}, timeout=120)
                latencies.append(ready - started)
                custom.delete_namespaced_custom_object(GROUP, VERSION, "bench-latency", PLURAL, name)
            results["latency"] = latencies

            names = [f"scale-{i:04d}" for i in range(args.policies)]
            cpu_before = operator.cpu_seconds()
            not_control_plane = {p.pid for p in (operator.process, runtime) if p is not None}
            plane_before = control_plane_cpu_seconds(not_control_plane)
            requests_before = operator_requests_seen_by_apiserver(kubectl)
            status_writes_before = operator.metric("croupier_operator_status_writes_total")
            started_wall = time.time()
            started = time.perf_counter()
            operator.enter("burst: creates")
            with ThreadPoolExecutor(max_workers=16) as pool:
                list(
                    pool.map(
                        lambda n: custom.create_namespaced_custom_object(
                            GROUP, VERSION, "bench-scale", PLURAL, policy(n, "bench-scale")
                        ),
                        names,
                    )
                )
            created = time.perf_counter()
            operator.enter("burst: until all Ready")
            last_ready = watcher.wait({("bench-scale", n) for n in names}, timeout=args.scale_timeout)
            results["scale_create_seconds"] = created - started
            # When the operator had created every child (creationTimestamp: whole seconds, rounded down).
            results["scale_children_created_seconds"] = last_child_created(kubectl) - int(started_wall)
            results["scale_all_ready_seconds"] = last_ready - started
            results["scale_operator_cpu_seconds"] = operator.cpu_seconds() - cpu_before
            plane_after = control_plane_cpu_seconds(not_control_plane)
            results["scale_control_plane_cpu_seconds"] = {
                name: round(seconds - plane_before.get(name, 0.0), 1) for name, seconds in sorted(plane_after.items())
            }
            requests_after = operator_requests_seen_by_apiserver(kubectl)
            results["scale_writes_per_policy"] = (requests_after[0] - requests_before[0]) / args.policies
            results["scale_gets_per_policy"] = (requests_after[1] - requests_before[1]) / args.policies
            results["scale_status_writes_per_policy"] = (
                operator.metric("croupier_operator_status_writes_total") - status_writes_before
            ) / args.policies
            results["rss_peak_mib"] = operator.peak_rss_mib()
            results["rss_after_scale_mib"] = operator.rss_mib()
            operator.snapshot("all-ready")

            # Steady state: let the last writes settle (one resync interval), then count for the window.
            operator.enter("settle")
            time.sleep(args.settle_seconds)
            versions_before = {
                i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                for i in custom.list_namespaced_custom_object(GROUP, VERSION, "bench-scale", PLURAL)["items"]
            }
            children_before = children_versions(kubectl)
            server_before = operator_writes_seen_by_apiserver(kubectl)
            ours_before = operator.writes()
            steady_cpu = operator.cpu_seconds()
            operator.enter("steady state")
            time.sleep(args.steady_seconds)
            versions_after = {
                i["metadata"]["name"]: i["metadata"]["resourceVersion"]
                for i in custom.list_namespaced_custom_object(GROUP, VERSION, "bench-scale", PLURAL)["items"]
            }
            results["steady_operator_writes"] = operator.writes() - ours_before
            results["steady_apiserver_writes"] = operator_writes_seen_by_apiserver(kubectl) - server_before
            children_after = children_versions(kubectl)
            results["steady_changed_children"] = sum(
                1 for k, v in children_after.items() if children_before.get(k) != v
            )
            results["children"] = len(children_after)
            results["steady_changed_policies"] = sum(
                1 for k, v in versions_after.items() if versions_before.get(k) != v
            )
            results["steady_seconds"] = args.steady_seconds
            results["steady_operator_cpu_seconds"] = operator.cpu_seconds() - steady_cpu
            results["rss_end_mib"] = operator.rss_mib()
            results["rss_by_phase_mib"] = dict(operator.rss_by_phase)
            results["rss_peak_phase"] = operator.peak_phase
            results["sockets_by_phase"] = dict(operator.sockets_by_phase)
            operator.snapshot("end")
        finally:
            watcher.stop()
            operator.stop()
            runtime.terminate()
            runtime.wait(10)
            api.close()
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in ("operator.log", "runtime.log"):
                    shutil.copy(work / log, args.logs / log)
    return results


def operator_writes_seen_by_apiserver(kubectl: Kubectl) -> float:
    return dispatched_writes(kubectl, WRITES_FLOW)


def operator_requests_seen_by_apiserver(kubectl: Kubectl) -> tuple[float, float]:
    """(mutating requests, GETs) of the operator's ServiceAccount since the API server started."""
    return dispatched_writes(kubectl, WRITES_FLOW), dispatched_writes(kubectl, GETS_FLOW)


def operator_kubeconfig(kubectl: Kubectl, admin: Path, path: Path) -> Path:
    """Least-privilege identity: the ServiceAccount of config/rbac, with a TokenRequest token."""
    kubectl("create", "namespace", OPERATOR_NAMESPACE)
    kubectl("apply", "--server-side", "-k", str(ROOT / "config" / "rbac"))
    kubectl("apply", "-f", "-", input=json.dumps(WRITES_FLOW_SCHEMA))
    kubectl("apply", "-f", "-", input=json.dumps(GETS_FLOW_SCHEMA))
    token = kubectl("create", "token", "croupier-operator", "-n", OPERATOR_NAMESPACE, "--duration=4h").stdout.strip()
    config_ = yaml.safe_load(admin.read_text())
    cluster_name = config_["clusters"][0]["name"]
    config_["users"] = [{"name": "croupier-operator", "user": {"token": token}}]
    config_["contexts"] = [{"name": "operator", "context": {"cluster": cluster_name, "user": "croupier-operator"}}]
    config_["current-context"] = "operator"
    path.write_text(yaml.safe_dump(config_))
    path.chmod(0o600)
    return path


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    latency = results["latency"]
    rows = [
        ("apply → Ready, one policy, p50", f"{percentile(latency, 0.5) * 1000:.0f} ms"),
        ("apply → Ready, one policy, p95", f"{percentile(latency, 0.95) * 1000:.0f} ms"),
        (
            "apply → Ready, one policy, mean ± sd",
            f"{statistics.mean(latency) * 1000:.0f} ± "
            f"{(statistics.stdev(latency) if len(latency) > 1 else 0) * 1000:.0f} ms ({len(latency)} runs)",
        ),
        (f"{args.policies} policies created at once: creates done", f"{results['scale_create_seconds']:.1f} s"),
        (
            f"{args.policies} policies created at once: every child created by the operator",
            f"{results['scale_children_created_seconds']:.0f} s (±1 s)",
        ),
        (f"{args.policies} policies created at once: all Ready", f"{results['scale_all_ready_seconds']:.1f} s"),
        (
            f"{args.policies} policies created at once: operator CPU time until all Ready",
            f"{results['scale_operator_cpu_seconds']:.1f} s",
        ),
        (
            f"{args.policies} policies created at once: control plane CPU time until all Ready",
            f"{sum(results['scale_control_plane_cpu_seconds'].values()):.1f} s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in results["scale_control_plane_cpu_seconds"].items() if v >= 0.1)
            + ")",
        ),
        (
            f"{args.policies} policies created at once: operator requests per policy until all Ready",
            f"{results['scale_writes_per_policy']:.1f} writes (of them "
            f"{results['scale_status_writes_per_policy']:.1f} status patches), "
            f"{results['scale_gets_per_policy']:.1f} GETs",
        ),
        (
            "operator RSS idle / after scale / peak (VmHWM)",
            f"{results['rss_idle_mib']:.0f} / {results['rss_after_scale_mib']:.0f} / {results['rss_peak_mib']:.0f} MiB",
        ),
        (
            "operator RSS: highest sample by phase (every 0.2 s); the phase of the peak",
            ", ".join(f"{k} {v:.0f}" for k, v in results["rss_by_phase_mib"].items())
            + f" MiB; {results['rss_peak_phase']}",
        ),
        (
            "operator's open sockets: most by phase",
            ", ".join(f"{k} {v}" for k, v in results["sockets_by_phase"].items()),
        ),
        (
            f"steady state {results['steady_seconds']} s: mutating API requests by the operator (API server's count)",
            f"{results['steady_apiserver_writes']:.0f}",
        ),
        (
            f"steady state {results['steady_seconds']} s: writes counted by the operator itself",
            f"{results['steady_operator_writes']:.0f}",
        ),
        (
            f"steady state {results['steady_seconds']} s: operator CPU time (probes, drift checks)",
            f"{results['steady_operator_cpu_seconds']:.1f} s",
        ),
        (
            f"steady state {results['steady_seconds']} s: DecisionPolicies whose resourceVersion changed",
            f"{results['steady_changed_policies']} of {args.policies}",
        ),
        (
            f"steady state {results['steady_seconds']} s: children whose resourceVersion changed",
            f"{results['steady_changed_children']} of {results['children']}",
        ),
    ]
    lines = ["| Measure | Result |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="sequential apply-to-Ready runs (default 20)")
    parser.add_argument("--policies", type=int, default=200, help="policies created at once (default 200)")
    parser.add_argument("--steady-seconds", type=int, default=60, help="steady-state window (default 60)")
    parser.add_argument("--settle-seconds", type=int, default=20, help="wait before the window (default 20)")
    parser.add_argument("--scale-timeout", type=float, default=600, help="seconds to wait for all Ready")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--keep", action="store_true", help="keep the control plane's work dir")
    parser.add_argument(
        "--controller-manager-qps",
        type=int,
        help="diagnosis: kube-controller-manager's --kube-api-qps (default: its own, 20)",
    )
    parser.add_argument("--logs", type=Path, help="copy the operator's and the runtime's logs (info level) here")
    parser.add_argument(
        "--tracemalloc",
        type=Path,
        help="profiling: run the operator with tracemalloc and write snapshots (idle, all-ready, end) here; "
        "slows the operator and adds to its RSS",
    )
    parser.add_argument(
        "--tracemalloc-frames",
        type=int,
        default=4,
        help="frames kept per allocation with --tracemalloc (default 4; 25 makes a 200-policy burst take >10 min)",
    )
    args = parser.parse_args()
    results = run(args)
    print(f"operator_scale on {platform.node()} ({os.cpu_count()} CPUs, Python {platform.python_version()})\n")
    print(table(results, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    failed = (
        results["steady_operator_writes"]
        or results["steady_apiserver_writes"]
        or results["steady_changed_policies"]
        or results["steady_changed_children"]
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
