"""The install manifests in config/: the CRDs straight from crds/, least-privilege RBAC, a locked-down operator pod."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "config"


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_the_install_takes_the_crds_from_the_one_generated_folder() -> None:
    # crds/ is a kustomization of its own (generated with the CRDs, checked by `make crds-check`): no copies to drift.
    assert not (CONFIG / "crd").exists(), "config/crd/ is gone: the CRDs live in crds/ only"
    assert "../../crds" in _docs(CONFIG / "default" / "kustomization.yaml")[0]["resources"]
    listed = _docs(ROOT / "crds" / "Kustomization")[0]["resources"]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "crds").glob("croupier.dev_*.yaml"))


def _rules() -> list[dict[str, Any]]:
    (role,) = _docs(CONFIG / "rbac" / "cluster_role.yaml")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def _allowed(group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in _rules():
        if group in rule["apiGroups"] and resource in rule["resources"]:
            verbs |= set(rule["verbs"])
    return verbs


def test_rbac_is_least_privilege() -> None:
    for rule in _rules():
        assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
        assert "deletecollection" not in rule["verbs"]
    assert _allowed("", "secrets") == {"get"}  # by name: the auth Secret's admin token for the stats probe
    assert _allowed("", "pods") == {"list", "patch"}  # the model router's, annotated after a routing table change
    # Delete: only the kinds a ModelDeployment prunes (the children it no longer renders).
    deletable = {
        (g, r) for rule in _rules() if "delete" in rule["verbs"] for g in rule["apiGroups"] for r in rule["resources"]
    }
    assert deletable == {
        ("", "configmaps"),
        ("", "services"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "networkpolicies"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
    }
    for plural in ("decisionpolicies", "modeldeployments"):  # read by name as targets
        assert _allowed("croupier.dev", plural) == {"get", "list", "watch", "patch"}
    assert _allowed("croupier.dev", "experiments") == {"list", "watch", "patch"}
    for plural in ("decisionpolicies", "modeldeployments", "experiments"):
        assert _allowed("croupier.dev", f"{plural}/status") == {"patch"}
        assert _allowed("croupier.dev", f"{plural}/finalizers") == {"update"}
    for group, resource in [
        ("", "configmaps"),
        ("", "services"),
        ("", "persistentvolumeclaims"),
        ("apps", "deployments"),
        ("policy", "poddisruptionbudgets"),
        ("networking.k8s.io", "networkpolicies"),
        ("gateway.networking.k8s.io", "httproutes"),
        ("gateway.networking.k8s.io", "grpcroutes"),
    ]:
        assert _allowed(group, resource) - {"delete"} == {"get", "list", "watch", "create", "patch"}, resource
    assert _allowed("", "events") == {"create"}
    assert _allowed("apiextensions.k8s.io", "customresourcedefinitions") == {"list", "watch"}


def test_the_operator_pod_is_locked_down_and_probed() -> None:
    (deployment,) = _docs(CONFIG / "manager" / "deployment.yaml")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "croupier-operator"
    assert pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert "--liveness=http://0.0.0.0:8080/healthz" in container["args"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
