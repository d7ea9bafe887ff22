"""The metric sources' pure parts: PromQL's quantile from buckets, TF Serving's exposition parsed and differenced,
placeholders, and Prometheus API answers turned into numbers or reasons."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import pytest

from croupier.operator.modeldeployment.canary.histogram import quantile
from croupier.operator.modeldeployment.canary.prometheus import number, render
from croupier.operator.modeldeployment.canary.runtimestats import (
    ROUTER,
    TF_SERVING,
    Counts,
    delta,
    parse,
    sample_of,
    sum_counts,
)

INF = math.inf


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(1, 10), (2, 20), (INF, 20)], 1.0),
        (0.99, [(1, 10), (2, 20), (INF, 20)], 1.98),
        (0.25, [(1, 10), (2, 20), (INF, 20)], 0.5),  # first bucket: interpolated from 0
        (0.99, [(1, 0), (2, 0), (INF, 5)], 2.0),  # beyond the last finite bound: that bound
        (0.99, [(-1, 3), (0, 3), (INF, 3)], -1.0),  # a first bucket at or below 0 answers its bound
        (0.9, [(2, 20), (1, 10), (INF, 20)], 1.8),  # order does not matter
        (0.9, [(1, 5), (1, 5), (2, 20), (INF, 20)], 1.8),  # equal bounds (two targets) add up
        (0.99, [(1, 0), (INF, 0)], None),  # nothing observed
        (0.99, [(1, 4), (2, 8)], None),  # no +Inf bucket
        (0.99, [(INF, 8)], None),
    ],
)
def test_quantile_follows_promql(q: float, buckets: list[tuple[float, float]], expected: float | None) -> None:
    result = quantile(q, buckets)
    assert result == (None if expected is None else pytest.approx(expected))


def test_quantile_rejects_a_q_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="outside"):
        quantile(1.5, [(1, 1), (INF, 1)])


EXPOSITION = """# TYPE :tensorflow:serving:request_count counter
:tensorflow:serving:request_count{model_name="ranker",status="OK"} 590
:tensorflow:serving:request_count{model_name="ranker",status="INVALID_ARGUMENT"} 7
:tensorflow:serving:request_count{model_name="ranker",status="INTERNAL"} 3
:tensorflow:serving:request_count{model_name="other",status="INTERNAL"} 1000
# TYPE :tensorflow:serving:request_latency histogram
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="REST",le="10"} 0
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="REST",le="18"} 40
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="REST",le="+Inf"} 60
:tensorflow:serving:request_latency_sum{model_name="ranker",API="predict",entrypoint="REST"} 1000
:tensorflow:serving:request_latency_count{model_name="ranker",API="predict",entrypoint="REST"} 60
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="GRPC",le="10"} 10
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="GRPC",le="18"} 20
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="predict",entrypoint="GRPC",le="+Inf"} 30
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="",entrypoint="REST",le="10"} 500
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="",entrypoint="REST",le="18"} 500
:tensorflow:serving:request_latency_bucket{model_name="ranker",API="",entrypoint="REST",le="+Inf"} 500
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="GRPC",le="10"} 99
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="GRPC",le="18"} 99
:tensorflow:serving:request_latency_bucket{model_name="other",API="predict",entrypoint="GRPC",le="+Inf"} 99
"""


def test_parse_reads_tf_servings_names_for_one_model_over_every_entrypoint() -> None:
    counts = parse(EXPOSITION, "ranker", TF_SERVING, {})
    # 500 REST status GETs (API="") are neither requests nor latency: inference successes (90) plus errors (10).
    assert (counts.total, counts.errors) == (100, 10)
    assert counts.buckets == {10.0: 10, 18.0: 60, INF: 90}
    every_series = replace(TF_SERVING, inference_apis=None)
    assert parse(EXPOSITION, "ranker", every_series, {}) == Counts(600, 10, {10.0: 510, 18.0: 560, INF: 590})
    assert parse(EXPOSITION, "ranker", TF_SERVING, {"version": "2"}) == Counts(0, 0, {})


def test_delta_and_sample_give_the_intervals_numbers_in_milliseconds() -> None:
    before = Counts(100, 10, {10.0: 10, 18.0: 60, INF: 90})
    after = Counts(300, 30, {10.0: 10, 18.0: 160, INF: 270})
    interval = delta(before, after)
    assert interval == Counts(200, 20, {10.0: 0, 18.0: 100, INF: 180})
    sample = sample_of([interval, Counts(100, 0, {10.0: 0, 18.0: 0, INF: 0})], TF_SERVING)
    assert sample.requests == 300 and sample.error_rate == pytest.approx(20 / 300)
    # 180 latency observations, rank 178.2 lands in the +Inf bucket: the highest finite bound, 18 us.
    assert sample.p99_latency_milliseconds == pytest.approx(0.018)


ROUTER_POD_A = """# TYPE croupier_router_requests_total counter
croupier_router_requests_total{model="ranker",version="2",label="canary",code="OK"} 70
croupier_router_requests_total{model="ranker",version="2",label="none",code="OK"} 5
croupier_router_requests_total{model="ranker",version="2",label="canary",code="INTERNAL"} 5
croupier_router_requests_total{model="ranker",version="1",label="stable",code="OK"} 900
# TYPE croupier_router_request_duration_seconds histogram
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="0.005"} 40
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="0.01"} 75
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="+Inf"} 75
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="none",le="0.005"} 5
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="none",le="0.01"} 5
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="none",le="+Inf"} 5
"""
ROUTER_POD_B = """# TYPE croupier_router_requests_total counter
croupier_router_requests_total{model="ranker",version="2",label="canary",code="OK"} 19
croupier_router_requests_total{model="ranker",version="2",label="canary",code="UNAVAILABLE"} 1
# TYPE croupier_router_request_duration_seconds histogram
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="0.005"} 0
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="0.01"} 0
croupier_router_request_duration_seconds_bucket{model="ranker",version="2",label="canary",le="+Inf"} 20
"""


def test_several_router_pods_add_up_bucket_by_bucket() -> None:
    a = parse(ROUTER_POD_A, "ranker", ROUTER, {"version": "2"})
    b = parse(ROUTER_POD_B, "ranker", ROUTER, {"version": "2"})
    assert a == Counts(80, 5, {0.005: 45, 0.01: 80, INF: 80})
    assert b == Counts(20, 1, {0.005: 0, 0.01: 0, INF: 20})
    summed = sum_counts([a, b])
    assert summed == Counts(100, 6, {0.005: 45, 0.01: 80, INF: 100})
    assert list(summed.buckets) == [0.005, 0.01, INF]  # still cumulative, in order
    assert sum_counts([]) == Counts(0, 0, {})
    assert sum_counts([a]) == a
    # The sample over both: 100 requests, 6% errors; rank 99 is in the +Inf bucket (pod b's slow answers), so the
    # p99 is the highest finite bound, 10 ms, where pod a alone would say 9.9 ms.
    both, alone = sample_of([a, b], ROUTER), sample_of([a], ROUTER)
    assert (both.requests, both.error_rate) == (100, pytest.approx(0.06))
    assert both.p99_latency_milliseconds == pytest.approx(10.0)
    assert alone.requests == 80 and alone.p99_latency_milliseconds == pytest.approx(5 + 5 * (79.2 - 45) / 35)


def test_delta_refuses_counters_that_went_backwards() -> None:
    assert delta(Counts(100, 10, {INF: 90}), Counts(50, 10, {INF: 95})) is None
    assert delta(Counts(100, 10, {INF: 90}), Counts(150, 10, {INF: 80})) is None
    assert delta(Counts(100, 10, {1.0: 5, INF: 90}), Counts(150, 10, {INF: 95})) is None


def test_a_sample_without_traffic_says_what_is_missing() -> None:
    sample = sample_of([Counts(0, 0, {})], TF_SERVING)
    assert (sample.requests, sample.error_rate, sample.p99_latency_milliseconds) == (0, None, None)
    assert any("no requests" in g for g in sample.gaps) and any("latency" in g for g in sample.gaps)


def test_render_fills_every_placeholder() -> None:
    query = 'sum(increase(x{model="{{model}}",version="{{version}}",ns="{{namespace}}",md="{{name}}"}[{{interval}}]))'
    assert render(query, model="ranker", version=2, namespace="ml", name="r", interval_seconds=60) == (
        'sum(increase(x{model="ranker",version="2",ns="ml",md="r"}[60s]))'
    )


@pytest.mark.parametrize(
    ("payload", "value", "gap"),
    [
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "42"]}]}},
            42,
            None,
        ),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "0.5"]}}, 0.5, None),
        ({"status": "success", "data": {"resultType": "scalar", "result": [1, "+Inf"]}}, INF, None),
        ({"status": "success", "data": {"resultType": "vector", "result": []}}, None, "no series"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"value": [1, "NaN"]}]}}, None, "NaN"),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"value": [1, "1"]}, {"value": [1, "2"]}]},
            },
            None,
            "2 series",
        ),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, None, "matrix"),
        ({"status": "error", "errorType": "bad_data", "error": "parse error"}, None, "bad_data: parse error"),
        ("not json object", None, "an error"),
    ],
)
def test_number_from_a_prometheus_answer(payload: Any, value: float | None, gap: str | None) -> None:
    answer = number(payload)
    assert answer.value == value
    assert (answer.gap is None) if gap is None else (gap in (answer.gap or ""))
