"""Playing the kubelet for a ModelDeployment in routing mode VersionLabels, with real processes on loopback.

kwok pods run nothing, so a test (or a benchmark) runs the model server and the model router itself and keeps their
mounted files in step with the ConfigMaps the operator writes, as the kubelet would:

* ``ConfigMapFile``: the model server's model config, copied every half second (TF Serving polls the file anyway);
* ``PodSyncedFile``: the router's routing table, copied the way the kubelet refreshes a ConfigMap volume: when the
  pod object changes (any update makes the kubelet sync the pod) or once per sync period (60 s by default, the
  kubelet's ``--sync-frequency``). A weight change therefore reaches the router quickly only if the operator updates
  the router's pods after writing the table, which is what the operator does.
* ``version_labels_pods``: both files in step and the model server running on its config, for one ModelDeployment;
* ``PodDispatcher``: the pod network for the operator's per-pod scrapes (``croupier.devcluster.dispatcher``'s
  ``LoopbackDispatcher``): ``GET /<namespace>/<pod>/<path>`` goes to the process playing that pod
  (``CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE`` = ``dispatcher.template``).
* ``router_command`` (``croupier.devcluster.modelrouter``): the command line of a model router, ``go`` (the compiled
  ``croupier-modelrouter`` a router pod runs, which runtime/gorouter/build.sh builds once and caches) or ``python``
  (``croupier-runtime router``, the same contract).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from croupier.devcluster.dispatcher import LoopbackDispatcher
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.modelrouter import IMPLEMENTATIONS, router_command
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for
from croupier.modelserver.process import ModelServerProcess

KUBELET_SYNC_SECONDS = 60.0
VERSION_HEADER = "x-croupier-model-version"
ROUTER_IMPLEMENTATIONS = IMPLEMENTATIONS


def _atomic_write(path: Path, text: str) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_text(text)
    staged.replace(path)  # atomic, as the kubelet swaps the volume's ..data symlink


class ConfigMapFile:
    """Keeps ``path`` equal to one key of a ConfigMap, checked every ``interval`` seconds."""

    def __init__(
        self, kubectl: Kubectl, namespace: str, configmap: str, key: str, path: Path, *, interval: float = 0.5
    ) -> None:
        self.kubectl, self.namespace, self.configmap, self.key, self.path = kubectl, namespace, configmap, key, path
        self.interval = interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.copies = 0
        self.copied_at: float | None = None
        self.first_copied_at: float | None = None

    def sync(self) -> bool:
        found = self.kubectl("get", "configmap", self.configmap, "-n", self.namespace, "-o", "json", check=False)
        if found.returncode != 0:
            return False
        text = (json.loads(found.stdout).get("data") or {}).get(self.key)
        if text is None:
            return False
        if not self.path.exists() or self.path.read_text() != text:
            _atomic_write(self.path, text)
            self.copies += 1
            self.copied_at = time.monotonic()
            if self.first_copied_at is None:
                self.first_copied_at = self.copied_at
        return True

    def _due(self) -> bool:
        return True

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            if self._due():
                self.sync()

    def __enter__(self) -> ConfigMapFile:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wait_for(self.sync, timeout=60, what=f"ConfigMap {self.configmap}")
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(5)


class PodSyncedFile(ConfigMapFile):
    """A ConfigMap volume of the pods ``selector`` picks: refreshed when one of those pods changes (its
    resourceVersion), or every ``sync_seconds`` otherwise."""

    def __init__(
        self,
        kubectl: Kubectl,
        namespace: str,
        configmap: str,
        key: str,
        path: Path,
        *,
        selector: str,
        sync_seconds: float = KUBELET_SYNC_SECONDS,
    ) -> None:
        super().__init__(kubectl, namespace, configmap, key, path)
        self.selector = selector
        self.sync_seconds = sync_seconds
        self.seen: tuple[tuple[str, str], ...] = ()
        self.last_sync = time.monotonic()
        self.pod_syncs = 0

    def pods(self) -> tuple[tuple[str, str], ...]:
        found = self.kubectl("get", "pods", "-n", self.namespace, "-l", self.selector, "-o", "json", check=False)
        if found.returncode != 0:
            return self.seen
        items = json.loads(found.stdout).get("items") or []
        return tuple(sorted((p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in items))

    def _due(self) -> bool:
        pods = self.pods()
        changed = pods != self.seen
        self.seen = pods
        if changed:
            self.pod_syncs += 1
        if changed or time.monotonic() - self.last_sync >= self.sync_seconds:
            self.last_sync = time.monotonic()
            return True
        return False

    def pod_annotation(self, key: str) -> list[str | None]:
        found = self.kubectl.json("get", "pods", "-n", self.namespace, "-l", self.selector)
        return [((p["metadata"].get("annotations") or {}).get(key)) for p in found.get("items") or ()]


class RouterProcess:
    """A model router on loopback ports in front of a model server: the compiled one a router pod runs
    (``croupier-modelrouter``), or ``implementation="python"`` (``croupier-runtime router``)."""

    def __init__(
        self, routing_file: Path, upstream_rest: str, upstream_grpc: str, log: Path, implementation: str = "go"
    ) -> None:
        self.routing_file, self.upstream_rest, self.upstream_grpc, self.log = (
            routing_file,
            upstream_rest,
            upstream_grpc,
            log,
        )
        self.implementation = implementation
        self.rest_port, self.grpc_port = free_ports(2)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 60.0) -> RouterProcess:
        command = [
            *router_command(self.implementation), "--host=127.0.0.1",
            f"--rest-port={self.rest_port}", f"--grpc-port={self.grpc_port}",
            f"--upstream-rest={self.upstream_rest}", f"--upstream-grpc={self.upstream_grpc}",
            f"--routing-file={self.routing_file}", "--log-level=warning",
        ]  # fmt: skip
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))

        def up() -> bool:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the router exited: {self.log.read_text()[-3000:]}")
            try:
                return httpx.get(self.rest_url + "/metrics", timeout=1, trust_env=False).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, timeout=timeout, what="the model router")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(self.rest_url + "/metrics", timeout=5, trust_env=False).text
        return sum(
            s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )

    def __enter__(self) -> RouterProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


class RouterTraffic:
    """Predict requests that name no version, through the router, about ``rate`` a second, until stopped; counts
    the answers by the version the router reports having served."""

    def __init__(self, rest_url: str, model: str, dims: int, rate: float = 20.0) -> None:
        self.rest_url, self.model, self.dims, self.period = rest_url, model, dims, 1.0 / rate
        self.context_floor = 0.0
        """The first context feature is drawn from [context_floor, 1): the failing test version fails below 0.5."""
        self.served: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.log: list[tuple[float, str, int]] = []  # (monotonic time, served version, HTTP status)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def body(self, rng: random.Random) -> dict[str, Any]:
        context = [rng.random() for _ in range(self.dims)]
        context[0] = self.context_floor + (1.0 - self.context_floor) * context[0]
        arms = [[rng.random() for _ in range(self.dims)] for _ in range(2)]
        return {"instances": [{"context": context, "arms": arms}]}

    def _run(self) -> None:
        rng = random.Random(11)
        with httpx.Client(timeout=5, trust_env=False) as client:
            while not self.stopping.wait(self.period):
                try:
                    answer = client.post(f"{self.rest_url}/v1/models/{self.model}:predict", json=self.body(rng))
                except httpx.HTTPError:
                    continue
                version = answer.headers.get(VERSION_HEADER, "?")
                self.served[version] += 1
                if answer.status_code != 200:
                    self.errors[version] += 1
                self.log.append((time.monotonic(), version, answer.status_code))

    def since(self, moment: float) -> Counter[str]:
        return Counter(version for at, version, _ in self.log if at >= moment)

    def __enter__(self) -> RouterTraffic:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stopping.set()
        self.thread.join(5)


def router_selector(name: str) -> str:
    """The label selector of a ModelDeployment's router pods."""
    return f"app.kubernetes.io/name=croupier-model-router,app.kubernetes.io/instance={name}"


