"""The Helm chart's static contracts: its CRDs are crds/, its version is the operator's, its settings are real."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from croupier.operator.settings import OPERATOR_VERSION, OperatorSettings

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "croupier"
# Settings the chart writes from its own values (image, namespaces, logging, metrics, liveness, peering from replicas
# and peering.*) or does not offer (the chart's peering is cluster-wide with seniority priorities; templates ship
# inside the image).
CHART_MANAGED = {
    "runtime_image",
    "runtime_image_pull_policy",
    "namespaces",
    "log_format",
    "log_level",
    "metrics_host",
    "metrics_port",
    "liveness_endpoint",
    "pod_namespace",
    "peering_name",
    "peering_lifetime_seconds",
}
NOT_OFFERED = {"peering_clusterwide", "peering_priority", "templates_dir"}


def _camel(snake: str) -> str:
    head, *rest = snake.split("_")
    return head + "".join(part.title() for part in rest)


def test_chart_crds_are_the_generated_crds_and_kopfs_peering_crds() -> None:
    """Helm installs crds/ before the templates, so a release with replicas > 1 finds the ClusterKopfPeering kind."""
    expected = [*sorted((ROOT / "crds").glob("*.yaml")), *sorted((ROOT / "config" / "peering" / "crds").glob("*.yaml"))]
    expected = [path for path in expected if path.name != "kustomization.yaml"]
    links = sorted((CHART / "crds").iterdir())
    assert all(link.is_symlink() for link in links), "the chart's CRDs are links to the files kustomize applies"
    assert sorted(link.resolve() for link in links) == sorted(path.resolve() for path in expected)


def test_chart_files_are_the_tested_rules_and_dashboard() -> None:
    for link, target in (
        ("croupier.rules.yaml", ROOT / "config" / "prometheus" / "croupier.rules.yaml"),
        ("croupier-dashboard.json", ROOT / "config" / "grafana" / "croupier.json"),
    ):
        path = CHART / "files" / link
        assert path.is_symlink() and path.resolve() == target.resolve(), link


def test_chart_version_follows_the_operator() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["version"] == chart["appVersion"] == OPERATOR_VERSION


def test_every_operator_setting_is_offered_or_managed_by_the_chart() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    offered = set(schema["properties"]["settings"]["properties"])
    fields = set(OperatorSettings.model_fields)
    assert offered == {_camel(f) for f in fields - CHART_MANAGED - NOT_OFFERED}, "values.schema.json settings"
    assert fields >= CHART_MANAGED | NOT_OFFERED


def test_values_match_their_schema_keys() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(values) <= set(schema["properties"])
