"""Installing several replicas: config/ha (kustomize) and the chart with replicas > 1 render the same peering setup,
and the API server accepts both (server-side dry-run, with Kopf's peering CRDs from config/peering/crds)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.ops.tools import ROOT, bin_dir, run

from croupier.devcluster.kubectl import Kubectl

CHART = ROOT / "charts" / "croupier"
KUBE_VERSION = "1.35.4"
HELM_LABELS = (
    "helm.sh/chart",
    "app.kubernetes.io/managed-by",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
)


@pytest.fixture(scope="module")
def helm() -> Path:
    return bin_dir("hack/helm/build.sh") / "helm"


def chart(helm: Path, *values: str) -> list[dict[str, Any]]:
    argv = [helm, "template", "croupier", CHART, "-n", "croupier-system", "--kube-version", KUBE_VERSION, *values]
    done = run(argv)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_key(objects: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    found: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return found


def without_helm_labels(obj: dict[str, Any]) -> dict[str, Any]:
    labels = obj["metadata"].get("labels") or {}
    obj["metadata"]["labels"] = {k: v for k, v in labels.items() if k not in HELM_LABELS}
    return obj


def test_chart_with_two_replicas_turns_peering_on_like_config_ha(helm: Path, kubectl: Kubectl) -> None:
    objects = chart(helm, "--set", "replicas=2", "--set", "peering.lifetimeSeconds=30")
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    env = {e["name"]: e.get("value") for e in container(objects)["env"]}
    assert env["CROUPIER_OPERATOR_PEERING_NAME"] == "croupier-operator"
    assert env["CROUPIER_OPERATOR_PEERING_LIFETIME_SECONDS"] == "30"

    kustomized = [o for o in yaml.safe_load_all(kubectl("kustomize", str(ROOT / "config" / "ha")).stdout) if o]
    ours, theirs = by_key(objects), by_key(kustomized)
    for key in [("ClusterKopfPeering", "croupier-operator"), ("ClusterRole", "croupier-operator-peering")]:
        assert without_helm_labels(ours[key]) == theirs[key], key
    binding = ("ClusterRoleBinding", "croupier-operator-peering")
    assert ours[binding]["subjects"] == theirs[binding]["subjects"]
    assert theirs[("Deployment", "croupier-operator")]["spec"]["replicas"] == 2
    kustomize_env = {e["name"]: e.get("value") for e in container(kustomized)["env"]}
    assert kustomize_env["CROUPIER_OPERATOR_PEERING_NAME"] == "croupier-operator"


def test_one_replica_renders_no_peering(helm: Path) -> None:
    objects = chart(helm)
    assert not [o for o in objects if o["kind"] == "ClusterKopfPeering" or o["metadata"]["name"].endswith("-peering")]
    assert not [e for e in container(objects)["env"] if "PEERING" in e["name"]]


def test_replicas_below_one_are_refused(helm: Path) -> None:
    done = run([helm, "template", "croupier", CHART, "--kube-version", KUBE_VERSION, "--set", "replicas=0"])
    assert done.returncode != 0 and "replicas" in done.stderr


def test_ha_renders_pass_server_side_dry_run(helm: Path, kubectl: Kubectl, peering: str) -> None:
    for objects in (
        chart(helm, "--set", "replicas=3", "--set", "fullnameOverride=croupier-ha"),
        [o for o in yaml.safe_load_all(kubectl("kustomize", str(ROOT / "config" / "ha")).stdout) if o],
    ):
        manifest = json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})
        done = kubectl(
            "apply", "--server-side", "--dry-run=server", "--field-manager=ha-dry-run", "--force-conflicts", "-f", "-",
            input=manifest, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
