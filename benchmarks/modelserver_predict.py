"""Predict latency of the local model server (croupier-modelserver) on the test ranker, over REST and gRPC.

    uv run python benchmarks/modelserver_predict.py [--requests 1000] [--batch 1] [--arms 8]

One server process, one client issuing sequential requests (no concurrency) after a warm-up, with the request bodies
the stock clients send: the `tensorflow_serving.apis` PredictionService stub over one gRPC channel, and a keep-alive
httpx client posting TF Serving's row format to `/v1/models/ranker:predict`. In the same run, a direct in-process call
of the SavedModel's `serving_default` function (the TensorFlow floor, no server). The model router's overhead
benchmark compares against these numbers. Prints a markdown table of p50/p90/p99 in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.modelserver.process import ModelServerProcess
from croupier.modelserver.savedmodels import write_ranker


def measure(call: Callable[[], object], requests: int, warmup: int = 50) -> list[float]:
    for _ in range(warmup):
        call()
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--arms", type=int, default=8)
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    context = rng.random((args.batch, 4)).astype(np.float32)
    arms = rng.random((args.batch, args.arms, 4)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="modelserver-bench-") as work:
        base = Path(work) / "ranker"
        write_ranker(base, 1)
        function = tf.saved_model.load(str(base / "1")).signatures["serving_default"]
        server = ModelServerProcess(["--model_name=ranker", f"--model_base_path={base}"], Path(work) / "server.log")
        with server.start(ready_model="ranker"):
            request = predict_pb2.PredictRequest()
            request.model_spec.name = "ranker"
            request.inputs["context"].CopyFrom(tf.make_tensor_proto(context))
            request.inputs["arms"].CopyFrom(tf.make_tensor_proto(arms))
            body = {
                "instances": [{"context": c.tolist(), "arms": a.tolist()} for c, a in zip(context, arms, strict=True)]
            }
            with grpc.insecure_channel(server.grpc_target) as channel, httpx.Client(base_url=server.rest_url) as rest:
                stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

                def over_rest() -> object:
                    answer = rest.post("/v1/models/ranker:predict", json=body)
                    answer.raise_for_status()
                    return answer

                results = {
                    "in-process TF call (no server)": measure(
                        lambda: function(context=tf.constant(context), arms=tf.constant(arms)), args.requests
                    ),
                    "gRPC Predict (stock stub)": measure(lambda: stub.Predict(request, timeout=30), args.requests),
                    "REST :predict (row format)": measure(over_rest, args.requests),
                }
    print(f"Predict on the ranker (batch {args.batch}, {args.arms} arms, d=4), {args.requests} sequential requests\n")
    print("| path | p50 ms | p90 ms | p99 ms | mean ms |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, times in results.items():
        print(
            f"| {name} | {percentile(times, 50):.2f} | {percentile(times, 90):.2f} | {percentile(times, 99):.2f} "
            f"| {statistics.fmean(times):.2f} |"
        )


if __name__ == "__main__":
    main()
