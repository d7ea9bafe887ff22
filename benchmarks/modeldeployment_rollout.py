"""How long does a ModelDeployment take from apply to Ready, and from injected errors to its automatic rollback?

    uv run python benchmarks/modeldeployment_rollout.py [--ready-runs 5] [--rollback-runs 3] [--interval 10]

Starts the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok), installs the
CRDs and config/rbac, runs the operator as a subprocess with the ServiceAccount's token (as the tests do), one local
model server (``croupier-modelserver``, real SavedModels written at start) and one model router process
(``croupier-runtime router``), and plays the kubelet for them (``tests/support/modelrouting.py``): the model server's
model config is copied from ``<name>-models`` every 0.5 s, the router's routing table from ``<name>-routing`` when the
router's pod object changes (the operator annotates it after each table change) or once a minute. Routing mode
VersionLabels throughout.

1. **apply → AVAILABLE → Ready** (``--ready-runs``, a new ModelDeployment and a new model name each run, so the model
   server loads the SavedModel afresh): from the create request to (a) the model config reaching the model server's
   file, (b) GetModelStatus reporting the version AVAILABLE (polled every 20 ms, straight at the model server), (c) the
   first read of the resource showing ``Ready=True`` for its generation (polled every 50 ms). Reference, same run: the
   model server's own load time, (a) → (b), which no operator can beat; the operator's share is the rest.
2. **injected errors → rollback** (``--rollback-runs``): canary version 3 (the test SavedModel that fails for inputs
   whose first context feature is below 0.5) at step weight 50 with RuntimeStats analysis every ``--interval`` s
   (``minRequests`` 10, ``maxErrorRate`` 0.05, ``failureLimit`` 0). Traffic (20 requests/s through the router, no
   version named) first sends only inputs version 3 answers; once an interval has passed the traffic switches to
   uniform inputs (half of the canary's answers become errors). Measured from that switch to ``Degraded=True``
   (``RolledBack``) in status, to weight 0 at the router (its ``croupier_router_canary_weight``), and to the last
   answer the canary served. Reference, same run: the analysis bound, ``(failureLimit + 1) * interval`` plus the
   end of the interval in progress: at most two intervals.

What the numbers do not include: a real kubelet's ConfigMap refresh of the model config (up to its sync period, ~1 min,
unless the pod is updated; TF Serving then polls every ``--model_config_file_poll_wait_seconds``, 10 s by default),
image pulls and TensorFlow Serving's start. The model server here polls its config every second.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
from kubernetes import client, config
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from operator_scale import Operator, cluster, operator_kubeconfig
from support.modelrouting import ConfigMapFile, PodSyncedFile, RouterProcess, RouterTraffic
from support.savedmodels import DIMS, FAILING_VERSION, ranker_repository

from croupier.devcluster.ports import free_ports
from croupier.modelserver.process import ModelServerProcess

ROOT = Path(__file__).resolve().parents[1]
GROUP, VERSION, PLURAL = "croupier.dev", "v1alpha1", "modeldeployments"
NAMESPACE = "bench-md"
AVAILABLE = 30  # ModelVersionStatus.State.AVAILABLE


def manifest(name: str, model: str, base: Path, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": model, "storageUri": f"file://{base}"},
            "stable": {"version": 1},
            "routing": {"mode": "VersionLabels"},
            **spec,
        },
    }


def condition(body: dict[str, Any], kind: str) -> dict[str, Any]:
    for entry in (body.get("status") or {}).get("conditions") or ():
        if entry.get("type") == kind and entry.get("observedGeneration") == body["metadata"]["generation"]:
            return dict(entry)
    return {}


def first(check: Callable[[], bool], timeout: float, what: str, interval: float) -> float:
    """The monotonic time at which ``check`` first held (polled every ``interval``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        time.sleep(interval)
    raise TimeoutError(f"{what} not within {timeout:.0f} s")


class Bench:
    def __init__(self, kubectl: Any, custom: client.CustomObjectsApi, work: Path, base: Path) -> None:
        self.kubectl, self.custom, self.work, self.base = kubectl, custom, work, base
        self.models_file = work / "tfserving" / "models.config"
        self.routing_file = work / "routing" / "routing.yaml"
        self.models_file.parent.mkdir(parents=True)
        self.routing_file.parent.mkdir(parents=True)

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
        return found

    def volumes(self, name: str) -> tuple[ConfigMapFile, PodSyncedFile]:
        selector = f"app.kubernetes.io/name=croupier-model-router,app.kubernetes.io/instance={name}"
        models = ConfigMapFile(self.kubectl, NAMESPACE, f"{name}-models", "models.config", self.models_file)
        routing = PodSyncedFile(
            self.kubectl, NAMESPACE, f"{name}-routing", "routing.yaml", self.routing_file, selector=selector
        )
        return models, routing

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)


