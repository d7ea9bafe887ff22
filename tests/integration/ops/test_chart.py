"""The Helm chart, with Helm itself (v3.22.0 built from the Go module proxy, cached): lint, render, the default render
equal to config/ (kustomize), and every render accepted by the API server (server-side dry-run)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.ops.tools import ROOT, monitoring_crds, run

from croupier.devcluster.kubectl import Kubectl
from croupier.operator.decisionpolicy import children as policy_children
from croupier.operator.experiment import children as experiment_children
from croupier.operator.modeldeployment import children as model_children

CHART = ROOT / "charts" / "croupier"
KUBE_VERSION = "1.35.4"
# The labels the chart adds to config/'s (templates/_helpers.tpl, croupier.helmLabels).
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)
# Prometheus Operator kinds: validated against its CRDs (installed by the `monitoring_crds` fixture).
MONITORING = {"ServiceMonitor", "PodMonitor", "PrometheusRule"}


@pytest.fixture(scope="module")
def monitoring(kubectl: Kubectl) -> None:
    """The Prometheus Operator's CRDs in the cluster, so the chart's monitors are validated by their schemas."""
    for crd in monitoring_crds():
        kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd), timeout=120)
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        *(f"crd/{n}.monitoring.coreos.com" for n in ("servicemonitors", "podmonitors", "prometheusrules")),
    )


def _template(helm: Path, *args: str, namespace: str = "croupier-system") -> list[dict[str, Any]]:
    done = run([helm, "template", "croupier", CHART, "--namespace", namespace, "--kube-version", KUBE_VERSION, *args])
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


def _without_helm_labels(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    holders = [obj["metadata"], ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}]
    for meta in holders:
        labels = meta.get("labels") or {}
        for label in HELM_LABELS:
            labels.pop(label, None)
    return obj


@pytest.mark.timeout(1500)
def test_helm_lint_passes_strictly(helm: Path) -> None:
    for values in ([], ["--set", "watchNamespaces={team-a,team-b}", "--set", "metrics.prometheusRule.enabled=true"]):
        done = run([helm, "lint", "--strict", CHART, "--kube-version", KUBE_VERSION, *values])
        assert done.returncode == 0, done.stdout + done.stderr


def test_default_render_equals_kustomize_config(helm: Path, kubectl: Kubectl) -> None:
    chart = {_key(o): _without_helm_labels(o) for o in _template(helm, "--include-crds")}
    # The chart's crds/ also carries Kopf's peering CRDs (config/peering/crds): Helm installs crds/ before the
    # templates, so `--set replicas=2` finds the ClusterKopfPeering kind on a first install.
    rendered = [kubectl("kustomize", str(ROOT / "config" / path)).stdout for path in ("default", "peering/crds")]
    kustomize = {_key(o): o for text in rendered for o in yaml.safe_load_all(text) if o}
    # The one difference: Helm installs into a namespace it is given (--create-namespace); config/ creates it.
    assert set(kustomize) - set(chart) == {("Namespace", "", "croupier-system")}
    assert set(chart) - set(kustomize) == set()
    for key, obj in chart.items():
        assert obj == kustomize[key], f"{key} differs between the chart and config/"


def test_bad_values_are_refused_with_the_field_named(helm: Path) -> None:
    for args, words in (
        (["--set", "settings.probTimeout=3"], ["settings", "probTimeout"]),
        (["--set", "logLevel=loud"], ["logLevel"]),
        (["--set", "watchNamespaces={Team_A}"], ["watchNamespaces"]),
        (
            ["--set", "metrics.service.enabled=false", "--set", "metrics.serviceMonitor.enabled=true"],
            ["serviceMonitor"],
        ),
    ):
        done = run([helm, "template", "croupier", CHART, "--kube-version", KUBE_VERSION, *args])
        assert done.returncode != 0, args
        assert all(word in done.stderr for word in words), done.stderr


def test_namespaced_install_binds_only_the_watched_namespaces(helm: Path) -> None:
    objects = _template(helm, "--set", "watchNamespaces={team-a,team-b}")
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        by_kind.setdefault(obj["kind"], []).append(obj)
    assert sorted((b["metadata"]["namespace"], b["roleRef"]["name"]) for b in by_kind["RoleBinding"]) == [
        ("team-a", "croupier-operator-namespaced"),
        ("team-b", "croupier-operator-namespaced"),
    ]
    cluster = {r["metadata"]["name"]: r for r in by_kind["ClusterRole"]}
    # Cluster-wide: only CRD discovery and namespace reads.
    cluster_resources = {res for rule in cluster["croupier-operator-cluster"]["rules"] for res in rule["resources"]}
    assert cluster_resources == {"customresourcedefinitions", "namespaces"}
    (binding,) = by_kind["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == "croupier-operator-cluster"
    container = by_kind["Deployment"][0]["spec"]["template"]["spec"]["containers"][0]
    assert "--all-namespaces" not in container["args"]
    assert {"--namespace=team-a", "--namespace=team-b"} <= set(container["args"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CROUPIER_OPERATOR_NAMESPACES"] == "team-a,team-b"


def test_settings_and_images_reach_the_operator(helm: Path) -> None:
    objects = _template(
        helm,
        "--set", "image.tag=1.2.3",
        "--set", "runtimeImage.repository=registry.example.com/runtime",
        "--set", "runtimeImage.pullPolicy=Always",
        "--set", "logLevel=debug",
        "--set", "settings.probeTimeoutSeconds=3",
        "--set", "settings.probeEnabled=false",
    )  # fmt: skip
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "ghcr.io/croupier-dev/croupier-operator:1.2.3"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CROUPIER_OPERATOR_RUNTIME_IMAGE"] == "registry.example.com/runtime:0.1.0"
    assert env["CROUPIER_OPERATOR_RUNTIME_IMAGE_PULL_POLICY"] == "Always"
    assert env["CROUPIER_OPERATOR_LOG_LEVEL"] == "debug"
    assert env["CROUPIER_OPERATOR_PROBE_TIMEOUT_SECONDS"] == "3"
    assert env["CROUPIER_OPERATOR_PROBE_ENABLED"] == "false"
    # The runtime NetworkPolicies admit the operator from its own namespace: the pod's, from the downward API.
    (pod_namespace,) = [e for e in container["env"] if e["name"] == "CROUPIER_OPERATOR_POD_NAMESPACE"]
    assert pod_namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_dashboard_config_map_carries_the_tested_dashboard(helm: Path) -> None:
    objects = _template(helm, "--set", "grafanaDashboard.enabled=true", "--set", "grafanaDashboard.namespace=grafana")
    (config_map,) = [o for o in objects if o["kind"] == "ConfigMap"]
    assert config_map["metadata"]["namespace"] == "grafana"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = (ROOT / "config" / "grafana" / "croupier.json").read_text()
    assert json.loads(config_map["data"]["croupier.json"]) == json.loads(dashboard)


def test_prometheus_rule_carries_the_tested_rules(helm: Path) -> None:
    objects = _template(helm, "--set", "metrics.prometheusRule.enabled=true")
    (rule,) = [o for o in objects if o["kind"] == "PrometheusRule"]
    assert rule["spec"] == yaml.safe_load((ROOT / "config" / "prometheus" / "croupier.rules.yaml").read_text())


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and In/NotIn/Exists/DoesNotExist expressions) against labels."""
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


