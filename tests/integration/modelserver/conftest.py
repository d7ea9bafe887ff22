"""The local model server as a real process over real SavedModels (written once per session with TensorFlow)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from support.savedmodels import (
    FAILING_VERSION,
    RANKER,
    SCORER,
    SLOW_VERSION,
    Repository,
    model_config,
    ranker_repository,
)
from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

from croupier.modelserver.process import ModelServerProcess

MONITORING = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'


@pytest.fixture(scope="session")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Repository:
    return ranker_repository(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def served(repository: Repository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    """One server for the read-only conformance tests: ranker versions 1-4, labels stable → 1, canary → 2; the
    scorer (classify/regress) version 1."""
    work = tmp_path_factory.mktemp("served")
    config = work / "models.config"
    versions = [1, 2, FAILING_VERSION, SLOW_VERSION]
    config.write_text(
        model_config(
            [
                (RANKER, repository.base_path, versions, {"stable": 1, "canary": 2}),
                (SCORER, repository.scorer_path, [1], {}),
            ]
        )
    )
    (work / "monitoring.config").write_text(MONITORING)
    server = ModelServerProcess(
        [f"--model_config_file={config}", f"--monitoring_config_file={work / 'monitoring.config'}"],
        work / "server.log",
    )
    with server.start(ready_model=RANKER):
        yield server


@pytest.fixture(scope="session")
def channel(served: ModelServerProcess) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(served.grpc_target) as channel:
        yield channel


@pytest.fixture(scope="session")
def prediction(channel: grpc.Channel) -> prediction_service_pb2_grpc.PredictionServiceStub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="session")
def models(channel: grpc.Channel) -> model_service_pb2_grpc.ModelServiceStub:
    return model_service_pb2_grpc.ModelServiceStub(channel)


def read_log(path: Path) -> str:
    return path.read_text(errors="replace")
