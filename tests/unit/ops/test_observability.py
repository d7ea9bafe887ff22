"""Dashboards, alerts and the metric table name only what the code exports, with bounded labels."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from unit.ops.metrics_catalog import TARGET_LABELS, UNBOUNDED_LABELS, exported, series_names
from unit.ops.promql_names import grouping_labels, metric_names, selector_labels

ROOT = Path(__file__).resolve().parents[3]
DASHBOARDS = sorted((ROOT / "config" / "grafana").glob("*.json"))
RULES = ROOT / "config" / "prometheus" / "croupier.rules.yaml"
METRICS_DOC = ROOT / "docs" / "metrics.md"
# Series Prometheus itself makes for every target.
PROMETHEUS_SERIES = frozenset({"up"})


def _labels_by_series() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {name: set() for name in PROMETHEUS_SERIES}
    for metric in exported().values():
        for series in metric.series:
            found[series] = set(metric.labels) | ({"le"} if series.endswith("_bucket") else set())
    return found


def _dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    queries = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            queries.append((panel["title"], target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", variable["query"]["query"])
            assert inner, f"variable {variable['name']}: only label_values(selector, label) queries are supported"
            queries.append((f"variable {variable['name']}", inner.group(1)))
    return queries


def _rule_queries() -> list[tuple[str, str]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


def _check(where: str, expr: str) -> list[str]:
    known = _labels_by_series()
    problems = []
    names = metric_names(expr)
    if not names:
        problems.append(f"{where}: no metric in {expr!r}")
    for name in sorted(names - set(known)):
        problems.append(f"{where}: {name} is not exported by runtime/metrics.py or operator/metrics.py")
    used: set[str] = set()
    for name, labels in selector_labels(expr).items():
        if name in known:
            used |= known[name]
            for label in sorted(labels - known[name] - TARGET_LABELS):
                problems.append(f"{where}: {name} has no label {label}")
    for name in names & set(known):
        used |= known[name]
    for label in sorted(grouping_labels(expr) - used - TARGET_LABELS):
        problems.append(f"{where}: groups by {label}, which none of its metrics has")
    return problems


def test_the_checks_find_an_unknown_metric_and_label() -> None:
    assert _check("x", "rate(croupier_decisions_total[5m])") == []
    assert _check("x", "rate(croupier_decision_total[5m])")  # a typo
    assert _check("x", 'sum by (unit) (rate(croupier_decisions_total{arm="a"}[5m]))')
    assert _check("x", 'croupier_store_errors_total{code="x"}')


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_every_dashboard_query_uses_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    queries = _dashboard_queries(dashboard)
    assert len(queries) >= 10
    problems = [p for where, expr in queries for p in _check(f"{path.name} / {where}", expr)]
    assert problems == []


def test_dashboards_exist_and_have_unique_panel_ids() -> None:
    assert DASHBOARDS, "config/grafana/ has no dashboard"
    for path in DASHBOARDS:
        ids = [p["id"] for p in json.loads(path.read_text())["panels"]]
        assert len(ids) == len(set(ids)), path.name


def test_every_alert_uses_exported_metrics() -> None:
    queries = _rule_queries()
    assert {alert for alert, _ in queries} >= {
        "CroupierRuntimeDown",
        "CroupierStoreErrors",
        "CroupierDecideLatencyHigh",
        "CroupierOperatorReconcileErrors",
        "CroupierCanaryRolledBack",
        "CroupierExperimentSampleRatioMismatch",
        "CroupierExperimentGuardrailViolated",
    }
    assert [p for alert, expr in queries for p in _check(alert, expr)] == []


def test_no_metric_has_an_unbounded_label() -> None:
    for metric in exported().values():
        bad = {label for label in metric.labels if label.lower().replace("-", "_") in UNBOUNDED_LABELS}
        assert not bad, f"{metric.name} has unbounded labels {bad}"


def _table() -> dict[str, dict[str, str]]:
    rows = {}
    for line in METRICS_DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`croupier_"):
            rows[cells[0].strip("`")] = {
                "type": cells[1],
                "labels": cells[2],
                "source": cells[3],
                "meaning": cells[4],
            }
    return rows


def test_the_metric_table_lists_every_metric_with_its_labels() -> None:
    table = _table()
    metrics = exported()
    assert sorted(table) == sorted(metrics), "docs/metrics.md and the registries differ"
    for name, metric in metrics.items():
        row = table[name]
        labels = ", ".join(f"`{label}`" for label in metric.labels) or "—"
        assert (row["type"], row["labels"], row["source"]) == (metric.type, labels, metric.source), name
        assert row["meaning"], name


def test_series_names_cover_histogram_parts() -> None:
    names = series_names()
    assert "croupier_decide_duration_seconds_bucket" in names
    assert "croupier_decisions_total" in names and "croupier_decisions" not in names
