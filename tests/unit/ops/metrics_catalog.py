"""The metrics the code exports, read from the registries themselves (runtime/metrics.py, operator/metrics.py)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from croupier.operator import metrics as operator_metrics
from croupier.runtime.metrics import RuntimeMetrics

# Labels whose values grow with traffic: one series per unit or decision would be unbounded.
UNBOUNDED_LABELS = frozenset({"unit_id", "unitid", "unit", "decision_id", "decisionid", "user", "user_id", "userid"})
# Labels Prometheus adds to every scraped series (target labels); the dashboards and alerts may use them.
TARGET_LABELS = frozenset({"job", "instance", "namespace", "pod", "container", "service", "endpoint"})


@dataclass(frozen=True)
class Metric:
    name: str
    """The name as exposed (counters with ``_total``; histograms by their base name)."""
    type: str
    labels: tuple[str, ...]
    source: str
    help: str

    @property
    def series(self) -> frozenset[str]:
        """Every series name this metric exposes."""
        if self.type == "histogram":
            return frozenset(f"{self.name}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        return frozenset({self.name})


def _from_registry(registry: CollectorRegistry, source: str) -> list[Metric]:
    found = []
    for collector in list(registry._collector_to_names):
        if isinstance(collector, MetricWrapperBase):
            kind = collector._type
            name = collector._name + ("_total" if kind == "counter" else "")
            labels = tuple(collector._labelnames)
            found.append(Metric(name, kind, labels, source, collector._documentation))
            continue
        for family in collector.collect():
            labels = tuple(sorted({k for s in family.samples for k in s.labels} - {"le"}))
            name = family.name + ("_total" if family.type == "counter" else "")
            found.append(Metric(name, family.type, labels, source, family.documentation))
    return found


def exported() -> dict[str, Metric]:
    """Every metric of the runtime and the operator by exposed name."""
    runtime = RuntimeMetrics()
    # The collectors report their labels once they have counts.
    runtime.decision_counts(["example-arm"], "example-policy")
    runtime.experiment_assignments["example-variant"] += 1
    metrics = _from_registry(runtime.registry, "runtime") + _from_registry(operator_metrics.REGISTRY, "operator")
    return {m.name: m for m in metrics}


def series_names() -> frozenset[str]:
    return frozenset(name for metric in exported().values() for name in metric.series)
