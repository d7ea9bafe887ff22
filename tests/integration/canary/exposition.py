"""A real metrics endpoint for the canary tests: prometheus_client's HTTP server exposing TF Serving's request count
and latency histogram (names, labels, microsecond buckets 10 * 1.8^i) with values the test sets."""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from wsgiref.simple_server import WSGIServer, make_server

from prometheus_client.exposition import ThreadingWSGIServer, _SilentHandler, make_wsgi_app
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LATENCY_BUCKETS = tuple(10.0 * 1.8**i for i in range(33))
PATH = "/monitoring/prometheus/metrics"


@dataclass
class _Model:
    counts: dict[str, float] = field(default_factory=dict)
    buckets: list[float] = field(default_factory=lambda: [0.0] * (len(LATENCY_BUCKETS) + 1))
    total_micros: float = 0.0


class TfServingMetrics(Collector):
    """The numbers one TF Serving pod would expose; ``serve`` puts them on a real HTTP endpoint."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, _Model] = {}
        self._server: WSGIServer | None = None

    def record(self, model: str, *, ok: int = 0, errors: int = 0, latency_ms: float = 10.0) -> None:
        """``ok`` successful requests taking ``latency_ms`` each and ``errors`` failed ones (TF Serving times
        successful requests only)."""
        with self._lock:
            m = self._models.setdefault(model, _Model())
            m.counts["OK"] = m.counts.get("OK", 0) + ok
            if errors:
                m.counts["INTERNAL"] = m.counts.get("INTERNAL", 0) + errors
            if ok:
                m.buckets[bisect.bisect_right(LATENCY_BUCKETS, latency_ms * 1000)] += ok
                m.total_micros += ok * latency_ms * 1000

    def restart(self, model: str) -> None:
        """The pod restarted: its counters start from zero."""
        with self._lock:
            self._models.pop(model, None)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            models = {name: (dict(m.counts), list(m.buckets), m.total_micros) for name, m in self._models.items()}
        count = Metric(REQUEST_COUNT, "The total number of requests.", "counter")
        latency = Metric(REQUEST_LATENCY, "Distribution of wall time (in microseconds).", "histogram")
        for name, (counts, buckets, total) in sorted(models.items()):
            for status, value in sorted(counts.items()):
                count.add_sample(REQUEST_COUNT, {"model_name": name, "status": status}, value)
            labels = {"model_name": name, "API": "predict", "entrypoint": "REST"}
            cumulative = 0.0
            for index, value in enumerate(buckets):
                cumulative += value
                le = f"{LATENCY_BUCKETS[index]:g}" if index < len(LATENCY_BUCKETS) else "+Inf"
                latency.add_sample(f"{REQUEST_LATENCY}_bucket", {**labels, "le": le}, cumulative)
            latency.add_sample(f"{REQUEST_LATENCY}_sum", labels, total)
            latency.add_sample(f"{REQUEST_LATENCY}_count", labels, cumulative)
        yield count
        yield latency

    def serve(self) -> str:
        """Start the endpoint on a free loopback port; returns its metrics URL.

        TF Serving answers the Prometheus text format whatever the scraper accepts; prometheus_client would
        negotiate OpenMetrics with Prometheus (and escape the ':' of TF Serving's names), so the Accept header is
        dropped before its app sees the request."""
        registry = CollectorRegistry()
        registry.register(self)
        app = make_wsgi_app(registry)

        def text_only(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            environ.pop("HTTP_ACCEPT", None)
            result: Iterable[bytes] = app(environ, start_response)
            return result

        self._server = make_server(
            "127.0.0.1", 0, text_only, server_class=ThreadingWSGIServer, handler_class=_SilentHandler
        )
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}{PATH}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
