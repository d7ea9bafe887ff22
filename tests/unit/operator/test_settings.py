"""The operator's settings: documented completely (docs/operations.md) and shown with defaults by --help."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from croupier.operator import cli
from croupier.operator.settings import OperatorSettings, default_of, env_name

pytestmark = pytest.mark.unit

OPERATIONS = Path(__file__).resolve().parents[3] / "docs" / "operations.md"


def _table() -> dict[str, str]:
    """Variable -> default column of the settings table."""
    section = OPERATIONS.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(CROUPIER_OPERATOR_[A-Z_]+)` \| ([^|]*) \|", section, flags=re.MULTILINE)
    return {name: default.strip() for name, default in rows}


def test_every_setting_is_in_the_operations_table_and_nothing_else() -> None:
    assert set(_table()) == {env_name(name) for name in OperatorSettings.model_fields}


def test_the_table_shows_the_literal_defaults() -> None:
    table = _table()
    for name in OperatorSettings.model_fields:
        default = default_of(name)
        if default.startswith(("(", "/")) or "ghcr.io" in default:
            continue  # (unset), (empty) and paths/images documented symbolically
        shown = table[env_name(name)].strip("`")
        assert shown == default or float(shown) == float(default), name


def test_help_lists_every_setting_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name in OperatorSettings.model_fields:
        assert f"{env_name(name)}  [default: {default_of(name)}]" in out
    assert "CROUPIER_OPERATOR_PROBE_FAILURE_THRESHOLD  [default: 2]" in out
    assert "CROUPIER_OPERATOR_RUNTIME_PORT  [default: 8080]" in out


def test_only_the_metrics_templates_may_name_a_pod() -> None:
    settings = OperatorSettings(
        router_metrics_url_template="http://127.0.0.1:9/{namespace}/{pod}/{pod_ip}",
        model_metrics_url_template="http://{service}.{namespace}.svc:8501/monitoring/prometheus/metrics",
    )
    assert settings.router_metrics_per_pod and not settings.model_metrics_per_pod
    assert settings.router_metrics_url(name="r", namespace="ns", service="r", pod="p", pod_ip="10.0.0.1") == (
        "http://127.0.0.1:9/ns/p/10.0.0.1"
    )
    assert OperatorSettings().model_metrics_per_pod
    assert OperatorSettings().model_metrics_url(name="r", namespace="ns", service="r-canary", pod_ip="fd00::1") == (
        "http://[fd00::1]:8501/monitoring/prometheus/metrics"
    )
    with pytest.raises(ValueError, match=r"unknown placeholders \['pod'\]"):
        OperatorSettings(model_server_address_template="{pod}:8500")
    with pytest.raises(ValueError, match=r"unknown placeholders \['node'\]"):
        OperatorSettings(model_metrics_url_template="http://{node}:8501/monitoring/prometheus/metrics")
    with pytest.raises(ValueError, match=r"unknown placeholders \['node'\]"):
        OperatorSettings(router_metrics_url_template="http://{node}:8501/metrics")
