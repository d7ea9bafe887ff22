"""RuntimeStats: an interval measured from TF Serving's own Prometheus endpoint, without a Prometheus server.

TF Serving (``--monitoring_config_file`` with ``prometheus_config { enable: true }``) serves
``/monitoring/prometheus/metrics`` with
- ``:tensorflow:serving:request_count{model_name, status}``: every request, ``status`` the canonical code's name
  (``OK``, ``INVALID_ARGUMENT``, ...);
- ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``: a histogram of microseconds, successful
  requests only.
It has no version label: each version's numbers come from its own pods (routing mode GatewayAPI runs one Deployment
per version). A router that counts per version with the same metric shapes is read with ``Targets.labels``.

The counters are cumulative, so an interval is the difference between a scrape taken at (or just after) the interval's
start and one taken at its end, summed over a version's pods (``sum_counts``: several router replicas, or several TF
Serving pods, each count only what they served). The source keeps each target's recent scrapes in memory; the
reconcile calls ``scrape`` on every pass so a baseline exists when an interval opens. A target without a scrape since
the interval began, one that cannot be scraped, one whose counters went backwards (a restart), or one scraped when the
interval began that is no longer among the targets at its end (a pod gone, its requests with it) makes the interval
InsufficientData, never a pass.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
from prometheus_client.parser import text_string_to_metric_families

from .histogram import quantile
from .measurement import InsufficientData, Measurement, Observation, VersionSample, Window

METRICS_PATH = "/monitoring/prometheus/metrics"
# How long before an interval's start a scrape may be taken and still open it (reconcile passes are not instant).
BASELINE_SLACK = timedelta(seconds=5)
MAX_SCRAPES_PER_TARGET = 64
# A target not scraped for this long is forgotten (pods come and go; an interval is at most a day long).
FORGET_AFTER = timedelta(hours=25)


@dataclass(frozen=True)
class MetricNames:
    """The request counter and latency histogram to read, and how to tell a success and scale latency to ms.

    ``inference_apis``: TF Serving counts every REST request, status and metadata GETs included (its latency histogram
    has them under ``API=""``), so probes would pad the request count with fast successes. When set, only latency
    series of these APIs count, and an interval's requests are its timed inference successes plus its errors. None:
    every series counts and requests are the request counter's total."""

    requests: str = ":tensorflow:serving:request_count"
    latency: str = ":tensorflow:serving:request_latency"
    model_label: str = "model_name"
    status_label: str = "status"
    ok_status: str = "OK"
    latency_unit_milliseconds: float = 0.001  # TF Serving records microseconds
    api_label: str = "API"
    inference_apis: frozenset[str] | None = frozenset(
        {"Predict", "Classify", "Regress", "MultiInference", "predict", "classify", "regress"}
    )


TF_SERVING = MetricNames()
# The model router (routing mode VersionLabels, ``GET /metrics`` of the router's REST port): one series per version,
# read with ``Targets.labels={"version": "<n>"}``; it counts inference requests only and times errors too.
ROUTER = MetricNames(
    requests="croupier_router_requests",
    latency="croupier_router_request_duration_seconds",
    model_label="model",
    status_label="code",
    latency_unit_milliseconds=1000.0,  # seconds
    inference_apis=None,
)


@dataclass(frozen=True)
class Targets:
    """The metrics URLs of one version's pods (``http://<pod-ip>:8501/monitoring/prometheus/metrics``), and label
    values every series must carry besides the model's name (e.g. ``{"version": "2"}`` for a per-version router)."""

    urls: tuple[str, ...]
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Counts:
    """One target's cumulative numbers for the model at one moment."""

    total: float
    errors: float
    buckets: Mapping[float, float]


@dataclass(frozen=True)
class Scrape:
    time: datetime
    counts: Counts


def parse(text: str, model: str, names: MetricNames, labels: Mapping[str, str]) -> Counts:
    """The model's request and error totals and latency buckets (summed over the inference APIs and entrypoints) from
    one exposition."""
    total = errors = 0.0
    buckets: dict[float, float] = {}
    wanted = {names.model_label: model, **labels}
    apis = names.inference_apis
    for family in text_string_to_metric_families(text):
        if family.name not in (names.requests, names.latency):
            continue
        for sample in family.samples:
            if any(sample.labels.get(k) != v for k, v in wanted.items()):
                continue
            if family.name == names.requests:
                total += sample.value
                if sample.labels.get(names.status_label) != names.ok_status:
                    errors += sample.value
            elif sample.name.endswith("_bucket") and (apis is None or sample.labels.get(names.api_label) in apis):
                bound = float(sample.labels["le"])
                buckets[bound] = buckets.get(bound, 0.0) + sample.value
    if apis is not None:
        total = buckets.get(math.inf, 0.0) + errors
    return Counts(total, errors, buckets)


def delta(before: Counts, after: Counts) -> Counts | None:
    """``after - before``, or None when a counter went backwards (the target restarted in between)."""
    if after.total < before.total or after.errors < before.errors:
        return None
    buckets = {}
    for bound, count in after.buckets.items():
        earlier = before.buckets.get(bound, 0.0)
        if count < earlier:
            return None
        buckets[bound] = count - earlier
    if any(bound not in after.buckets for bound in before.buckets):
        return None
    return Counts(after.total - before.total, after.errors - before.errors, buckets)


def sum_counts(counts: Sequence[Counts]) -> Counts:
    """Several targets' numbers (one version's pods over one interval) as one: totals, errors and each latency
    bucket added up bound by bound (cumulative buckets of a common layout stay cumulative)."""
    merged: dict[float, float] = {}
    for c in counts:
        for bound, count in c.buckets.items():
            merged[bound] = merged.get(bound, 0.0) + count
    return Counts(sum(c.total for c in counts), sum(c.errors for c in counts), dict(sorted(merged.items())))