@contextlib.contextmanager
def version_labels_pods(
    kubectl: Kubectl, namespace: str, work: Path, name: str = "ranker"
) -> Iterator[tuple[ModelServerProcess, PodSyncedFile]]:
    """The kubelet's part for a VersionLabels ModelDeployment: its TF Serving config kept in step with
    ``<name>-models``, its routing table (``routing.path``, for the router processes) with ``<name>-routing`` as the
    router pods' volume, and the local model server running on the config; everything stopped on exit."""
    config, routing = work / "tfserving" / "models.config", work / "routing" / "routing.yaml"
    models_volume = ConfigMapFile(kubectl, namespace, f"{name}-models", "models.config", config)
    routing_volume = PodSyncedFile(
        kubectl, namespace, f"{name}-routing", "routing.yaml", routing, selector=router_selector(name)
    )
    with models_volume, routing_volume:
        flags = [f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1"]
        server = ModelServerProcess(flags, work / "modelserver.log")
        try:
            server.start(ready_model=name)
            yield server, routing_volume
        finally:
            server.stop()


class PodDispatcher(LoopbackDispatcher):
    """The pod network for the operator's per-pod scrapes: ``GET /<namespace>/<pod>/<path>`` goes to the process
    playing that pod (``routes["<namespace>/<pod>"]``, a base URL); 502 for a pod nothing plays or whose process does
    not answer."""

    @property
    def template(self) -> str:
        """``CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE``: each pod's ``/metrics``."""
        return self.url_template("pod", "/metrics")
