"""The transport-free part both adapters call: route a request, count its answer."""

from __future__ import annotations

from typing import Any

from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.modelrouter.routing import Route, Router, RoutingTable


class RouterService:
    def __init__(self, metrics: RuntimeMetrics, table: RoutingTable | None = None) -> None:
        self.metrics = metrics
        self.router = Router()
        self._weights: set[str] = set()
        # A route's metric children, looked up once: prometheus_client's labels() takes a lock and builds a tuple on
        # every call. Bounded: routes carry only the table's names and ``other``.
        self._counters: dict[tuple[Route, str], Any] = {}
        self._histograms: dict[Route, Any] = {}
        self.replace(table or RoutingTable())

    def replace(self, table: RoutingTable) -> None:
        self.router.replace(table)
        for model in self._weights - set(table.models):
            self.metrics.router_canary_weight.remove(model)
        for model, route in table.models.items():
            self.metrics.router_canary_weight.labels(model).set(route.canary_weight)
        self._weights = set(table.models)

    def route(self, model: str, version: int | None, label: str | None, unit: str | None) -> Route:
        return self.router.route(model, version, label, unit)

    def record(self, route: Route, code: str, seconds: float) -> None:
        counter = self._counters.get((route, code))
        if counter is None:
            counter = self.metrics.router_requests.labels(route.model, route.version, route.label, code)
            self._counters[(route, code)] = counter
        counter.inc()
        histogram = self._histograms.get(route)
        if histogram is None:
            histogram = self.metrics.router_latency.labels(route.model, route.version, route.label)
            self._histograms[route] = histogram
        histogram.observe(seconds)

    def record_reload(self, outcome: str) -> None:
        self.metrics.router_table_reloads.labels(outcome).inc()