def sample_of(counts: Sequence[Counts], names: MetricNames) -> VersionSample:
    """A version's interval numbers from its targets' deltas."""
    summed = sum_counts(counts)
    total, errors, merged = summed.total, summed.errors, summed.buckets
    gaps: list[str] = []
    error_rate: float | None = errors / total if total > 0 else None
    if error_rate is None:
        gaps.append("no requests, so no error rate")
    p99 = quantile(0.99, merged.items())
    if p99 is None:
        gaps.append("no latency observations (TF Serving times successful requests only)")
    p99_ms = None if p99 is None else p99 * names.latency_unit_milliseconds
    return VersionSample(requests=total, error_rate=error_rate, p99_latency_milliseconds=p99_ms, gaps=tuple(gaps))


class RuntimeStats:
    """Measures intervals from the pods' metrics endpoints. One per ModelDeployment (it keeps scrapes in memory)."""

    def __init__(
        self,
        model: str,
        client: httpx.AsyncClient,
        *,
        names: MetricNames = TF_SERVING,
        timeout_seconds: float = 5.0,
    ) -> None:
        self.model = model
        self.names = names
        self._client = client
        self._timeout = timeout_seconds
        self._scrapes: dict[tuple[str, tuple[tuple[str, str], ...]], deque[Scrape]] = {}

    async def scrape(self, targets: Sequence[Targets], now: datetime) -> dict[str, str]:
        """Scrape every target and keep the result; returns the failures by URL (for logs)."""
        jobs = [(url, t.labels) for t in targets for url in t.urls]
        results = await asyncio.gather(*(self._scrape_one(url, labels, now) for url, labels in jobs))
        return {url: error for (url, _), error in zip(jobs, results, strict=True) if error is not None}

    async def measure(self, window: Window, canary: Targets, stable: Targets | None) -> Observation:
        """Scrape now (the interval's end) and take the difference from each target's scrape at the interval's start.
        ``stable`` is needed only when the window compares with the stable version."""
        groups = [("canary", canary)] + ([("stable", stable)] if window.compare_with_stable and stable else [])
        if window.compare_with_stable and stable is None:
            return InsufficientData(f"no targets for stable version {window.stable_version}")
        for role, targets in groups:
            if not targets.urls:
                return InsufficientData(f"no {role} pods to scrape")
        gone = self._gone(window, [t for _, t in groups] + ([stable] if stable is not None else []))
        if gone:
            return InsufficientData(
                f"{gone} was scraped when the interval began but is no longer a target (a pod gone or not ready): "
                "its requests cannot be counted"
            )
        # Baselines first: the scrape at the end must not become its own baseline.
        baselines = {
            (url, role): self._baseline(url, targets.labels, window.start, window.end)
            for role, targets in groups
            for url in targets.urls
        }
        failures = await self.scrape([t for _, t in groups], window.end)
        if failures:
            url, error = next(iter(failures.items()))
            return InsufficientData(f"scrape of {url} failed: {error}")
        samples: dict[str, VersionSample] = {}
        for role, targets in groups:
            deltas = []
            for url in targets.urls:
                before = baselines[(url, role)]
                if before is None:
                    return InsufficientData(
                        f"no scrape of {url} since the interval began at {window.start.isoformat()} (first interval "
                        "after an operator restart, or a new pod)"
                    )
                after = self._latest(url, targets.labels)
                assert after is not None
                difference = delta(before.counts, after.counts)
                if difference is None:
                    return InsufficientData(f"counters of {url} went backwards during the interval (a restart)")
                deltas.append(difference)
            samples[role] = sample_of(deltas, self.names)
        return Measurement(canary=samples["canary"], stable=samples.get("stable"))

    async def _scrape_one(self, url: str, labels: Mapping[str, str], now: datetime) -> str | None:
        try:
            response = await self._client.get(url, timeout=self._timeout)
            response.raise_for_status()
            counts = parse(response.text, self.model, self.names, labels)
        except (httpx.HTTPError, ValueError, KeyError) as error:
            return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        history = self._scrapes.setdefault(_key(url, labels), deque(maxlen=MAX_SCRAPES_PER_TARGET))
        history.append(Scrape(now, counts))
        for key in [k for k, h in self._scrapes.items() if h and h[-1].time < now - FORGET_AFTER]:
            del self._scrapes[key]
        return None

    def _gone(self, window: Window, current: Sequence[Targets]) -> str | None:
        """A target with these labels that opened the interval (a baseline scrape) but is not a target now."""
        urls = {url for t in current for url in t.urls}
        label_sets = {tuple(sorted(t.labels.items())) for t in current}
        for (url, labels), history in self._scrapes.items():
            if url in urls or labels not in label_sets:
                continue
            if any(window.start - BASELINE_SLACK <= s.time < window.end for s in history):
                return url
        return None

    def _baseline(self, url: str, labels: Mapping[str, str], start: datetime, end: datetime) -> Scrape | None:
        """The earliest kept scrape taken no earlier than ``start - BASELINE_SLACK`` and before ``end``."""
        for scrape in self._scrapes.get(_key(url, labels), ()):
            if start - BASELINE_SLACK <= scrape.time < end:
                return scrape
        return None

    def _latest(self, url: str, labels: Mapping[str, str]) -> Scrape | None:
        history = self._scrapes.get(_key(url, labels))
        return history[-1] if history else None


def _key(url: str, labels: Mapping[str, str]) -> tuple[str, tuple[tuple[str, str], ...]]:
    return url, tuple(sorted(labels.items()))
