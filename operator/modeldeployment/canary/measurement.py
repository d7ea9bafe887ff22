"""What a metrics source hands the canary engine: one interval's numbers per version, or why there are none."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class VersionSample:
    """One version's traffic over one interval. ``None`` (or NaN) means the source has no such number, not zero;
    ``gaps`` says why (e.g. "p99 query returned no series"), for the InsufficientData message."""

    requests: float | None
    error_rate: float | None = None
    p99_latency_milliseconds: float | None = None
    gaps: tuple[str, ...] = ()


@dataclass(frozen=True)
class Measurement:
    """The canary's numbers for an interval, and the stable version's when the analysis compares with it."""

    canary: VersionSample
    stable: VersionSample | None = None


@dataclass(frozen=True)
class InsufficientData:
    """The source could not measure the interval (unreachable, no series, NaN, no baseline scrape): never a pass."""

    reason: str


Observation = Measurement | InsufficientData


@dataclass(frozen=True)
class Window:
    """An interval the engine wants measured: [start, end) for the canary (and stable) version of one model."""

    start: datetime
    end: datetime
    canary_version: int
    stable_version: int
    compare_with_stable: bool

    @property
    def seconds(self) -> int:
        return max(1, round((self.end - self.start).total_seconds()))


def missing(value: float | None) -> bool:
    """No usable number: absent or NaN (Prometheus answers NaN for 0/0, e.g. an error rate over no requests)."""
    return value is None or math.isnan(value)
