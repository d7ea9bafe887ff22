"""Per-object gauges derived from the status the operator computes, so dashboards and alerts see what `kubectl get`
shows: every object's conditions, and what a Kind declares beyond them (a canary's weight, an experiment's SRM
p-value).

Series carry the object's namespace and name as ``object_namespace`` / ``object_name`` (Prometheus's own
``namespace`` label is the operator pod's). The number of series grows with the number of objects and their
variants or versions, never with traffic. A label set an object no longer has (a condition's reason changed, a
variant was removed, the object was deleted) is removed from its gauge, so no stale series stays at its last value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client import Gauge

from croupier.api.common import ApiModel, Condition
from croupier.operator import metrics

if TYPE_CHECKING:
    from croupier.operator.core.controller import Target

OBJECT_LABELS = ("object_namespace", "object_name")


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a per-object gauge; ``labels`` are the gauge's labels after ``object_namespace, object_name``."""

    gauge: Gauge
    value: float
    labels: tuple[str, ...] = ()


def condition_samples(kind: str, status: ApiModel) -> list[Sample]:
    """One series per condition with its status and reason as labels (value 1), like kube-state-metrics."""
    conditions: Sequence[Condition] = getattr(status, "conditions", None) or ()
    return [
        Sample(metrics.OBJECT_CONDITIONS, 1.0, (kind, c.type, str(c.status), c.reason))
        for c in sorted(conditions, key=lambda c: c.type)
    ]


class ObjectMetrics:
    """The label sets published per object, so that the ones an object stops having are removed."""

    def __init__(self) -> None:
        self._published: dict[str, dict[tuple[Gauge, tuple[str, ...]], float]] = {}

    def publish(self, target: Target, samples: Sequence[Sample]) -> None:
        """Set the object's series to exactly ``samples`` (later samples for the same series win)."""
        wanted: dict[tuple[Gauge, tuple[str, ...]], float] = {}
        for sample in samples:
            wanted[(sample.gauge, (target.namespace, target.name, *sample.labels))] = sample.value
        previous = self._published.get(target.uid, {})
        for key in previous.keys() - wanted.keys():
            _remove(*key)
        for (gauge, labels), value in wanted.items():
            if previous.get((gauge, labels)) != value:
                gauge.labels(*labels).set(value)
        self._published[target.uid] = wanted

    def forget(self, uid: str) -> None:
        """The object is gone: remove every series it had."""
        for key in self._published.pop(uid, {}):
            _remove(*key)

    def published(self, uid: str) -> Mapping[tuple[Gauge, tuple[str, ...]], float]:
        return dict(self._published.get(uid, {}))


def _remove(gauge: Gauge, labels: tuple[str, ...]) -> None:
    with contextlib.suppress(KeyError):  # already removed
        gauge.remove(*labels)
