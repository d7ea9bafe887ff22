"""Fixtures for tests against a real Kubernetes API.

One control plane per test session (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok; see
``croupier.devcluster``), or an existing cluster when ``CROUPIER_KUBECONFIG`` names its kubeconfig. Each test gets
its own namespace. Every test collected under this directory is marked ``integration``.

Environment:
  CROUPIER_KUBECONFIG        use this cluster instead of starting one (control_plane is then None)
  CROUPIER_CONTROLPLANE_BIN  directory with prebuilt binaries (else hack/controlplane/build.sh, cached)
  CROUPIER_KEEP_CLUSTER=1    keep the control plane's work dir (logs, etcd data) after the session
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from integration.ops import health_recorder
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from croupier.devcluster.binaries import BIN_DIR_ENV, locate_binaries
from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

EXTERNAL_KUBECONFIG_ENV = "CROUPIER_KUBECONFIG"
KEEP_ENV = "CROUPIER_KEEP_CLUSTER"
TEST_NAMESPACE_LABEL = "croupier.dev/test-namespace"


@pytest.fixture(scope="session")
def control_plane() -> Iterator[ControlPlane | None]:
    """The session's control plane, or None when ``CROUPIER_KUBECONFIG`` points at an existing cluster."""
    if os.environ.get(EXTERNAL_KUBECONFIG_ENV):
        yield None
        return
    plane = ControlPlane(keep=os.environ.get(KEEP_ENV, "") not in ("", "0"))
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane: ControlPlane | None) -> Path:
    """Path of an admin kubeconfig for the cluster under test."""
    if control_plane is not None:
        return control_plane.kubeconfig
    path = Path(os.environ[EXTERNAL_KUBECONFIG_ENV]).expanduser().resolve()
    if not path.is_file():
        pytest.fail(f"{EXTERNAL_KUBECONFIG_ENV}={path} is not a file")
    return path


def _kubectl_binary(control_plane: ControlPlane | None) -> Path:
    if control_plane is not None:
        return control_plane.binaries.path("kubectl")
    if os.environ.get(BIN_DIR_ENV):
        return Path(os.environ[BIN_DIR_ENV]) / "kubectl"
    found = shutil.which("kubectl")
    return Path(found) if found else locate_binaries().path("kubectl")


@pytest.fixture(scope="session")
def kubectl(control_plane: ControlPlane | None, kubeconfig: Path) -> Kubectl:
    """Runs kubectl (the built one) against the cluster: ``kubectl("get", "pods", "-n", ns).stdout``."""
    kubectl = Kubectl(binary=_kubectl_binary(control_plane), kubeconfig=kubeconfig)
    health_recorder.read_again_with(lambda body: _read_again(kubectl, body))
    return kubectl


def _read_again(kubectl: Kubectl, body: dict[str, Any]) -> dict[str, Any]:
    """The object ``body`` is, as the API server has it now."""
    group = body["apiVersion"].split("/")[0]
    metadata = body["metadata"]
    found: dict[str, Any] = kubectl.json(
        "get", f"{body['kind']}.{group}", metadata["name"], "-n", metadata["namespace"]
    )
    return found


@pytest.fixture(scope="session")
def kube_env(kubectl: Kubectl) -> dict[str, str]:
    """Environment for subprocesses (kopf, scripts): ``KUBECONFIG`` set and kubectl first on ``PATH``."""
    return kubectl.env


@pytest.fixture(scope="session")
def k8s_api(kubeconfig: Path) -> Iterator[client.ApiClient]:
    """An official-client ``ApiClient`` for the cluster: ``kubernetes.client.CoreV1Api(k8s_api)``."""
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


def _namespace_name(test_name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:48].strip("-") or "test"
    return f"{slug}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(k8s_api: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace (its default ServiceAccount exists, so pods are admitted); deleted after the test, unwaited."""
    core = client.CoreV1Api(k8s_api)
    name = _namespace_name(request.node.name)
    body = {"metadata": {"name": name, "labels": {TEST_NAMESPACE_LABEL: "true"}}}
    core.create_namespace(body)
    try:
        wait_for(
            lambda: core.read_namespaced_service_account("default", name),
            timeout=30,
            what=f"ServiceAccount default in {name}",
        )
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as error:
            if error.status != 404:
                raise