def test_runtime_pod_monitor_scrapes_every_data_plane_pod_the_operator_renders(helm: Path) -> None:
    """Policy runtimes, Experiment runtimes and model routers (the pods the golden renders of all three kinds carry),
    on their http port; TF Serving pods are not Croupier's to scrape."""
    objects = _template(helm, "--set", "metrics.runtimePodMonitor.enabled=true")
    (monitor,) = [o for o in objects if o["kind"] == "PodMonitor" and o["metadata"]["name"].endswith("-runtimes")]
    selector = monitor["spec"]["selector"]
    data_plane = {policy_children.APP_NAME, experiment_children.APP_NAME, model_children.ROUTER_APP_NAME}
    (names,) = [e["values"] for e in selector["matchExpressions"] if e["key"] == "app.kubernetes.io/name"]
    assert set(names) == data_plane, "the chart's app names are the operator's"
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    goldens = sorted((ROOT / "tests" / "unit" / "operator").glob("**/golden/*.yaml"))
    pods = [
        d["spec"]["template"]
        for path in goldens
        for d in yaml.safe_load_all(path.read_text())
        if d and d["kind"] == "Deployment"
    ]
    selected = {
        p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods if _selects(selector, p["metadata"]["labels"])
    }
    assert selected == data_plane
    assert model_children.APP_NAME in {p["metadata"]["labels"]["app.kubernetes.io/name"] for p in pods}
    for pod in pods:
        if _selects(selector, pod["metadata"]["labels"]):
            ports = {port["name"] for c in pod["spec"]["containers"] for port in c.get("ports", [])}
            assert endpoint["port"] in ports, pod["metadata"]["labels"]


