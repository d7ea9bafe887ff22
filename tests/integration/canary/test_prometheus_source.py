"""The Prometheus source against a real Prometheus (Debian's 2.42) scraping real endpoints that expose TF Serving's
metrics: pass, fail, no series, NaN and an unreachable server; its p99 agrees with RuntimeStats' on the same pods."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from croupier.api.modeldeployment import AnalysisResult, CanaryAnalysis, ModelDeploymentSpec, RolloutState
from croupier.operator.modeldeployment.canary.engine import advance, judge
from croupier.operator.modeldeployment.canary.measurement import InsufficientData, Measurement, Observation, Window
from croupier.operator.modeldeployment.canary.prometheus import PrometheusMetrics
from croupier.operator.modeldeployment.canary.runtimestats import RuntimeStats, Targets

from .conftest import Pod, Prometheus, free_port

REQUESTS = ':tensorflow:serving:request_count{model_name="{{model}}",version="{{version}}"}'
ERRORS = ':tensorflow:serving:request_count{model_name="{{model}}",version="{{version}}",status!="OK"}'
BUCKETS = (
    ':tensorflow:serving:request_latency_bucket{model_name="{{model}}",version="{{version}}",API=~"Predict|predict"}'
)
QUERIES = {
    "requests": "sum(increase(" + REQUESTS + "[{{interval}}]))",
    # `or vector(0)`: TF Serving creates a status series on its first error; no error series is a rate of 0.
    "errorRate": "(sum(increase("
    + ERRORS
    + "[{{interval}}])) or vector(0)) / sum(increase("
    + REQUESTS
    + "[{{interval}}]))",
    "p99LatencyMilliseconds": "histogram_quantile(0.99, sum by (le) (increase(" + BUCKETS + "[{{interval}}]))) / 1000",
}
WINDOW_SECONDS = 30


def analysis(url: str, **thresholds: Any) -> CanaryAnalysis:
    return CanaryAnalysis.model_validate(
        {
            **thresholds,
            "minRequests": 100,
            "intervalSeconds": 10,
            "source": {"type": "Prometheus", "prometheus": {"url": url, "queries": QUERIES}},
        }
    )


def window(canary: int = 2, compare: bool = True) -> Window:
    end = datetime.now(UTC)
    return Window(end - timedelta(seconds=WINDOW_SECONDS), end, canary, 1, compare)


def measure(spec: CanaryAnalysis, model: str, w: Window) -> Observation:
    async def run() -> Observation:
        assert spec.source.prometheus is not None
        async with httpx.AsyncClient() as client:
            source = PrometheusMetrics(spec.source.prometheus, client, model=model, namespace="ml", name="ranker")
            return await source.measure(w)

    return asyncio.run(run())


def traffic(prometheus: Prometheus, pods: dict[int, Pod], model: str, load: dict[int, dict[str, float]]) -> None:
    """A first success and error per pod, then ``load`` per version, each seen by Prometheus.

    increase() cannot count a series' first value (it has no earlier sample), so the status series must exist before
    the interval's traffic, as they do on a pod that has served for a while (docs/canary.md)."""
    for pod in pods.values():
        pod.metrics.record(model, ok=1, errors=1, latency_ms=1)
    for version in pods:
        prometheus.wait_for(f'sum(:tensorflow:serving:request_count{{model_name="{model}",version="{version}"}})', 2)
    time.sleep(1.5)  # at least one more scrape of the baseline
    for version, numbers in load.items():
        pods[version].metrics.record(model, **numbers)  # type: ignore[arg-type]
    for version, numbers in load.items():
        total = 2 + numbers.get("ok", 0) + numbers.get("errors", 0)
        prometheus.wait_for(
            f'sum(:tensorflow:serving:request_count{{model_name="{model}",version="{version}"}})', total
        )


def test_a_healthy_canary_passes_and_prometheus_agrees_with_runtime_stats(
    prometheus: Prometheus, pods: dict[int, Pod]
) -> None:
    spec = analysis(
        prometheus.url,
        maxErrorRate=0.01,
        maxP99LatencyMilliseconds=250,
        maxErrorRateIncrease=0.01,
        maxP99LatencyRatio=1.5,
    )
    stats_window_start = datetime.now(UTC)
    targets = {v: Targets((pod.url,)) for v, pod in pods.items()}

    async def scrape(stats: RuntimeStats) -> None:
        assert not await stats.scrape(list(targets.values()), stats_window_start)

    async def runtime_measure(stats: RuntimeStats, w: Window) -> Observation:
        return await stats.measure(w, targets[2], targets[1])

    async def both() -> tuple[Observation, Observation]:
        async with httpx.AsyncClient() as client:
            stats = RuntimeStats("healthy", client)
            await scrape(stats)
            await asyncio.to_thread(
                traffic,
                prometheus,
                pods,
                "healthy-2",
                {2: {"ok": 1000, "errors": 2, "latency_ms": 20}, 1: {"ok": 3000, "errors": 3, "latency_ms": 18}},
            )
            for version, numbers in {2: (1000, 2, 20.0), 1: (3000, 3, 18.0)}.items():
                pods[version].metrics.record("healthy", ok=numbers[0], errors=numbers[1], latency_ms=numbers[2])
            w = window()
            from_stats = await runtime_measure(stats, Window(stats_window_start, w.end, 2, 1, True))
            assert spec.source.prometheus is not None
            source = PrometheusMetrics(spec.source.prometheus, client, model="healthy-2", namespace="ml", name="r")
            return await source.measure(w), from_stats

    from_prometheus, from_stats = asyncio.run(both())
    assert isinstance(from_prometheus, Measurement) and isinstance(from_stats, Measurement), (
        from_prometheus,
        from_stats,
    )
    verdict = judge(spec, from_prometheus, window(), 0, 10)
    assert verdict.result == AnalysisResult.PASSED, verdict.message
    canary, stable = from_prometheus.canary, from_prometheus.stable
    assert stable is not None
    # increase() extrapolates each series toward the window's edges (a series with a small first value further):
    # Prometheus' counts are close to, not equal to, the traffic sent; RuntimeStats' differences are exact.
    assert 1002 <= (canary.requests or 0) <= 1002 * 1.5 and 3003 <= (stable.requests or 0) <= 3003 * 1.5
    assert 2 / 1002 <= (canary.error_rate or 0) <= 2 * 2 / 1002
    # Same buckets, same formula: Prometheus's histogram_quantile and RuntimeStats' quantile give the same p99.
    assert from_stats.canary.requests == 1002 and from_stats.canary.error_rate == pytest.approx(2 / 1002)
    assert canary.p99_latency_milliseconds == pytest.approx(from_stats.canary.p99_latency_milliseconds, rel=1e-6)
    assert from_stats.stable is not None
    assert stable.p99_latency_milliseconds == pytest.approx(from_stats.stable.p99_latency_milliseconds, rel=1e-6)
    assert 11.5 < (canary.p99_latency_milliseconds or 0) <= 20.823  # inside TF Serving's bucket holding 20 ms


