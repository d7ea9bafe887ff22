"""Security of what the operator creates, against the real control plane: Pod Security Standards `restricted` admits
every pod Croupier creates (runtime pods, the operator's own pod), the stats probe authenticates with the Secret's
admin token while no token reaches a log, and the NetworkPolicy is what the spec says (applied server-side, so the
API server validated it)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

from ..test_crd_admission_modeldeployment import install_gateway_api
from .conftest import ROOT, LocalRuntime, OperatorProcess, Policies
from .test_experiment import experiment
from .test_modeldeployment import manifest as model_manifest

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
TOKENS = {"decide": "sec-decide-0b7e61d2", "rewards": "sec-rewards-9c1f03aa", "admin": "sec-admin-4e8d77b5"}


def restrict(kubectl: Kubectl, namespace: str) -> None:
    kubectl("label", "namespace", namespace, *(f"{k}={v}" for k, v in RESTRICTED.items()), "--overwrite")


def pods_admitted(kubectl: Kubectl, namespace: str, selector: str, count: int) -> list[dict[str, Any]]:
    """Wait for `count` pods: a PSS rejection leaves none and a FailedCreate event on the ReplicaSet instead."""

    def check() -> tuple[list[str], list[dict[str, Any]]] | None:
        events = kubectl.json("get", "events", "-n", namespace, "--field-selector", "reason=FailedCreate")["items"]
        rejected = [str(e["message"]) for e in events if "PodSecurity" in e.get("message", "")]
        pods: list[dict[str, Any]] = kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
        return (rejected, pods) if rejected or len(pods) >= count else None

    rejected, pods = wait_for(check, timeout=60, what=f"{count} pods {selector} in {namespace}")
    assert not rejected, f"Pod Security admission rejected a pod: {rejected[0]}"
    return pods


def write_secret_volume(directory: Path, data: dict[str, str]) -> None:
    """The files a kubelet writes for a Secret volume (a timestamped folder behind ..data, key symlinks)."""
    directory.mkdir(parents=True)
    (directory / "..2026_11_30_01").mkdir()
    for key, value in data.items():
        (directory / "..2026_11_30_01" / key).write_text(value)
        (directory / key).symlink_to(f"..data/{key}")
    (directory / "..data").symlink_to("..2026_11_30_01")


def serve_with_auth(runtime: LocalRuntime, policy_yaml: str, auth_dir: Path) -> subprocess.Popen[bytes]:
    """Play the kubelet for an authenticated pod: the local runtime's port, the ConfigMap and the Secret's files."""
    runtime.stop()
    policy = runtime.workdir / "policy-auth.yaml"
    policy.write_text(policy_yaml)
    state = runtime.workdir / "state-auth"
    state.mkdir(exist_ok=True)
    log = runtime.workdir / "runtime-auth.log"
    argv = [
        str(Path(sys.executable).parent / "croupier-runtime"),
        *("--policy", str(policy), "--port", str(runtime.port), "--state-dir", str(state)),
        *("--host", "127.0.0.1", "--auth-dir", str(auth_dir)),
    ]
    return subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)


def test_restricted_namespace_admits_runtime_pods_and_the_probe_authenticates(
    policies: Policies, kubectl: Kubectl, operator: OperatorProcess, local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    name, namespace = "guarded", policies.namespace
    restrict(kubectl, namespace)
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{name}-auth", "namespace": namespace, "labels": {"croupier.dev/runtime-auth": "true"}},
        "data": {k: base64.b64encode(f"{v}\n".encode()).decode() for k, v in TOKENS.items()},
    }
    kubectl.apply(json.dumps(secret))
    policies.apply(
        name,
        networkPolicy={
            "ingress": [
                {
                    "namespaceSelector": {"matchLabels": {"team": "games"}},
                    "podSelector": {"matchLabels": {"app": "lobby"}},
                }
            ]
        },
    )
    (pod,) = pods_admitted(kubectl, namespace, f"app.kubernetes.io/instance={name}", 1)
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["auth"]["secret"]["secretName"] == f"{name}-auth"

    netpol = wait_for(
        lambda: kubectl.json("get", "networkpolicy", "-n", namespace, "-o", "json")["items"] or None,
        timeout=30,
        what="the NetworkPolicy",
    )[0]
    assert netpol["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == name
    peers = [peer for rule in netpol["spec"]["ingress"] for peer in rule["from"]]
    assert {
        "namespaceSelector": {"matchLabels": {"team": "games"}},
        "podSelector": {"matchLabels": {"app": "lobby"}},
    } in peers
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}} in peers

    auth_dir = tmp_path / "auth"
    write_secret_volume(auth_dir, {k: f"{v}\n" for k, v in TOKENS.items()})
    process = serve_with_auth(local_runtime, policies.policy_yaml(name, 1), auth_dir)
    try:
        ready = policies.wait_condition(name, "Ready", "True", "Available", timeout=60)
        assert ready["status"]["servedGeneration"] == 1  # read from /v1/stats, which answers only the admin token

        # Rotation in the Secret changes no child: the config hash and the pods stay as they are.
        before = kubectl.json("get", "deployment", name, "-n", namespace)["spec"]["template"]["metadata"]
        secret["data"]["admin"] = base64.b64encode(b"sec-admin-rotated-61fa\n").decode()
        kubectl.apply(json.dumps(secret))
        rotated = auth_dir / "..2026_11_30_02"
        rotated.mkdir()
        for key, value in {**TOKENS, "admin": "sec-admin-rotated-61fa"}.items():
            (rotated / key).write_text(f"{value}\n")
        (auth_dir / "..data_tmp").symlink_to(rotated.name)
        (auth_dir / "..data_tmp").replace(auth_dir / "..data")  # what the kubelet does; the runtime is not restarted
        probes = operator.metric("croupier_operator_runtime_probes_total", outcome="ok")
        wait_for(
            lambda: operator.metric("croupier_operator_runtime_probes_total", outcome="ok") >= probes + 3,
            timeout=30,
            what="successful probes with the rotated admin token",
        )
        assert policies.condition(policies.get(name), "Ready")["status"] == "True"
        after = kubectl.json("get", "deployment", name, "-n", namespace)["spec"]["template"]["metadata"]
        assert after["annotations"] == before["annotations"]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)
    logs = operator.log.read_text(errors="replace") + (local_runtime.workdir / "runtime-auth.log").read_text()
    assert "authentication tokens loaded" in logs
    for token in [*TOKENS.values(), "sec-admin-rotated-61fa"]:
        assert token not in logs, "a token reached a log"


def test_an_unauthenticated_probe_names_what_is_missing(
    policies: Policies, kubectl: Kubectl, local_runtime: LocalRuntime, tmp_path: Path
) -> None:
    name, namespace = "tokenless", policies.namespace
    policies.apply(name)
    auth_dir = tmp_path / "auth"
    write_secret_volume(auth_dir, {k: f"{v}\n" for k, v in TOKENS.items()})
    process = serve_with_auth(local_runtime, policies.policy_yaml(name, 1), auth_dir)

    def named(expected: str) -> str | None:
        for entry in policies.status(name).get("conditions") or ():
            if "HTTP 401" in entry.get("message", "") and expected in entry["message"]:
                return str(entry["message"])
        return None

    try:
        wait_for(lambda: named(f"{name}-auth (spec.auth.secretName) does not exist"), timeout=60, what="no Secret")
        # A Secret without the opt-in label is never read: a policy cannot make the operator send any Secret's value.
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{name}-auth", "namespace": namespace},
            "stringData": TOKENS,
        }
        kubectl.apply(json.dumps(secret))
        wait_for(lambda: named("lacks the label croupier.dev/runtime-auth=true"), timeout=60, what="unlabelled")
        kubectl("label", "secret", f"{name}-auth", "-n", namespace, "croupier.dev/runtime-auth=true")
        policies.wait_condition(name, "Ready", "True", "Available", timeout=60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(15)


def test_restricted_namespace_admits_the_operator_pod(kubectl: Kubectl, namespace: str) -> None:
    restrict(kubectl, namespace)
    rendered = kubectl("kustomize", str(ROOT / "config" / "default")).stdout
    (deployment,) = [d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment"]
    deployment["metadata"]["namespace"] = namespace
    kubectl("create", "serviceaccount", "croupier-operator", "-n", namespace)
    kubectl.apply(json.dumps(deployment))
    pods_admitted(kubectl, namespace, "app.kubernetes.io/name=croupier-operator", 1)


def test_the_admission_check_catches_a_pod_that_breaks_restricted(kubectl: Kubectl, namespace: str) -> None:
    """The control the tests above rely on: in this cluster a restricted namespace does reject a non-compliant pod."""
    restrict(kubectl, namespace)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "loose", "namespace": namespace},
        "spec": {
            "selector": {"matchLabels": {"app": "loose"}},
            "template": {
                "metadata": {"labels": {"app": "loose"}},
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            },
        },
    }
    kubectl.apply(json.dumps(deployment))
    with pytest.raises(AssertionError, match="PodSecurity"):
        pods_admitted(kubectl, namespace, "app=loose", 1)


def _live_network_policy(kubectl: Kubectl, namespace: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = wait_for(
        lambda: (
            kubectl.json("get", "networkpolicy", name, "-n", namespace)
            if kubectl("get", "networkpolicy", name, "-n", namespace, check=False).returncode == 0
            else None
        ),
        timeout=60,
        what=f"the NetworkPolicy {name}",
    )
    return found


def test_experiment_and_model_network_policies_are_applied_as_the_spec_says(
    policies: Policies, kubectl: Kubectl, operator: OperatorProcess
) -> None:
    """Each kind's NetworkPolicy, applied by the operator with server-side apply (so the API server validated it), as
    the spec says; a DecisionPolicy an Experiment targets admits that Experiment's runtime pods whatever its peers."""
    namespace = policies.namespace
    install_gateway_api(kubectl)  # the ModelDeployment controller watches routes
    lobby = {"namespaceSelector": {"matchLabels": {"team": "games"}}, "podSelector": {"matchLabels": {"app": "lobby"}}}
    policies.apply("banner", networkPolicy={"ingress": [lobby]})
    variants = [{"name": "control", "weight": 50, "payload": {}}, {"name": "bandit", "weight": 50,
                "decisionPolicyRef": {"name": "banner"}}]  # fmt: skip
    kubectl.apply(
        json.dumps(experiment("checkout", namespace, variants, networkPolicy={"ingress": [{"podSelector": {}}]}))
    )
    gateway = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}}
    kubectl.apply(model_manifest("ranker", namespace, networkPolicy={"ingress": [gateway]}))

    policy = _live_network_policy(kubectl, namespace, "banner")
    experiment_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "croupier-experiment"}}}
    assert policy["spec"]["ingress"][0]["from"] == [lobby, experiment_pods]

    runtime = _live_network_policy(kubectl, namespace, "checkout-experiment")
    assert runtime["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "checkout"
    assert runtime["spec"]["ingress"][0]["from"] == [{"podSelector": {}}]
    operator_peer = runtime["spec"]["ingress"][1]["from"][0]
    assert operator_peer["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "croupier-operator"}}
    assert runtime["metadata"]["ownerReferences"][0]["kind"] == "Experiment"

    server = _live_network_policy(kubectl, namespace, "ranker-tfserving")
    router_pods = {
        "app.kubernetes.io/name": "croupier-model-router",
        "app.kubernetes.io/instance": "ranker",
        "croupier.dev/server": "router",
    }
    assert server["spec"]["ingress"][0]["from"] == [{"podSelector": {"matchLabels": router_pods}}]
    assert {p["port"] for p in server["spec"]["ingress"][0]["ports"]} == {8500, 8501}
    router = _live_network_policy(kubectl, namespace, "ranker-router")
    scoring = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "croupier-runtime"}}}
    assert router["spec"]["ingress"][0]["from"] == [gateway, scoring]
    assert router["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"

    # Turned off: the same object, admitting every peer (nothing is deleted).
    kubectl("patch", "experiment", "checkout", "-n", namespace, "--type=merge",
            "-p", json.dumps({"spec": {"networkPolicy": {"enabled": False}}}))  # fmt: skip
    wait_for(
        lambda: (
            kubectl.json("get", "networkpolicy", "checkout-experiment", "-n", namespace)["spec"].get("ingress") == [{}]
        ),
        timeout=60,
        what="the experiment's NetworkPolicy admitting every peer",
    )
