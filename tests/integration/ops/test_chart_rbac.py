"""The chart's namespaced install is enough and no more: the operator, authenticated as the chart's ServiceAccount
with only the RBAC the chart renders for `watchNamespaces`, reconciles a policy in the watched namespace and nothing
elsewhere."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.operator.conftest import OperatorProcess, manifest
from integration.ops.test_chart import _template

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "RoleBinding"}


@pytest.fixture
def release(kubectl: Kubectl) -> Iterator[str]:
    name = f"croupier-rbac-{secrets.token_hex(3)}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


def _kubeconfig(admin: Path, token: str, path: Path) -> Path:
    config = yaml.safe_load(admin.read_text())
    cluster = config["clusters"][0]
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [cluster],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [{"name": "sa", "context": {"cluster": cluster["name"], "user": "sa"}}],
                "current-context": "sa",
            }
        )
    )
    path.chmod(0o600)
    return path


def _status(kubectl: Kubectl, name: str, namespace: str) -> dict[str, Any]:
    return dict(kubectl.json("get", "dp", name, "-n", namespace).get("status") or {})


@pytest.mark.timeout(900)
@pytest.mark.usefixtures("crds")
def test_operator_works_with_only_the_namespaced_rbac(
    *,
    helm: Path,
    kubectl: Kubectl,
    kubeconfig: Path,
    namespace: str,
    release: str,
    tmp_path: Path,
) -> None:
    fullname = release  # unique per run: the ClusterRoles are cluster-wide
    objects = _template(
        helm, "--set", f"watchNamespaces={{{namespace}}}", "--set", f"fullnameOverride={fullname}", namespace=release
    )
    rbac = [o for o in objects if o["kind"] in RBAC_KINDS]
    assert {o["kind"] for o in rbac} == RBAC_KINDS
    cluster_scoped = [(o["kind"], o["metadata"]["name"]) for o in rbac if o["kind"].startswith("Cluster")]
    other = f"{namespace[:50]}-other"
    kubectl("create", "namespace", other)
    operator = None
    try:
        kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": rbac}), "--server-side")
        account = f"system:serviceaccount:{release}:{fullname}"
        # Namespaced permissions only where they were granted.
        assert (
            kubectl("auth", "can-i", "create", "deployments", "-n", namespace, f"--as={account}").stdout.strip()
            == "yes"
        )
        refused = kubectl("auth", "can-i", "create", "deployments", "-n", other, f"--as={account}", check=False)
        assert refused.stdout.strip() == "no"
        assert (
            kubectl("auth", "can-i", "list", "decisionpolicies", "-A", f"--as={account}", check=False).stdout.strip()
            == "no"
        )

        token = kubectl("create", "token", fullname, "-n", release, "--duration=1h").stdout.strip()
        liveness, metrics = free_ports(2)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
        env.update(
            {
                "KUBECONFIG": str(_kubeconfig(kubeconfig, token, tmp_path / "kubeconfig")),
                # What the chart's Deployment sets for watchNamespaces (tests/integration/ops/test_chart.py checks it).
                "CROUPIER_OPERATOR_NAMESPACES": namespace,
                "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": "http://127.0.0.1:9/",  # nothing answers: RuntimeUnreachable
                "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": "2",
                "CROUPIER_OPERATOR_PROBE_TIMEOUT_SECONDS": "1",
                "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness}/healthz",
                "CROUPIER_OPERATOR_METRICS_PORT": str(metrics),
                "CROUPIER_OPERATOR_LOG_FORMAT": "json",
            }
        )
        operator = OperatorProcess(env=env, log=tmp_path / "operator.log", liveness_port=liveness, metrics_port=metrics)
        operator.start()
        kubectl.apply(manifest("watched", namespace))
        kubectl.apply(manifest("unwatched", other))

        def reconciled() -> dict[str, Any] | None:
            status = _status(kubectl, "watched", namespace)
            return status if status.get("conditions") and status.get("observedGeneration") == 1 else None

        try:
            status = wait_for(reconciled, timeout=60, what="a status on the watched policy")
        except TimeoutError:
            raise AssertionError(f"no status; operator log:\n{operator.tail()}") from None
        kinds = {c["type"] for c in status["conditions"]}
        assert kinds == {"Ready", "Progressing", "Degraded", "Reconciling", "Stalled"}
        children = kubectl.json("get", "configmap,deployment,service,poddisruptionbudget", "-n", namespace)
        assert {i["kind"] for i in children["items"]} >= {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"}
        # The other namespace is not watched: no status, no children; and the operator hit no permission error.
        assert _status(kubectl, "unwatched", other) == {}
        assert kubectl.json("get", "deployments", "-n", other)["items"] == []
        assert operator.alive(), operator.tail()
        assert "Forbidden" not in operator.log.read_text() and " 403" not in operator.log.read_text(), operator.tail()
    finally:
        if operator is not None:
            operator.stop()
        kubectl("delete", "namespace", other, "--wait=false", check=False)
        for kind, name in cluster_scoped:
            kubectl("delete", kind.lower(), name, "--ignore-not-found", check=False)