def test_a_failing_canary_fails_and_the_engine_rolls_it_back(prometheus: Prometheus, pods: dict[int, Pod]) -> None:
    spec = analysis(prometheus.url, maxErrorRate=0.01, maxP99LatencyMilliseconds=250)
    traffic(prometheus, pods, "failing", {2: {"ok": 900, "errors": 100, "latency_ms": 400}})
    observation = measure(spec, "failing", window(compare=False))
    assert isinstance(observation, Measurement)
    verdict = judge(spec, observation, window(compare=False), 0, 10)
    assert verdict.result == AnalysisResult.FAILED
    assert "maxErrorRate 0.01" in (verdict.message or "") and "maxP99LatencyMilliseconds 250" in (verdict.message or "")

    md = ModelDeploymentSpec.model_validate(
        {
            "model": {"name": "failing", "storageUri": "file:///models/failing"},
            "stable": {"version": 1},
            "canary": {
                "version": 2,
                "steps": [{"weight": 10, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}],
                "analysis": {**spec.to_wire(), "failureLimit": 0},
            },
        }
    )
    start = datetime.now(UTC) - timedelta(seconds=WINDOW_SECONDS)
    first = advance(md, None, None, start, True).rollout
    outcome = advance(md, first, observation, start + timedelta(seconds=WINDOW_SECONDS), True)
    assert outcome.rollout is not None and outcome.rollout.state == RolloutState.ROLLED_BACK and outcome.weight == 0
    assert outcome.rollout.rollback is not None and "maxErrorRate" in outcome.rollout.rollback.reason


def test_no_series_is_insufficient_data(prometheus: Prometheus, pods: dict[int, Pod]) -> None:
    spec = analysis(prometheus.url, maxErrorRate=0.01)
    traffic(prometheus, pods, "unseen", {2: {"ok": 500}})
    observation = measure(spec, "unseen", window(canary=3, compare=False))  # no pod serves version 3
    verdict = judge(spec, observation, window(canary=3, compare=False), 0, 10)
    assert verdict.result == AnalysisResult.INSUFFICIENT_DATA
    assert "requests query for version 3: no series" in (verdict.message or "")


def test_nan_is_insufficient_data_never_a_pass(prometheus: Prometheus, pods: dict[int, Pod]) -> None:
    # Every request failed, so TF Serving timed none: histogram_quantile over no observations is NaN.
    spec = analysis(prometheus.url, maxP99LatencyMilliseconds=250)
    traffic(prometheus, pods, "untimed", {2: {"errors": 500}})
    observation = measure(spec, "untimed", window(compare=False))
    assert isinstance(observation, Measurement) and observation.canary.p99_latency_milliseconds is None
    verdict = judge(spec, observation, window(compare=False), 0, 10)
    assert verdict.result == AnalysisResult.INSUFFICIENT_DATA
    assert "p99LatencyMilliseconds query for version 2: NaN" in (verdict.message or "")


def test_a_query_prometheus_rejects_is_insufficient_data(prometheus: Prometheus) -> None:
    spec = CanaryAnalysis.model_validate(
        {
            "maxErrorRate": 0.01,
            "source": {
                "type": "Prometheus",
                "prometheus": {"url": prometheus.url, "queries": {"requests": "sum(", "errorRate": "vector(0)"}},
            },
        }
    )
    verdict = judge(spec, measure(spec, "any", window(compare=False)), window(compare=False), 0, 10)
    assert verdict.result == AnalysisResult.INSUFFICIENT_DATA and "bad_data" in (verdict.message or "")


def test_an_unreachable_prometheus_is_insufficient_data() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    spec = analysis(url, maxErrorRate=0.01)
    observation = measure(spec, "ranker", window())
    assert isinstance(observation, InsufficientData)
    assert f"Prometheus at {url} unreachable" in observation.reason and "ConnectError" in observation.reason
    assert judge(spec, observation, window(), 0, 10).result == AnalysisResult.INSUFFICIENT_DATA
