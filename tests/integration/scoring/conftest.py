"""Model-scored decisions against the local TF Serving (croupier-modelserver) on real SavedModels: the bilinear scoring
model, the ranker (a signature of other sizes) and the tf.Example model (a signature of other inputs); runtimes started
inside the test process (real engine, real SQLite) behind an in-process ASGI client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from support.savedmodels import RANKER, SCORER, SCORING, model_config, write_scoring_model

from croupier.modelserver import savedmodels
from croupier.modelserver.process import ModelServerProcess
from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import ServedPolicy, parse_policy
from croupier.runtime.settings import RuntimeSettings


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scoring-models")
    write_scoring_model(root / SCORING, 1)
    savedmodels.write_ranker(root / RANKER, 1)
    savedmodels.write_example_model(root / SCORER, 1)
    config = model_config(
        [
            (SCORING, root / SCORING, [1], {"stable": 1}),
            (RANKER, root / RANKER, [1], {"stable": 1}),
            (SCORER, root / SCORER, [1], {"stable": 1}),
        ]
    )
    (root / "models.config").write_text(config)
    return root


def model_server(repository: Path, log: Path) -> ModelServerProcess:
    return ModelServerProcess([f"--model_config_file={repository / 'models.config'}"], log)


@pytest.fixture(scope="module")
def server(model_repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    process = model_server(model_repository, tmp_path_factory.mktemp("server") / "server.log")
    try:
        yield process.start(ready_model=SCORING, timeout=600)  # TensorFlow's import alone took minutes on a busy host
    finally:
        process.stop()


def scored_policy(address: str, model: str = SCORING, **spec: Any) -> ServedPolicy:
    body: dict[str, Any] = {
        "arms": [
            {"name": "north", "features": {"a": 1.0, "b": 0.0}},
            {"name": "east", "features": {"a": 0.0, "b": 1.0}},
            {"name": "south", "features": {"a": -1.0, "b": 0.5}},
            {"name": "west", "features": {"a": 0.5, "b": -1.0}},
        ],
        "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}},
        "context": {"features": ["x", "y", "z"]},
        "exploration": {"minProbability": 0.02},
        "auth": {"mode": "Disabled"},
        "scoring": {"modelDeploymentRef": {"name": "scoring"}, "timeoutMilliseconds": 200},
    }
    body.update(spec)
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "scored", "namespace": "games", "generation": 1},
        "spec": body,
        "scoring": {"address": address, "modelName": model},
    }
    return parse_policy(document)


@asynccontextmanager
async def running(
    served: ServedPolicy, state_dir: Path, **settings: Any
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    options: dict[str, Any] = {"state_dir": state_dir, "seed": 7}
    options.update(settings)
    runtime = Runtime(RuntimeSettings(**options), served, metrics=RuntimeMetrics())
    await runtime.start()
    transport = httpx.ASGITransport(app=HttpApp(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
            yield runtime, client
    finally:
        await runtime.stop()


@pytest.fixture
def run() -> Callable[[Any], Any]:
    return asyncio.run
