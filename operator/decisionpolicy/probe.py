"""Read a runtime's ``GET /v1/stats``: the per-arm table and the generation it serves."""

from __future__ import annotations

import time
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from croupier.api.wire import STATS_PATH, StatsResponse
from croupier.operator import metrics


@dataclass(frozen=True)
class ProbeResult:
    url: str
    stats: StatsResponse | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stats is not None


async def probe_stats(http: httpx.AsyncClient, base_url: str) -> ProbeResult:
    url = f"{base_url}{STATS_PATH}"
    started = time.perf_counter()
    try:
        response = await http.get(url)
    except httpx.HTTPError as error:
        metrics.PROBES.labels(outcome="unreachable").inc()
        return ProbeResult(url=url, error=f"GET {url} failed: {type(error).__name__}: {error}".rstrip(": "))
    finally:
        metrics.PROBE_SECONDS.observe(time.perf_counter() - started)
    if response.status_code != 200:
        metrics.PROBES.labels(outcome="unreachable").inc()
        return ProbeResult(url=url, error=f"GET {url} answered HTTP {response.status_code}")
    try:
        stats = StatsResponse.model_validate_json(response.content)
    except ValidationError as error:
        metrics.PROBES.labels(outcome="invalid").inc()
        return ProbeResult(url=url, error=f"GET {url} returned an unexpected body: {error.error_count()} errors")
    metrics.PROBES.labels(outcome="ok").inc()
    return ProbeResult(url=url, stats=stats)
