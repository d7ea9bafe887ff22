"""RuntimeStats against the local TF Serving (croupier-modelserver) on real SavedModels: one server per version as in
routing mode GatewayAPI, the canary a version whose graph fails a known share of inputs with a TensorFlow assertion.
The interval's counts are exactly the predictions sent and the failures the model raised (status GETs left out), and
the analysis fails."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from support.savedmodels import DIMS, ERROR_FRACTION, FAILING_VERSION, RANKER, model_config

from croupier.api.modeldeployment import AnalysisResult, CanaryAnalysis
from croupier.modelserver.process import ModelServerProcess
from croupier.modelserver.savedmodels import failing_row, write_ranker
from croupier.operator.modeldeployment.canary.engine import judge
from croupier.operator.modeldeployment.canary.measurement import Measurement, Window
from croupier.operator.modeldeployment.canary.runtimestats import METRICS_PATH, RuntimeStats, Targets

MONITORING = 'prometheus_config { enable: true, path: "/monitoring/prometheus/metrics" }\n'
STABLE = 1
REQUESTS = 200
PROBES = 50


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[int, ModelServerProcess]]:
    """TF Serving with version 1 (stable) and one with the failing version (canary), started side by side."""
    base = tmp_path_factory.mktemp("models") / RANKER
    write_ranker(base, STABLE)
    write_ranker(base, FAILING_VERSION, weights_version=STABLE, error_fraction=ERROR_FRACTION)
    servers: dict[int, ModelServerProcess] = {}
    for version in (STABLE, FAILING_VERSION):
        work = tmp_path_factory.mktemp(f"v{version}")
        (work / "models.config").write_text(model_config([(RANKER, base, [version], {})]))
        (work / "monitoring.config").write_text(MONITORING)
        flags = [
            f"--model_config_file={work / 'models.config'}",
            f"--monitoring_config_file={work / 'monitoring.config'}",
        ]
        servers[version] = ModelServerProcess(flags, work / "server.log")
    try:
        with ThreadPoolExecutor(len(servers)) as pool:
            for started in pool.map(lambda s: s.start(ready_model=RANKER), servers.values()):
                assert started.process is not None
        yield servers
    finally:
        for server in servers.values():
            server.stop()


def test_runtime_stats_measures_a_failing_savedmodel_version(servers: dict[int, ModelServerProcess]) -> None:
    analysis = CanaryAnalysis.model_validate(
        {"maxErrorRateIncrease": 0.05, "maxP99LatencyRatio": 20, "minRequests": 100}
    )
    targets = {v: Targets((s.rest_url + METRICS_PATH,)) for v, s in servers.items()}
    rng = np.random.default_rng(7)
    firsts = rng.uniform(0, 1, size=REQUESTS)
    expected_failures = sum(failing_row(float(f), ERROR_FRACTION) for f in firsts)
    start = datetime.now(UTC)

    async def interval() -> tuple[object, dict[int, int]]:
        async with httpx.AsyncClient() as client:
            stats = RuntimeStats(RANKER, client)
            assert await stats.scrape(list(targets.values()), start) == {}
            codes: dict[int, int] = {}
            for server in servers.values():
                for first in firsts:
                    context = [float(first)] + [0.5] * (DIMS - 1)
                    body = {"instances": [{"context": context, "arms": [[0.1] * DIMS, [0.2] * DIMS]}]}
                    answer = await client.post(f"{server.rest_url}/v1/models/{RANKER}:predict", json=body, timeout=30)
                    codes[answer.status_code] = codes.get(answer.status_code, 0) + 1
                for _ in range(PROBES):  # REST status GETs, as a probe sends: TF Serving counts them, the analysis not
                    assert (await client.get(f"{server.rest_url}/v1/models/{RANKER}", timeout=30)).status_code == 200
            window = Window(start, datetime.now(UTC) + timedelta(seconds=1), FAILING_VERSION, STABLE, True)
            return await stats.measure(window, targets[FAILING_VERSION], targets[STABLE]), codes

    observation, codes = asyncio.run(interval())
    assert isinstance(observation, Measurement) and observation.stable is not None, observation
    assert 0 < expected_failures < REQUESTS and codes == {200: 2 * REQUESTS - expected_failures, 400: expected_failures}
    assert observation.canary.requests == REQUESTS and observation.stable.requests == REQUESTS
    assert observation.canary.error_rate == pytest.approx(expected_failures / REQUESTS)
    assert observation.stable.error_rate == 0
    assert (observation.canary.p99_latency_milliseconds or 0) > 0 and (
        observation.stable.p99_latency_milliseconds or 0
    ) > 0
    verdict = judge(analysis, observation, Window(start, start, FAILING_VERSION, STABLE, True), 0, 10)
    assert verdict.result == AnalysisResult.FAILED and "maxErrorRateIncrease 0.05" in (verdict.message or "")
