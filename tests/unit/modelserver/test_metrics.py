"""TF Serving's metric names, labels, buckets and text rendering."""

from __future__ import annotations

from croupier.modelserver.errors import Code
from croupier.modelserver.metrics import LATENCY_BUCKETS, ServingMetrics


def test_rendering_matches_tf_servings_exporter() -> None:
    metrics = ServingMetrics()
    metrics.record("ranker", "Predict", "GRPC", Code.OK, 12.0)
    metrics.record("ranker", "Predict", "GRPC", Code.OK, 10.0)  # a value equal to a limit goes to the next bucket
    metrics.record("ranker", "Predict", "GRPC", Code.INVALID_ARGUMENT, 5.0)  # counted, no latency
    metrics.record('we"ird', "predict", "REST", Code.NOT_FOUND, 1.0)
    lines = metrics.render().splitlines()
    assert lines[0] == "# TYPE :tensorflow:serving:request_count counter"
    assert ':tensorflow:serving:request_count{model_name="ranker",status="OK"} 2' in lines
    assert ':tensorflow:serving:request_count{model_name="ranker",status="INVALID_ARGUMENT"} 1' in lines
    assert ':tensorflow:serving:request_count{model_name="we\\"ird",status="NOT_FOUND"} 1' in lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    prefix = ':tensorflow:serving:request_latency_bucket{model_name="ranker",API="Predict",entrypoint="GRPC",'
    buckets = [line for line in lines if line.startswith(prefix)]
    assert len(buckets) == 34
    assert buckets[0] == prefix + 'le="10"} 0'
    assert buckets[1] == prefix + 'le="18"} 2'
    assert buckets[2] == prefix + 'le="32.4"} 2'
    assert buckets[-1] == prefix + 'le="+Inf"} 2'
    assert ':tensorflow:serving:request_latency_sum{model_name="ranker",API="Predict",entrypoint="GRPC"} 22' in lines
    assert ':tensorflow:serving:request_latency_count{model_name="ranker",API="Predict",entrypoint="GRPC"} 2' in lines
    assert not any("REST" in line and "latency" in line for line in lines)  # failed requests have no latency


def test_buckets_are_tf_servings_exponential_buckets() -> None:
    assert len(LATENCY_BUCKETS) == 33
    assert LATENCY_BUCKETS[0] == 10.0 and abs(LATENCY_BUCKETS[1] - 18.0) < 1e-9
    assert abs(LATENCY_BUCKETS[-1] / LATENCY_BUCKETS[-2] - 1.8) < 1e-9
