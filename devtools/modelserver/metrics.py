"""TF Serving's request metrics and its Prometheus text rendering (tensorflow_serving/util/prometheus_exporter.cc).

``/tensorflow/serving/request_count`` (counter; labels model_name, status) counts every request, status being the
canonical code's name (``OK``, ``INVALID_ARGUMENT``, ...). ``/tensorflow/serving/request_latency`` (histogram of
microseconds; labels model_name, API, entrypoint; buckets 10·1.8^i, i < 33, then +Inf) records successful requests
only. TF Serving names them for Prometheus by replacing every character outside [a-zA-Z0-9_] with ':' — hence
``:tensorflow:serving:request_count`` — writes no ``_total`` suffix and no HELP lines, and has no version label.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass, field

from croupier.modelserver.errors import Code

REQUEST_COUNT = ":tensorflow:serving:request_count"
REQUEST_LATENCY = ":tensorflow:serving:request_latency"
LATENCY_BUCKETS: tuple[float, ...] = tuple(10.0 * 1.8**i for i in range(33))


def _number(value: float) -> str:
    """absl::StrCat of a double: six significant digits, as TF Serving prints bucket limits and sums."""
    return f"{value:g}"


def _label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def add(self, value: float) -> None:
        # TF's histogram puts a value equal to a limit in the next bucket (limits are exclusive upper bounds).
        self.buckets[bisect.bisect_right(LATENCY_BUCKETS, value)] += 1
        self.total += value


class ServingMetrics:
    """One per process; ``render`` is the Prometheus page."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._latency: dict[tuple[str, str, str], _Histogram] = {}

    def record(self, model_name: str, api: str, entrypoint: str, code: Code, latency_micros: float) -> None:
        with self._lock:
            key = (model_name, code.name)
            self._counts[key] = self._counts.get(key, 0) + 1
            if code == Code.OK:
                self._latency.setdefault((model_name, api, entrypoint), _Histogram()).add(latency_micros)

    def render(self) -> str:
        with self._lock:
            counts = sorted(self._counts.items())
            latency = sorted(self._latency.items())
        lines = [f"# TYPE {REQUEST_COUNT} counter"]
        for (model, status), value in counts:
            lines.append(f'{REQUEST_COUNT}{{model_name="{_label_value(model)}",status="{status}"}} {value}')
        lines.append(f"# TYPE {REQUEST_LATENCY} histogram")
        for (model, api, entrypoint), histogram in latency:
            labels = f'model_name="{_label_value(model)}",API="{_label_value(api)}",entrypoint="{entrypoint}"'
            cumulative = 0
            for index, count in enumerate(histogram.buckets):
                cumulative += count
                limit = _number(LATENCY_BUCKETS[index]) if index < len(LATENCY_BUCKETS) else "+Inf"
                lines.append(f'{REQUEST_LATENCY}_bucket{{{labels},le="{limit}"}} {cumulative}')
            lines.append(f"{REQUEST_LATENCY}_sum{{{labels}}} {_number(histogram.total)}")
            lines.append(f"{REQUEST_LATENCY}_count{{{labels}}} {cumulative}")
        return "\n".join(lines) + "\n"
