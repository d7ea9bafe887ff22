"""The local control plane behaves like a cluster: versions, rollouts, garbage collection, namespace deletion, CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from croupier.devcluster.binaries import pinned_kubernetes_version
from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.process import pid_alive
from croupier.devcluster.waiting import wait_for


def _gone(read: Callable[[], object]) -> bool:
    """True once ``read`` answers 404."""
    try:
        read()
    except ApiException as error:
        if error.status == 404:
            return True
        raise
    return False


def test_server_reports_the_pinned_kubernetes_release(
    control_plane: ControlPlane | None, k8s_api: client.ApiClient
) -> None:
    if control_plane is None:
        pytest.skip("an external cluster runs whatever version it runs")
    version = client.VersionApi(k8s_api).get_code()
    assert version.git_version == pinned_kubernetes_version() == "v1.35.4"
    assert (version.major, version.minor) == ("1", "35")


def test_kubectl_sees_the_kwok_node_ready(control_plane: ControlPlane | None, kubectl: Kubectl) -> None:
    if control_plane is None:
        pytest.skip("only the local control plane has the kwok node")
    node = kubectl.json("get", "node", control_plane.node.name)
    ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
    assert ready == "True"
    assert node["status"]["allocatable"]["pods"] == control_plane.node.pods


def test_deployment_rolls_out_to_ready_replicas(namespace: str, k8s_api: client.ApiClient) -> None:
    apps = client.AppsV1Api(k8s_api)
    labels = {"app": "web"}
    apps.create_namespaced_deployment(
        namespace,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    # kwok never pulls images: the pod only has to be scheduled and marked Running and Ready.
                    "spec": {"containers": [{"name": "web", "image": "registry.invalid/web:never-pulled"}]},
                },
            },
        },
    )
    status = wait_for(
        lambda: (s := apps.read_namespaced_deployment_status("web", namespace).status).ready_replicas == 2 and s,
        timeout=90,
        what="2 ready replicas of Deployment web",
    )
    assert status.available_replicas == 2
    pods = client.CoreV1Api(k8s_api).list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 2
    assert {pod.status.phase for pod in pods} == {"Running"}
    assert all(pod.spec.node_name for pod in pods)


def test_garbage_collector_deletes_what_the_owner_owned(namespace: str, k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}, "data": {"k": "v"}})
    core.create_namespaced_config_map(
        namespace,
        {
            "metadata": {
                "name": "owned",
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
                ],
            },
        },
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    wait_for(
        lambda: _gone(lambda: core.read_namespaced_config_map("owned", namespace)),
        timeout=90,
        what="the garbage collector to delete ConfigMap owned",
    )


def test_namespace_deletion_completes(k8s_api: client.ApiClient) -> None:
    core = client.CoreV1Api(k8s_api)
    name = f"doomed-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_config_map(name, {"metadata": {"name": "content"}, "data": {"k": "v"}})
    core.delete_namespace(name)
    wait_for(
        lambda: _gone(lambda: core.read_namespace(name)),
        timeout=90,
        what=f"namespace {name} to finish terminating",
    )


def test_cli_starts_detached_and_stops(control_plane: ControlPlane | None, tmp_path: Path) -> None:
    if control_plane is None:
        pytest.skip("needs the local binaries")
    cluster_dir = tmp_path / "cluster"
    cli = [sys.executable, "-m", "croupier.devcluster"]
    bin_dir = str(control_plane.binaries.directory)
    up = subprocess.run(
        [*cli, "up", "--dir", str(cluster_dir), "--detach", "--bin-dir", bin_dir],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        assert up.returncode == 0, up.stderr
        kubeconfig = Path(up.stdout.strip().splitlines()[-1])
        assert kubeconfig == cluster_dir / "kubeconfig"
        info = json.loads((cluster_dir / "ready").read_text())
        assert set(info["components"]) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        }
        kubectl = Kubectl(binary=control_plane.binaries.path("kubectl"), kubeconfig=kubeconfig)
        assert "default" in kubectl("get", "serviceaccount", "default", "-n", "default").stdout
        env = {**kubectl.base_env, "CROUPIER_CONTROLPLANE_BIN": bin_dir}
        again = subprocess.run(
            [*cli, "up", "--dir", str(cluster_dir), "--detach"], capture_output=True, text=True, env=env, check=False
        )
        assert again.returncode == 0, again.stderr  # idempotent: the running cluster is reused
        assert json.loads((cluster_dir / "ready").read_text())["pid"] == info["pid"]
    finally:
        down = subprocess.run([*cli, "down", "--dir", str(cluster_dir)], capture_output=True, text=True, check=False)
    assert down.returncode == 0, down.stderr
    assert not (cluster_dir / "ready").exists()
    assert not (cluster_dir / "pid").exists()
    assert not any(pid_alive(pid) for pid in [info["pid"], *info["components"].values()])
    status = subprocess.run([*cli, "status", "--dir", str(cluster_dir)], capture_output=True, text=True, check=False)
    assert status.returncode == 3
