"""Fixtures for the canary sources: endpoints exposing TF Serving's metrics (one per "pod") and a real Prometheus
(Debian's 2.42, hack/prometheus/install.sh) scraping them every second."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import yaml

from .exposition import TfServingMetrics

ROOT = Path(__file__).resolve().parents[3]
INSTALL = ROOT / "hack" / "prometheus" / "install.sh"
STARTUP_SECONDS = 60


@dataclass
class Pod:
    """One TF Serving pod's metrics endpoint of a version."""

    version: int
    metrics: TfServingMetrics
    url: str


@dataclass
class Prometheus:
    url: str
    log: Path

    def value(self, query: str) -> float | None:
        answer = httpx.get(f"{self.url}/api/v1/query", params={"query": query}, timeout=5).json()
        result = answer["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, query: str, expected: float, timeout: float = 30) -> None:
        """Until the query answers ``expected`` (Prometheus scraped what the test just set)."""
        deadline = time.monotonic() + timeout
        while (value := self.value(query)) != expected:
            if time.monotonic() > deadline:
                pytest.fail(f"Prometheus answered {value} for {query}, waited for {expected}; log: {self.log}")
            time.sleep(0.25)


@pytest.fixture(scope="session")
def prometheus_bin() -> Path:
    out = subprocess.run(["bash", str(INSTALL)], check=True, capture_output=True, text=True, timeout=600)
    return Path(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def pods() -> Iterator[dict[int, Pod]]:
    """Version 1 (stable) and version 2 (canary), each a real metrics endpoint."""
    served = {}
    for version in (1, 2):
        metrics = TfServingMetrics()
        served[version] = Pod(version, metrics, metrics.serve())
    yield served
    for pod in served.values():
        pod.metrics.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def prometheus(
    prometheus_bin: Path, pods: dict[int, Pod], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    """Prometheus scraping both pods every second, each target labelled with its version (as a Kubernetes service
    discovery relabelling would label a version's pods)."""
    work = tmp_path_factory.mktemp("prometheus")
    scrape_configs = [
        {
            "job_name": f"tfserving-v{pod.version}",
            "metrics_path": "/monitoring/prometheus/metrics",
            "static_configs": [{"targets": [pod.url.split("/")[2]], "labels": {"version": str(pod.version)}}],
        }
        for pod in pods.values()
    ]
    config = {"global": {"scrape_interval": "1s", "evaluation_interval": "1s"}, "scrape_configs": scrape_configs}
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = work / "prometheus.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                str(prometheus_bin / "prometheus"),
                f"--config.file={work / 'prometheus.yml'}",
                f"--storage.tsdb.path={work / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Prometheus did not become ready; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield Prometheus(url, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
