"""--enable_batching with a BatchingParameters file (max_batch_size is honoured) and --rest_api_timeout_in_ms."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from support.savedmodels import SLOW_VERSION, Repository
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.modelserver.process import ModelServerProcess

TIMEOUT_MS = 20  # below the slow version's 60 ms


@pytest.fixture(scope="module")
def limited(repository: Repository, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    work = tmp_path_factory.mktemp("limited")
    shutil.copytree(repository.base_path / str(SLOW_VERSION), work / "slow" / "1")
    batching = work / "batching.config"
    batching.write_text("max_batch_size { value: 2 } batch_timeout_micros { value: 0 } num_batch_threads { value: 1 }")
    server = ModelServerProcess(
        [
            "--model_name=slow",
            f"--model_base_path={work / 'slow'}",
            "--enable_batching",
            f"--batching_parameters_file={batching}",
            f"--rest_api_timeout_in_ms={TIMEOUT_MS}",
        ],
        work / "server.log",
    )
    with server.start(ready_model="slow"):
        yield server


def request(rows: int) -> predict_pb2.PredictRequest:
    message = predict_pb2.PredictRequest()
    message.model_spec.name = "slow"
    message.inputs["context"].CopyFrom(tf.make_tensor_proto(np.full((rows, 4), 0.7, np.float32)))
    message.inputs["arms"].CopyFrom(tf.make_tensor_proto(np.ones((rows, 2, 4), np.float32)))
    return message


def test_max_batch_size_is_enforced(limited: ModelServerProcess) -> None:
    with grpc.insecure_channel(limited.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        assert tf.make_ndarray(stub.Predict(request(2), timeout=30).outputs["scores"]).shape == (2, 2)
        with pytest.raises(grpc.RpcError) as error:
            stub.Predict(request(3), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Task size 3 is larger than maximum input batch size 2"


def test_rest_requests_longer_than_the_timeout_answer_504(limited: ModelServerProcess) -> None:
    body = {"instances": [{"context": [0.7, 0, 0, 0], "arms": [[1, 1, 1, 1]]}]}
    answer = httpx.post(f"{limited.rest_url}/v1/models/slow:predict", json=body, timeout=30)
    assert answer.status_code == 504
    assert answer.json() == {"error": "Deadline Exceeded"}
    status = httpx.get(f"{limited.rest_url}/v1/models/slow", timeout=30)  # fast requests are unaffected
    assert status.status_code == 200


def test_without_a_monitoring_config_there_is_no_prometheus_page(limited: ModelServerProcess) -> None:
    # No --monitoring_config_file: TF Serving serves no Prometheus page, the path is just an unknown REST path.
    answer = httpx.get(f"{limited.rest_url}/monitoring/prometheus/metrics", timeout=30)
    assert answer.status_code == 400
    assert answer.json() == {"error": "Malformed request: GET /monitoring/prometheus/metrics"}