def test_operator_network_policy_admits_only_the_metrics_port_from_the_listed_peers(helm: Path) -> None:
    assert not [o for o in _template(helm) if o["kind"] == "NetworkPolicy"]  # off by default, like config/
    objects = _template(helm, "--set", "networkPolicy.enabled=true")
    (policy,) = [o for o in objects if o["kind"] == "NetworkPolicy"]
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert policy["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "metrics" in {p["name"] for p in container["ports"]}

    closed = _template(helm, "--set", "networkPolicy.enabled=true", "--set", "networkPolicy.metricsFrom=null")
    (policy,) = [o for o in closed if o["kind"] == "NetworkPolicy"]
    assert policy["spec"]["ingress"] is None  # no peers: no ingress at all

    refused = run([helm, "template", "croupier", CHART, "--set", "networkPolicy.metricsFrom[0].pods.x=y"])
    assert refused.returncode != 0 and "metricsFrom" in refused.stderr


@pytest.mark.parametrize(
    "values",
    [
        [],
        [
            "--set", "watchNamespaces={WATCHED}",
            "--set", "metrics.serviceMonitor.enabled=true",
            "--set", "metrics.podMonitor.enabled=true",
            "--set", "metrics.runtimePodMonitor.enabled=true",
            "--set", "metrics.prometheusRule.enabled=true",
            "--set", "fullnameOverride=croupier-team",
            "--set", "settings.resyncIntervalSeconds=30",
            "--set", "grafanaDashboard.enabled=true",
            "--set", "networkPolicy.enabled=true",
        ],
    ],
    ids=["defaults", "namespaced-with-monitoring"],
)  # fmt: skip
def test_rendered_chart_passes_server_side_dry_run(
    helm: Path, kubectl: Kubectl, monitoring: None, namespace: str, values: list[str]
) -> None:
    values = [v.replace("WATCHED", namespace) for v in values]
    objects = _template(helm, "--include-crds", *values, namespace=namespace)
    kinds = {o["kind"] for o in objects}
    assert {"CustomResourceDefinition", "Deployment", "ServiceAccount", "Service", "ClusterRole"} <= kinds
    if values:
        assert kinds & MONITORING == MONITORING
    manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
    done = kubectl(
        "apply", "--server-side", "--dry-run=server", "--field-manager=helm-dry-run", "--force-conflicts", "-f", "-",
        input=manifest, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len([line for line in done.stdout.splitlines() if "(server dry run)" in line]) == len(objects)


def test_two_replicas_render_the_peering_kind_with_its_crd(helm: Path) -> None:
    """A first `helm install --set replicas=2` needs the ClusterKopfPeering kind before the templates: crds/ has it."""
    objects = _template(helm, "--include-crds", "--set", "replicas=2")
    kinds = {o["kind"] for o in objects}
    assert "ClusterKopfPeering" in kinds
    crds = {o["spec"]["names"]["kind"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    assert {"ClusterKopfPeering", "KopfPeering"} <= crds
    # Without --include-crds (what Helm renders as templates) the CRDs are not templated objects.
    assert "CustomResourceDefinition" not in {o["kind"] for o in _template(helm, "--set", "replicas=2")}