def ready_run(bench: Bench, server: ModelServerProcess, index: int) -> dict[str, float]:
    name, model = f"ready-{index}", f"ranker{index}"
    channel = grpc.insecure_channel(server.grpc_target)
    stub = model_service_pb2_grpc.ModelServiceStub(channel)

    def available() -> bool:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = model
        try:
            answer = stub.GetModelStatus(request, timeout=1)
        except grpc.RpcError:
            return False
        return any(v.state == AVAILABLE for v in answer.model_version_status)

    models, routing = bench.volumes(name)
    started = time.monotonic()
    bench.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, manifest(name, model, bench.base))
    try:
        with models, routing:
            at_available = first(available, 300, f"{model} AVAILABLE", 0.02)
            at_ready = first(lambda: condition(bench.get(name), "Ready").get("status") == "True", 300, "Ready", 0.05)
            at_file = models.first_copied_at
            assert at_file is not None
    finally:
        channel.close()
        bench.delete(name)
    return {
        "apply_to_file": at_file - started,
        "file_to_available": at_available - at_file,
        "available_to_ready": at_ready - at_available,
        "apply_to_ready": at_ready - started,
    }


def rollback_run(bench: Bench, router: RouterProcess, interval: int, index: int) -> dict[str, float]:
    name = f"rollback-{index}"
    analysis = {"intervalSeconds": interval, "minRequests": 10, "maxErrorRate": 0.05, "failureLimit": 0}
    canary = {"version": FAILING_VERSION, "steps": [{"weight": 50, "pauseSeconds": 3600}], "analysis": analysis}
    body = manifest(name, "ranker", bench.base, canary=canary)
    models, routing = bench.volumes(name)
    bench.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    traffic = RouterTraffic(router.rest_url, "ranker", DIMS)
    traffic.context_floor = 0.5  # version 3 answers these (set before the first request)
    try:
        with models, routing, traffic:

            def passed() -> bool:
                rollout = (bench.get(name).get("status") or {}).get("rollout") or {}
                if rollout.get("state") == "RolledBack":
                    raise RuntimeError(f"{name} rolled back before any error was injected: {rollout.get('message')}")
                return any(a.get("result") == "Passed" for a in rollout.get("analyses") or ())

            first(passed, 300, "a Passed interval", 0.2)
            injected = time.monotonic()
            traffic.context_floor = 0.0  # from now on half of the canary's answers are errors

            def rolled_back() -> bool:
                found = condition(bench.get(name), "Degraded")
                return found.get("status") == "True" and found.get("reason") == "RolledBack"

            at_status = first(rolled_back, 120, "RolledBack", 0.05)
            at_router = first(
                lambda: router.metric("croupier_router_canary_weight", model="ranker") == 0, 60, "weight 0", 0.05
            )
            time.sleep(2)
            canary_answers = [at for at, version, _ in traffic.log if version == str(FAILING_VERSION)]
            last_canary = max(canary_answers)
            errors_after = sum(1 for at, _, code in traffic.log if at >= injected and code != 200)
    finally:
        bench.delete(name)
    return {
        "to_status": at_status - injected,
        "to_router": at_router - injected,
        "to_last_canary_answer": last_canary - injected,
        "errors_served": float(errors_after),
    }


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in rows)


