"""ModelDeployment against a real kube-apiserver: the new spec fields are admitted or rejected by their CEL rules with
a message naming the field, and every child the operator renders - Deployments, Services, PDBs, ConfigMaps and the
Gateway API routes (with Gateway API's own CRDs installed from the Go module, so their schema and CEL rules run) - is
accepted by a server-side dry run."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.devcluster.kubectl import Kubectl, KubectlError
from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.modeldeployment.children import render, render_served
from croupier.operator.modeldeployment.model import parse_model_deployment
from croupier.operator.modeldeployment.plan import plan
from croupier.operator.settings import OperatorSettings

from ..unit.operator.modeldeployment.test_children import SOURCES, all_available

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_API_SCRIPT = ROOT / "hack" / "gatewayapi" / "crds.sh"


def install_gateway_api(kubectl: Kubectl) -> Path:
    """Gateway API's standard CRDs (sigs.k8s.io/gateway-api, cached) applied server-side; returns their folder."""
    env = {**kubectl.env, "KUBECTL": str(kubectl.binary)}
    result = subprocess.run(
        ["bash", str(GATEWAY_API_SCRIPT), "--apply"], capture_output=True, text=True, env=env, timeout=600, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{GATEWAY_API_SCRIPT.name} failed: {result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def gateway_api(kubectl: Kubectl) -> Path:
    return install_gateway_api(kubectl)


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=croupier-tests", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd/modeldeployments.croupier.dev")
    yield


def test_gateway_api_crds_come_from_the_pinned_module(gateway_api: Path, kubectl: Kubectl) -> None:
    assert gateway_api.parts[-3:] == ("gateway-api", "v1.6.3", "crds")
    crd = kubectl.json("get", "crd", "httproutes.gateway.networking.k8s.io")
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.6.3"
    assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_rendered_child_passes_a_server_side_dry_run(
    source: Path, gateway_api: Path, kubectl: Kubectl, namespace: str
) -> None:
    body = yaml.safe_load(source.read_text())
    body["metadata"]["namespace"] = namespace
    md = parse_model_deployment(body)
    settings = OperatorSettings()
    children = with_manifest_hashes([*render(md, settings), *render_served(md, plan(md, all_available(md)), settings)])
    kinds = sorted({c["kind"] for c in children})
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget"} <= set(kinds)
    for child in children:
        # The owner does not exist in this namespace: a dry run checks the object, not the garbage collector.
        child["metadata"].pop("ownerReferences")
        kubectl("apply", "--server-side", "--dry-run=server", "--field-manager=croupier-operator", "-f", "-",
                input=json.dumps(child))  # fmt: skip


def test_the_route_crds_really_validate(gateway_api: Path, kubectl: Kubectl, namespace: str) -> None:
    source = next(p for p in SOURCES if p.stem == "gateway-http-pvc")
    body = yaml.safe_load(source.read_text())
    body["metadata"]["namespace"] = namespace
    md = parse_model_deployment(body)
    route = next(
        c for c in render_served(md, plan(md, all_available(md)), OperatorSettings()) if c["kind"] == "HTTPRoute"
    )
    route["metadata"].pop("ownerReferences")
    route["spec"]["rules"][0]["backendRefs"][0]["weight"] = 1_000_001  # Gateway API's maximum is 1,000,000
    with pytest.raises(KubectlError, match="weight"):
        kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=json.dumps(route))


def _md(namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "admitted", "namespace": namespace},
        "spec": {"model": {"name": "m", "storageUri": "file:///models/m"}, "stable": {"version": 1}, **spec},
    }


def test_credentials_only_for_buckets_and_a_bounded_progress_deadline(
    crds: None, kubectl: Kubectl, namespace: str
) -> None:
    bad = _md(namespace, model={"name": "m", "storageUri": "file:///m", "credentialsSecretRef": {"name": "s"}})
    with pytest.raises(KubectlError, match=r"spec.model.credentialsSecretRef: .*only to s3:// and gs://"):
        kubectl.apply(json.dumps(bad), "--dry-run=server")
    with pytest.raises(KubectlError, match="progressDeadlineSeconds"):
        kubectl.apply(json.dumps(_md(namespace, progressDeadlineSeconds=5)), "--dry-run=server")
    good = _md(namespace, model={"name": "m", "storageUri": "s3://bucket/m", "credentialsSecretRef": {"name": "s"}})
    kubectl.apply(json.dumps(good))
    stored = kubectl.json("get", "modeldeployment", "admitted", "-n", namespace)
    assert stored["spec"]["progressDeadlineSeconds"] == 600  # the default, applied by the API server
