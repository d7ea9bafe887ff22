"""Alerts and dashboard queries through Prometheus's own tools (Debian's prometheus 2.42: promtool, cached)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from integration.ops.tools import ROOT, bin_dir, run

RULES = ROOT / "config" / "prometheus" / "croupier.rules.yaml"
RULE_TESTS = ROOT / "config" / "prometheus" / "tests" / "croupier.rules.test.yaml"
# Grafana's variables as a query would see them once substituted.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$namespace": ".*", "$policy": ".*"}


@pytest.fixture(scope="module")
def promtool() -> Path:
    return bin_dir("hack/prometheus/install.sh") / "promtool"


def test_alert_rules_are_valid(promtool: Path) -> None:
    done = run([promtool, "check", "rules", RULES])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_alert_rule_unit_tests_pass(promtool: Path) -> None:
    done = run([promtool, "test", "rules", RULE_TESTS])
    assert done.returncode == 0, done.stdout + done.stderr


def test_rule_tests_fail_when_an_alert_does_not_fire(promtool: Path, tmp_path: Path) -> None:
    """The rule tests can fail: a threshold moved beyond the test's latency makes them fail."""
    broken = RULES.read_text().replace("> 0.01", "> 0.05")
    assert broken != RULES.read_text()
    (tmp_path / "croupier.rules.yaml").write_text(broken)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text(RULE_TESTS.read_text())
    done = run([promtool, "test", "rules", tmp_path / "tests" / "t.yaml"])
    assert done.returncode != 0 and "CroupierDecideLatencyHigh" in done.stdout + done.stderr


def test_every_dashboard_query_is_valid_promql(promtool: Path, tmp_path: Path) -> None:
    rules = []
    for path in sorted((ROOT / "config" / "grafana").glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in GRAFANA_VARIABLES.items():
                    expr = expr.replace(variable, value)
                rules.append({"record": f"dashboard:panel{panel['id']}:{target['refId']}", "expr": expr})
    assert len(rules) >= 10
    file = tmp_path / "dashboard.rules.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run([promtool, "check", "rules", file])
    assert done.returncode == 0, done.stdout + done.stderr
