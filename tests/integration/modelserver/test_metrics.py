"""The Prometheus endpoint shows TF Serving's own series after requests over both APIs."""

from __future__ import annotations

import itertools
import re

import grpc
import httpx
import numpy as np
import pytest
import tensorflow as tf
from support.savedmodels import RANKER
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.modelserver.process import ModelServerProcess

SERIES = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>[^}]*)\})? (?P<value>\S+)$")


def scrape(server: ModelServerProcess) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics", timeout=10).text
    series = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        match = SERIES.match(line)
        assert match, line
        labels = frozenset(tuple(p.split("=", 1)) for p in re.findall(r'[A-Za-z_]+="[^"]*"', match["labels"] or ""))
        series[(match["name"], frozenset((k, v.strip('"')) for k, v in labels))] = float(match["value"])
    return series


def value(series: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return series.get((name, frozenset(labels.items())), 0.0)


def test_request_count_and_latency_series(
    served: ModelServerProcess, prediction: prediction_service_pb2_grpc.PredictionServiceStub
) -> None:
    before = scrape(served)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.model_spec.version_label = "stable"
    request.inputs["context"].CopyFrom(tf.make_tensor_proto(np.ones((1, 4), np.float32)))
    request.inputs["arms"].CopyFrom(tf.make_tensor_proto(np.ones((1, 2, 4), np.float32)))
    for _ in range(3):
        prediction.Predict(request, timeout=30)
    request.model_spec.version_label = "nope"
    with pytest.raises(grpc.RpcError):
        prediction.Predict(request, timeout=30)
    body = {"instances": [{"context": [1, 1, 1, 1], "arms": [[1, 1, 1, 1]]}]}
    assert httpx.post(f"{served.rest_url}/v1/models/{RANKER}:predict", json=body, timeout=30).status_code == 200
    after = scrape(served)

    count = ":tensorflow:serving:request_count"
    assert (
        value(after, count, model_name=RANKER, status="OK") - value(before, count, model_name=RANKER, status="OK") == 4
    )
    invalid = value(after, count, model_name=RANKER, status="INVALID_ARGUMENT")
    assert invalid - value(before, count, model_name=RANKER, status="INVALID_ARGUMENT") == 1
    latency = ":tensorflow:serving:request_latency"
    grpc_labels = {"model_name": RANKER, "API": "Predict", "entrypoint": "GRPC"}
    assert value(after, f"{latency}_count", **grpc_labels) - value(before, f"{latency}_count", **grpc_labels) == 3
    assert value(after, f"{latency}_bucket", **grpc_labels, le="+Inf") == value(
        after, f"{latency}_count", **grpc_labels
    )
    assert value(after, f"{latency}_sum", **grpc_labels) > 0
    rest_labels = {"model_name": RANKER, "API": "predict", "entrypoint": "REST"}
    assert value(after, f"{latency}_count", **rest_labels) - value(before, f"{latency}_count", **rest_labels) == 1
    buckets = sorted(
        (float(dict(k[1])["le"]), v)
        for k, v in after.items()
        if k[0] == f"{latency}_bucket"
        and dict(k[1])["le"] != "+Inf"
        and {n: v for n, v in k[1] if n != "le"} == grpc_labels
    )
    assert buckets[0][0] == 10 and len(buckets) == 33
    assert all(a[1] <= b[1] for a, b in itertools.pairwise(buckets))  # cumulative
    assert not any("version" in dict(k[1]) for k in after)  # TF Serving has no version label