def summary(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f} s"
    return f"{statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"ready": [], "rollback": []}
    with cluster(args.keep) as (kubeconfig, kubectl), tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        repository = ranker_repository(work / "models")
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", f"{PLURAL}.{GROUP}")
        kubectl("create", "namespace", NAMESPACE)
        server = ModelServerProcess(
            [f"--model_config_file={work / 'tfserving' / 'models.config'}", "--model_config_file_poll_wait_seconds=1"],
            work / "modelserver.log",
        )
        custom = client.CustomObjectsApi(config.new_client_from_config(str(kubeconfig)))
        bench = Bench(kubectl, custom, work, repository.base_path)
        # The model server needs a model to start with; each run's "kubelet" then replaces the config.
        bench.models_file.write_text(
            f'model_config_list {{\n  config {{ name: "warmup" base_path: "{repository.base_path}" '
            'model_platform: "tensorflow" }\n}\n'
        )
        server.start(ready_model="warmup")
        router = RouterProcess(bench.routing_file, server.rest_url, server.grpc_target, work / "router.log").start()
        metrics_port, liveness_port = free_ports(2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(operator_kubeconfig(kubectl, kubeconfig, work / "operator.kubeconfig")),
                "CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE": server.grpc_target,
                "CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE": f"{router.rest_url}/metrics",
                "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
                "CROUPIER_OPERATOR_LOG_LEVEL": "info" if args.logs else "warning",
            }
        )
        operator = Operator(env=env, log=work / "operator.log", metrics_port=metrics_port, liveness_port=liveness_port)
        try:
            operator.start()
            for i in range(args.ready_runs):
                results["ready"].append(ready_run(bench, server, i))
                print(f"ready run {i}: {results['ready'][-1]}", file=sys.stderr)
            for i in range(args.rollback_runs):
                results["rollback"].append(rollback_run(bench, router, args.interval, i))
                print(f"rollback run {i}: {results['rollback'][-1]}", file=sys.stderr)
        except BaseException:
            if args.logs:
                print(operator.log.read_text(errors="replace")[-20000:], file=sys.stderr)
            raise
        finally:
            operator.stop()
            router.stop()
            server.stop()
    return results


def table(results: dict[str, Any], args: argparse.Namespace) -> str:
    ready, rollback = results["ready"], results["rollback"]
    rows: list[tuple[str, str]] = []
    if ready:
        rows += [
            ("apply → model config in the model server's file (operator + kubelet stand-in)",
             summary([r["apply_to_file"] for r in ready])),
            ("file → version AVAILABLE (the model server's own load: reference)",
             summary([r["file_to_available"] for r in ready])),
            ("AVAILABLE → Ready=True (operator: GetModelStatus, labels, router table, status)",
             summary([r["available_to_ready"] for r in ready])),
            (f"apply → Ready=True ({len(ready)} runs)", summary([r["apply_to_ready"] for r in ready])),
        ]  # fmt: skip
    if rollback:
        bound = 2 * args.interval
        rows += [
            (f"errors injected → RolledBack in status ({len(rollback)} runs, interval {args.interval} s)",
             summary([r["to_status"] for r in rollback])),
            ("   … in analysis intervals", f"{median(rollback, 'to_status') / args.interval:.2f}"),
            ("errors injected → weight 0 at the router", summary([r["to_router"] for r in rollback])),
            ("errors injected → last answer served by the canary",
             summary([r["to_last_canary_answer"] for r in rollback])),
            ("error answers served after the injection (median)", f"{median(rollback, 'errors_served'):.0f}"),
            ("reference: analysis bound, (failureLimit + 1) intervals + the interval in progress", f"≤ {bound} s"),
        ]  # fmt: skip
    width = max(len(r[0]) for r in rows)
    lines = [f"ModelDeployment rollout on {platform.node()} ({os.cpu_count()} cores), routing mode VersionLabels", ""]
    lines += [f"| {'measure'.ljust(width)} | value |", f"| {'-' * width} | --- |"]
    lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-runs", type=int, default=5)
    parser.add_argument("--rollback-runs", type=int, default=3)
    parser.add_argument("--interval", type=int, default=10, help="analysis interval (s), 10 or more")
    parser.add_argument("--keep", action="store_true", help="keep the control plane's folder")
    parser.add_argument("--logs", action="store_true", help="operator logs at info, printed on failure")
    args = parser.parse_args()
    print(table(run(args), args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
