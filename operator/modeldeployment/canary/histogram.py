"""Quantiles from cumulative histogram buckets, the way PromQL's histogram_quantile computes them (Prometheus 2.42,
promql/quantile.go), so that RuntimeStats and a Prometheus source report the same p99 for the same counts.

With buckets (upper bound b_i, cumulative count c_i) sorted by bound, the last one +Inf, and N = c_last:
rank r = q * N; i = the first bucket with c_i >= r;
- i is the +Inf bucket: the answer is the highest finite bound (the histogram cannot say more);
- otherwise: b_(i-1) + (b_i - b_(i-1)) * (r - c_(i-1)) / (c_i - c_(i-1)), with b_(-1) = 0 and c_(-1) = 0
  (linear interpolation inside the bucket; a first bucket with a bound <= 0 answers its bound).
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def quantile(q: float, buckets: Iterable[tuple[float, float]]) -> float | None:
    """The q-quantile of cumulative ``(upper bound, count)`` buckets; ``None`` when nothing was observed or the
    buckets lack their +Inf bucket."""
    if not 0 <= q <= 1:
        raise ValueError(f"quantile {q} outside [0, 1]")
    merged: dict[float, float] = {}
    for bound, count in buckets:
        merged[bound] = merged.get(bound, 0.0) + count
    ordered = sorted(merged.items())
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return None
    # Cumulative counts can dip when scrapes of several targets race; PromQL makes them monotonic the same way.
    bounds = [b for b, _ in ordered]
    counts: list[float] = []
    for _, count in ordered:
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total <= 0:
        return None
    rank = q * total
    index = next(i for i, c in enumerate(counts) if c >= rank)
    if index == len(counts) - 1:
        return bounds[-2]
    if index == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[index], counts[index]
    if index > 0:
        start = bounds[index - 1]
        count -= counts[index - 1]
        rank -= counts[index - 1]
    return start + (end - start) * (rank / count)
