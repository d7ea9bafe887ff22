"""The Prometheus source: the spec's PromQL, placeholders filled in, against Prometheus's HTTP API.

Each query is an instant query (``GET /api/v1/query``) evaluated at the interval's end (``time=``), so a repeated
measurement of the same window gives the same answer. A query must return one number: a scalar, or a vector of one
series. An unreachable server, an error answer, no series, several series or NaN leave that number missing with the
reason; the engine turns missing numbers into InsufficientData (never a pass), unless another threshold already
failed on numbers that are present.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

import httpx

from croupier.api.modeldeployment import PrometheusSource

from .measurement import InsufficientData, Measurement, Observation, VersionSample, Window

QUERY_PATH = "/api/v1/query"


@dataclass(frozen=True)
class Answer:
    value: float | None
    gap: str | None = None


def render(query: str, *, model: str, version: int, namespace: str, name: str, interval_seconds: int) -> str:
    """The query with its placeholders replaced ({{model}}, {{version}}, {{namespace}}, {{name}}, {{interval}})."""
    values = {
        "model": model,
        "version": str(version),
        "namespace": namespace,
        "name": name,
        "interval": f"{interval_seconds}s",
    }
    for key, value in values.items():
        query = query.replace("{{" + key + "}}", value)
    return query


def number(payload: object) -> Answer:
    """One number from an /api/v1/query answer, or why there is none."""
    if not isinstance(payload, dict) or payload.get("status") != "success":
        error = payload.get("error") if isinstance(payload, dict) else None
        kind = payload.get("errorType") if isinstance(payload, dict) else None
        return Answer(None, f"Prometheus answered {kind or 'an error'}: {error if error else repr(payload)}")
    data = payload.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        raw = result[1] if isinstance(result, list) and len(result) == 2 else None
    elif kind == "vector":
        if not result:
            return Answer(None, "no series")
        if len(result) > 1:
            return Answer(None, f"{len(result)} series, expected one (aggregate the query, e.g. with sum)")
        raw = (result[0].get("value") or [None, None])[1]
    else:
        return Answer(None, f"a {kind} result, expected a scalar or one series")
    try:
        value = float(str(raw))
    except ValueError:
        return Answer(None, f"unreadable value {raw!r}")
    if math.isnan(value):
        return Answer(None, "NaN")
    return Answer(value)


class PrometheusMetrics:
    """Measures intervals with the spec's queries; stateless apart from its HTTP client."""

    def __init__(
        self,
        source: PrometheusSource,
        client: httpx.AsyncClient,
        *,
        model: str,
        namespace: str,
        name: str,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.source = source
        self.model, self.namespace, self.name = model, namespace, name
        self._client = client
        self._timeout = timeout_seconds

    async def measure(self, window: Window) -> Observation:
        versions = [window.canary_version] + ([window.stable_version] if window.compare_with_stable else [])
        samples = await asyncio.gather(*(self._sample(window, v) for v in versions))
        for sample in samples:
            if isinstance(sample, InsufficientData):
                return sample
        canary = samples[0]
        stable = samples[1] if len(samples) > 1 else None
        assert isinstance(canary, VersionSample) and (stable is None or isinstance(stable, VersionSample))
        return Measurement(canary=canary, stable=stable)

    async def _sample(self, window: Window, version: int) -> VersionSample | InsufficientData:
        queries = self.source.queries
        named = {"requests": queries.requests}
        if queries.error_rate:
            named["errorRate"] = queries.error_rate
        if queries.p99_latency_milliseconds:
            named["p99LatencyMilliseconds"] = queries.p99_latency_milliseconds
        try:
            answers = dict(
                zip(
                    named,
                    await asyncio.gather(*(self._query(q, window, version) for q in named.values())),
                    strict=True,
                )
            )
        except httpx.HTTPError as error:
            return InsufficientData(f"Prometheus at {self.source.url} unreachable: {type(error).__name__}: {error}")
        gaps = tuple(f"{key} query for version {version}: {a.gap}" for key, a in answers.items() if a.gap)
        absent = Answer(None)
        return VersionSample(
            requests=answers["requests"].value,
            error_rate=answers.get("errorRate", absent).value,
            p99_latency_milliseconds=answers.get("p99LatencyMilliseconds", absent).value,
            gaps=gaps,
        )

    async def _query(self, query: str, window: Window, version: int) -> Answer:
        promql = render(
            query,
            model=self.model,
            version=version,
            namespace=self.namespace,
            name=self.name,
            interval_seconds=window.seconds,
        )
        response = await self._client.get(
            self.source.url.rstrip("/") + QUERY_PATH,
            params={"query": promql, "time": f"{window.end.timestamp():.3f}"},
            timeout=self._timeout,
        )
        if response.status_code >= 500:
            response.raise_for_status()
        try:
            payload = response.json()
        except ValueError:
            return Answer(None, f"HTTP {response.status_code}, not a Prometheus API answer")
        return number(payload)
