"""RuntimeStats against real endpoints exposing TF Serving's metrics: exact interval differences summed over pods,
pass and fail, and InsufficientData for a missing baseline, a restarted pod, an unreachable pod and no traffic."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from croupier.api.modeldeployment import AnalysisResult, CanaryAnalysis
from croupier.operator.modeldeployment.canary.engine import judge
from croupier.operator.modeldeployment.canary.measurement import InsufficientData, Measurement, Observation, Window
from croupier.operator.modeldeployment.canary.runtimestats import RuntimeStats, Targets

from .exposition import TfServingMetrics

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ANALYSIS = CanaryAnalysis.model_validate(
    {"maxErrorRate": 0.01, "maxP99LatencyMilliseconds": 100, "maxP99LatencyRatio": 1.5, "minRequests": 100}
)


@pytest.fixture
def fleet() -> Iterator[dict[str, TfServingMetrics]]:
    """Two canary pods and one stable pod."""
    pods = {name: TfServingMetrics() for name in ("canary-a", "canary-b", "stable")}
    yield pods
    for pod in pods.values():
        pod.stop()


def run_interval(
    fleet: dict[str, TfServingMetrics],
    urls: dict[str, str],
    traffic: dict[str, dict[str, float]],
    *,
    baseline: bool = True,
    between: str | None = None,
) -> Observation:
    """Scrape at T0 (unless ``baseline`` is False), send ``traffic``, measure [T0, T0 + 60 s]."""
    canary = Targets((urls["canary-a"], urls["canary-b"]))
    stable = Targets((urls["stable"],))

    async def go() -> Observation:
        async with httpx.AsyncClient() as client:
            stats = RuntimeStats("ranker", client)
            if baseline:
                assert await stats.scrape([canary, stable], T0) == {}
            if between == "restart":
                fleet["canary-b"].restart("ranker")
            if between == "stop":
                fleet["canary-b"].stop()
            for pod, numbers in traffic.items():
                fleet[pod].record("ranker", **numbers)  # type: ignore[arg-type]
            end_canary = Targets((urls["canary-a"],)) if between == "drop" else canary
            return await stats.measure(Window(T0, T0 + timedelta(seconds=60), 2, 1, True), end_canary, stable)

    return asyncio.run(go())


def serve(fleet: dict[str, TfServingMetrics]) -> dict[str, str]:
    urls = {name: pod.serve() for name, pod in fleet.items()}
    for pod in fleet.values():  # traffic before the interval: served, but not part of it
        pod.record("ranker", ok=5000, errors=500, latency_ms=900)
        pod.record("other-model", ok=100, errors=100)
    return urls


def test_an_interval_is_the_exact_difference_summed_over_the_pods(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(
        fleet,
        urls,
        {
            "canary-a": {"ok": 300, "errors": 1, "latency_ms": 30},
            "canary-b": {"ok": 200, "errors": 1, "latency_ms": 30},
            "stable": {"ok": 2000, "errors": 4, "latency_ms": 25},
        },
    )
    assert isinstance(observation, Measurement) and observation.stable is not None
    assert observation.canary.requests == 502 and observation.canary.error_rate == pytest.approx(2 / 502)
    assert observation.stable.requests == 2004
    # 30 ms = 30000 us lies in TF Serving's bucket (20823, 37481.3]: p99 interpolates inside it.
    assert 20.823 < (observation.canary.p99_latency_milliseconds or 0) <= 37.4813
    verdict = judge(ANALYSIS, observation, Window(T0, T0, 2, 1, True), 0, 10)
    assert verdict.result == AnalysisResult.PASSED, verdict.message


def test_a_slow_and_failing_canary_fails(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(
        fleet,
        urls,
        {
            "canary-a": {"ok": 300, "errors": 30, "latency_ms": 400},
            "stable": {"ok": 2000, "latency_ms": 25},
        },
    )
    verdict = judge(ANALYSIS, observation, Window(T0, T0, 2, 1, True), 0, 10)
    assert verdict.result == AnalysisResult.FAILED
    message = verdict.message or ""
    assert "maxErrorRate" in message and "maxP99LatencyMilliseconds" in message and "x stable's" in message


def test_a_canary_failing_every_request_fails_without_latency_numbers(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-a": {"errors": 400}, "stable": {"ok": 2000}})
    assert isinstance(observation, Measurement) and observation.canary.p99_latency_milliseconds is None
    verdict = judge(ANALYSIS, observation, Window(T0, T0, 2, 1, True), 0, 10)
    assert verdict.result == AnalysisResult.FAILED and "error rate 1 > maxErrorRate" in (verdict.message or "")


def test_too_little_traffic_is_insufficient(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-a": {"ok": 40}, "canary-b": {"ok": 40}, "stable": {"ok": 900}})
    verdict = judge(ANALYSIS, observation, Window(T0, T0, 2, 1, True), 0, 10)
    assert verdict.result == AnalysisResult.INSUFFICIENT_DATA
    assert "canary served 80 requests < minRequests 100" in (verdict.message or "")


def test_no_baseline_scrape_is_insufficient(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-a": {"ok": 900}}, baseline=False)
    assert isinstance(observation, InsufficientData) and "since the interval began" in observation.reason


def test_a_restarted_pod_is_insufficient(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-b": {"ok": 900}}, between="restart")
    assert isinstance(observation, InsufficientData) and "went backwards" in observation.reason
    assert urls["canary-b"] in observation.reason


def test_an_unreachable_pod_is_insufficient(fleet: dict[str, TfServingMetrics]) -> None:
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-a": {"ok": 900}}, between="stop")
    assert isinstance(observation, InsufficientData)
    assert observation.reason.startswith(f"scrape of {urls['canary-b']} failed: ConnectError")


def test_a_pod_that_opened_the_interval_but_is_gone_at_its_end_is_insufficient(
    fleet: dict[str, TfServingMetrics],
) -> None:
    """canary-b served part of the interval and then left the targets (deleted, or not ready): the sum of the pods
    still there would undercount the canary's requests."""
    urls = serve(fleet)
    observation = run_interval(fleet, urls, {"canary-a": {"ok": 900}, "canary-b": {"ok": 10}}, between="drop")
    assert isinstance(observation, InsufficientData)
    assert observation.reason.startswith(f"{urls['canary-b']} was scraped when the interval began")
