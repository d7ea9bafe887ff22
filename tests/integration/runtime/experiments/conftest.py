"""Fixtures for the experiment runtime: Experiment manifests, `croupier-runtime --experiment` processes, and an
experiment runtime started in the test process (its SQLite writer thread included) behind an in-process ASGI client."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from croupier.runtime.experiments.assembly import ExperimentRuntime
from croupier.runtime.experiments.config import load_experiment
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.settings import RuntimeSettings

from ..conftest import RuntimeProcess

VARIANTS = [
    {"name": "control", "weight": 50, "payload": {"offer": "none"}},
    {"name": "discount", "weight": 50, "payload": {"offer": "10%"}},
]


def write_experiment(path: Path, name: str = "checkout", *, status: dict[str, Any] | None = None, **spec: Any) -> Path:
    body: dict[str, Any] = {
        "variants": VARIANTS,
        "control": "control",
        "assignment": {"unitKey": "userId", "salt": "checkout-2026"},
        "metric": {"name": "revenue", "type": "Continuous"},
        "guardrails": [
            {"name": "refunds", "type": "Count", "direction": "Decrease", "threshold": 0.05},
            {
                "name": "latency_ms",
                "type": "Continuous",
                "aggregation": "Mean",
                "direction": "Decrease",
                "threshold": 0.1,
            },
            {"name": "converted", "type": "Binary", "direction": "Increase", "threshold": 0.05},
        ],
    }
    body.update(spec)
    document: dict[str, Any] = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": body,
    }
    if status is not None:
        document["status"] = status
    path.write_text(yaml.safe_dump(document))
    return path


class ExperimentProcess(RuntimeProcess):
    """One `croupier-runtime --experiment` process on 127.0.0.1."""

    def launch(self) -> ExperimentProcess:
        import subprocess  # noqa: PLC0415

        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "croupier.runtime.cli",
            "--experiment", str(self.policy), "--host", "127.0.0.1", "--port", str(self.port),
            "--state-dir", str(self.state_dir), *self.args,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self


@pytest.fixture
def experiment_process(tmp_path: Path) -> Iterator[Callable[..., ExperimentProcess]]:
    started: list[ExperimentProcess] = []

    def make(experiment: Path, state_dir: Path | None = None, **kwargs: Any) -> ExperimentProcess:
        process = ExperimentProcess(experiment, state_dir or tmp_path / f"exp-state-{len(started)}", **kwargs)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@asynccontextmanager
async def serving(
    path: Path, state_dir: Path, **settings: Any
) -> AsyncIterator[tuple[ExperimentRuntime, httpx.AsyncClient]]:
    """A started experiment runtime (real SQLite store) and an HTTP client speaking to its ASGI app in process."""
    options: dict[str, Any] = {"state_dir": state_dir, "experiment": path}
    options.update(settings)
    runtime = ExperimentRuntime(RuntimeSettings(**options), load_experiment(path), metrics=RuntimeMetrics())
    await runtime.start()
    transport = httpx.ASGITransport(app=HttpApp(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
            yield runtime, client
    finally:
        await runtime.stop()


@pytest.fixture
def run() -> Callable[[Any], Any]:
    import asyncio  # noqa: PLC0415

    return asyncio.run
