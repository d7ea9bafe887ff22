"""The metric and label names a PromQL expression uses (enough of PromQL for the project's own queries; the syntax
itself is checked by promtool in tests/integration/ops/test_prometheus.py)."""

from __future__ import annotations

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}")
_MATCHER_LABEL = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENTIFIER = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b")
# Functions, aggregations and keywords: identifiers that are not metric names.
_WORDS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "rate",
        "irate",
        "increase",
        "delta",
        "idelta",
        "deriv",
        "histogram_quantile",
        "label_values",
        "label_replace",
        "label_join",
        "absent",
        "absent_over_time",
        "abs",
        "ceil",
        "floor",
        "round",
        "clamp",
        "clamp_max",
        "clamp_min",
        "vector",
        "scalar",
        "time",
        "sort",
        "sort_desc",
        "changes",
        "resets",
        "predict_linear",
        "avg_over_time",
        "min_over_time",
        "max_over_time",
        "sum_over_time",
        "count_over_time",
        "last_over_time",
        "quantile_over_time",
        "exp",
        "ln",
        "log2",
        "log10",
        "sqrt",
        "timestamp",
        "inf",
        "nan",
    ]
)


def _without_strings(expr: str) -> str:
    return _STRING.sub('""', expr)


def metric_names(expr: str) -> set[str]:
    """Identifiers used as metric names (outside label matchers, groupings, strings and durations)."""
    text = _without_strings(expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = _GROUPING.sub(" ", text)  # by (...), on (...), ...
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    text = re.sub(r"\b\d+(?:\.\d+)?(?:e[+-]?\d+)?\b", " ", text)  # numbers
    return {name for name in _IDENTIFIER.findall(text) if name not in _WORDS}


def selector_labels(expr: str) -> dict[str, set[str]]:
    """Label names matched in each metric's selector: {"up": {"job"}}."""
    found: dict[str, set[str]] = {}
    for name, matchers in _SELECTOR.findall(expr):
        found.setdefault(name, set()).update(_MATCHER_LABEL.findall(_without_strings(matchers)))
    return found


def grouping_labels(expr: str) -> set[str]:
    labels: set[str] = set()
    for inner in _GROUPING.findall(_without_strings(expr)):
        labels.update(part.strip() for part in inner.split(",") if part.strip())
    return labels
