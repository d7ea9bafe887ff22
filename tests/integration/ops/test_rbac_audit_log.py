"""RBAC audit from what the operator really does: a control plane of its own with an audit policy (Metadata level,
the operator's ServiceAccount only), the operator under exactly the install's ServiceAccount (config/rbac), and a
full life cycle of all three kinds: create, spec change, status, delete; a ModelDeployment whose routing mode changes
from GatewayAPI to VersionLabels (the operator prunes the routes and per-version Services); an Experiment with a
DecisionPolicy target and auth Secrets the stats probe reads.

Then the audit log decides: every (apiGroup, resource, verb) the ServiceAccount requested must be granted and must
never have been refused (403), and every grant must have been used, or be listed in NOT_REACHED with the code path
that needs it and why this run does not reach it. REMOVED records the grants this test found unused and the roles
dropped; none may come back. A server-side apply answered 201 counts as a use of `create` (the API server authorizes it
inside the patch). test_rbac_audit.py keeps the roles of kustomize and the chart equal
to each other and to the code's declarations; this test is the ground truth both are checked against.

About 45 s on the 2-core development machine (37 s of life cycle, 5 s starting the control plane), 90 s
under heavy load.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.operator.conftest import OperatorProcess
from integration.ops.test_rbac_audit import Grant, _roles, granted

from croupier.devcluster.controlplane import ControlPlane
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.node import FakeNode
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
OPERATOR_NAMESPACE = "croupier-system"
SERVICE_ACCOUNT = f"system:serviceaccount:{OPERATOR_NAMESPACE}:croupier-operator"
NAMESPACE = "audited"
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [{"level": "Metadata", "users": [SERVICE_ACCOUNT]}, {"level": "None"}],
}

CHILD_KINDS = (
    ("", "configmaps"),
    ("", "services"),
    ("", "persistentvolumeclaims"),
    ("apps", "deployments"),
    ("policy", "poddisruptionbudgets"),
    ("networking.k8s.io", "networkpolicies"),
    ("gateway.networking.k8s.io", "httproutes"),
    ("gateway.networking.k8s.io", "grpcroutes"),
)
# Grants this run does not use, each with the code that needs it and why the run does not get there.
NOT_REACHED: dict[Grant, str] = {
    **{
        (group, plural, "get"): "operator/core/applier.py `_ensure`: a child missing from the operator's index "
        "is created with a create-only apply; only when that answers 409 (the name is held by an object the index "
        "has not seen: someone else's, or a watch lagging) does the operator GET it to refuse a foreign object. "
        "Here every child name is free."
        for group, plural in CHILD_KINDS
    },
    **{
        ("croupier.dev", f"{plural}/finalizers", "update"): "children carry ownerReferences with "
        "blockOwnerDeletion; the OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift and hardened "
        "clusters) then requires update on the owner's finalizers. It is an authorization check inside the API "
        "server, not a request, and the local control plane does not enable the plugin."
        for plural in ("decisionpolicies", "modeldeployments", "experiments")
    },
    ("networking.k8s.io", "networkpolicies", "delete"): "operator/core/applier.py `prune`: a ModelDeployment deletes "
    "every child it no longer renders. Both of its NetworkPolicies are rendered in both routing modes, so a mode "
    "change leaves none behind; a NetworkPolicy left by an older operator version (another name) would be.",
}
# Grants no code path of the operator or of Kopf used (found by this test, then removed from the roles; kept here as
# the record of why, and checked: none of them may come back as a grant).
REMOVED: dict[Grant, str] = {
    **{
        ("croupier.dev", f"{plural}/status", "get"): "status is written with merge patches and read from the object "
        "itself (watch events); nothing reads the status subresource"
        for plural in ("decisionpolicies", "modeldeployments", "experiments")
    },
    ("croupier.dev", "experiments", "get"): "Kopf watches Experiments and nothing reads one by name (an Experiment's "
    "targets, DecisionPolicies and ModelDeployments, are read by name: those are used)",
    ("apiextensions.k8s.io", "customresourcedefinitions", "get"): "Kopf's resource scanning uses discovery, then "
    "lists and watches CRDs; it never reads one by name",
    ("", "namespaces", "get"): "Kopf's namespace observer lists and watches namespaces (with a namespace list); it "
    "never reads one by name",
    ("events.k8s.io", "events", "create"): "Kopf posts core/v1 Events; it names events.k8s.io only to exclude it "
    "from its watches (kopf/_cogs/structs/references.py)",
}


def policy(generation_marker: float) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "banner", "namespace": NAMESPACE},
        "spec": {
            "arms": [{"name": "blue"}, {"name": "green"}],
            "algorithm": {"type": "ThompsonSampling"},
            "exploration": {"minProbability": generation_marker},
            # No state claim: nothing provisions volumes here, and the probe needs the runtime's pod running.
            "state": {"persistence": {"enabled": False}},
        },
    }


def model_deployment(name: str, routing: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"name": name, "storageUri": f"file:///models/{name}"},
            "stable": {"version": 1},
            "canary": {"version": 2, "steps": [{"weight": 10, "pauseSeconds": 600}]},
            "routing": routing,
        },
    }


# Both route kinds: an HTTP and a gRPC ModelDeployment, each moved from GatewayAPI to VersionLabels.
MODELS = {"ranker": "HTTP", "scorer": "GRPC"}


def gateway_routing(protocol: str) -> dict[str, Any]:
    return {"mode": "GatewayAPI", "protocol": protocol, "parentRefs": [{"name": "edge"}]}


def label_routing(protocol: str) -> dict[str, Any]:
    return {"mode": "VersionLabels", "protocol": protocol}


def experiment(minimum: int) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "checkout", "namespace": NAMESPACE},
        "spec": {
            "variants": [
                {"name": "a", "weight": 34, "payload": {"color": "blue"}},
                {"name": "b", "weight": 33, "decisionPolicyRef": {"name": "banner"}},
                {"name": "c", "weight": 33, "modelDeploymentRef": {"name": "ranker", "version": 2}},
            ],
            "control": "a",
            "assignment": {"unitKey": "userId", "salt": "audit"},
            "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
            "analysis": {"method": "Sequential", "minimumSamplesPerVariant": minimum},
        },
    }


def auth_secret(owner: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{owner}-auth", "namespace": NAMESPACE, "labels": {"croupier.dev/runtime-auth": "true"}},
        "stringData": {"decide": "d-token", "rewards": "r-token", "admin": "a-token"},
    }


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ControlPlane, Kubectl]]:
    work = tmp_path_factory.mktemp("audited")
    policy_file = work / "audit-policy.yaml"
    policy_file.write_text(yaml.safe_dump(AUDIT_POLICY))
    with ControlPlane(work_dir=work / "cluster", node=FakeNode(), audit_policy=policy_file) as plane:
        yield plane, Kubectl(binary=plane.binaries.path("kubectl"), kubeconfig=plane.kubeconfig)


def operator_kubeconfig(kubectl: Kubectl, admin: Path, path: Path) -> Path:
    kubectl("create", "namespace", OPERATOR_NAMESPACE)
    kubectl("apply", "--server-side", "-k", str(ROOT / "config" / "rbac"))
    token = kubectl("create", "token", "croupier-operator", "-n", OPERATOR_NAMESPACE, "--duration=1h").stdout.strip()
    config = yaml.safe_load(admin.read_text())
    config["users"] = [{"name": "croupier-operator", "user": {"token": token}}]
    config["contexts"] = [
        {"name": "operator", "context": {"cluster": config["clusters"][0]["name"], "user": "croupier-operator"}}
    ]
    config["current-context"] = "operator"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def used_in(audit_log: Path) -> tuple[set[Grant], list[str]]:
    """(group, resource[/subresource], verb) of every resource request of the ServiceAccount, and the refused ones."""
    used: set[Grant] = set()
    refused: list[str] = []
    for line in audit_log.read_text().splitlines():
        event = json.loads(line)
        if event["user"]["username"] != SERVICE_ACCOUNT or event.get("stage") != "ResponseComplete":
            continue
        ref = event.get("objectRef")
        if ref is None or "resource" not in ref:
            continue  # discovery (/api, /apis, /version): granted to every authenticated user
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        grant = (ref.get("apiGroup", ""), resource, event["verb"])
        used.add(grant)
        code = event.get("responseStatus", {}).get("code", 0)
        if event["verb"] == "patch" and code == 201:
            # A server-side apply that made the object: the API server also authorized `create` (not a request of
            # its own in the log).
            used.add((grant[0], grant[1], "create"))
        if code in (401, 403):
            refused.append(f"{grant} {event['requestURI']} -> {code}")
    return used, refused


def test_the_operator_uses_exactly_its_grants(audited: tuple[ControlPlane, Kubectl], tmp_path: Path) -> None:
    plane, kubectl = audited
    assert plane.audit_log is not None
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    subprocess.run(
        ["bash", str(ROOT / "hack" / "gatewayapi" / "crds.sh"), "--apply"],
        env={**kubectl.env, "KUBECTL": str(kubectl.binary)},
        check=True,
        capture_output=True,
        timeout=600,
    )
    for resource in ("decisionpolicies", "modeldeployments", "experiments"):
        wait_for(
            lambda r=resource: kubectl("get", f"{r}.croupier.dev", "-A", check=False).returncode == 0,
            timeout=60,
            interval=0.5,
            what=f"{resource} served",
        )
    config = operator_kubeconfig(kubectl, plane.kubeconfig, tmp_path / "operator.kubeconfig")
    (closed,) = free_ports(1)  # nothing listens: the probes fail fast, after reading the auth Secret
    liveness_port, metrics_port = free_ports(2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROUPIER_OPERATOR_")}
    env.update(
        {
            "KUBECONFIG": str(config),
            "CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE": f"http://127.0.0.1:{closed}/{{namespace}}/{{name}}",
            "CROUPIER_OPERATOR_MODEL_SERVER_ADDRESS_TEMPLATE": f"127.0.0.1:{closed}",
            "CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE": f"http://127.0.0.1:{closed}/metrics",
            "CROUPIER_OPERATOR_RESYNC_INTERVAL_SECONDS": "2",
            "CROUPIER_OPERATOR_RESYNC_INITIAL_DELAY_SECONDS": "0.5",
            "CROUPIER_OPERATOR_PROBE_TIMEOUT_SECONDS": "1",
            "CROUPIER_OPERATOR_LIVENESS_ENDPOINT": f"http://127.0.0.1:{liveness_port}/healthz",
            "CROUPIER_OPERATOR_METRICS_PORT": str(metrics_port),
            "CROUPIER_OPERATOR_LOG_FORMAT": "json",
            "CROUPIER_OPERATOR_RUNTIME_IMAGE": "ghcr.io/croupier-dev/croupier-runtime:test",
            # A list of namespaces, as the chart's namespaced install: Kopf then also lists and watches namespaces.
            "CROUPIER_OPERATOR_NAMESPACES": NAMESPACE,
        }
    )
    operator = OperatorProcess(
        env=env, log=tmp_path / "operator.log", liveness_port=liveness_port, metrics_port=metrics_port
    )
    kubectl("create", "namespace", NAMESPACE)
    operator.start()
    try:
        life_cycle(kubectl, operator)
    finally:
        operator.stop()
    used, refused = used_in(plane.audit_log)
    assert used, "the audit log has no request of the operator's ServiceAccount"
    assert not refused, f"refused requests: {refused}"
    documents = list(yaml.safe_load_all(kubectl("kustomize", str(ROOT / "config" / "rbac")).stdout))
    grants = granted(_roles(documents))
    assert used <= grants, f"used but not granted: {sorted(used - grants)}"
    listed = set(NOT_REACHED)
    assert not listed - grants, f"listed but not granted (remove them from the lists): {sorted(listed - grants)}"
    unused = grants - used - listed
    assert not unused, f"granted but not used by this run nor listed in NOT_REACHED: {sorted(unused)}"
    reached = listed & used
    assert not reached, f"listed as not reached but used (remove them from NOT_REACHED): {sorted(reached)}"
    back = set(REMOVED) & grants
    assert not back, f"granted again though no code uses them: {sorted(back)}"


def life_cycle(kubectl: Kubectl, operator: OperatorProcess) -> None:
    def apply(body: dict[str, Any]) -> None:
        kubectl.apply(json.dumps(body))

    def get(kind: str, name: str) -> dict[str, Any] | None:
        found = kubectl("get", f"{kind}.croupier.dev", name, "-n", NAMESPACE, "-o", "json", check=False)
        return json.loads(found.stdout) if found.returncode == 0 else None

    def observed(kind: str, name: str) -> Callable[[], bool]:
        """The operator wrote a status with conditions for the object's current generation."""

        def check() -> bool:
            body = get(kind, name)
            if body is None:
                return False
            generation = body["metadata"]["generation"]
            conditions = (body.get("status") or {}).get("conditions") or []
            return bool(conditions) and all(c.get("observedGeneration") == generation for c in conditions)

        return check

    def wait(check: Callable[[], bool], what: str) -> None:
        wait_for(check, timeout=90, interval=0.5, what=what, on_tick=operator._check)

    def children(kind: str) -> list[str]:
        found = kubectl.json("get", kind, "-n", NAMESPACE)["items"]
        return [item["metadata"]["name"] for item in found]

    apply(auth_secret("banner"))
    apply(auth_secret("checkout"))
    apply(policy(0.01))
    wait(observed("decisionpolicies", "banner"), "the DecisionPolicy's first status")
    apply(policy(0.02))
    wait(observed("decisionpolicies", "banner"), "the DecisionPolicy's status after a spec change")

    # The probe reads the labelled auth Secret once the runtime's Deployment is rolled out (kwok runs its pod).
    wait(lambda: operator.metric("croupier_operator_runtime_probes_total") > 0, "the DecisionPolicy's stats probe")

    for name, protocol in MODELS.items():
        apply(model_deployment(name, gateway_routing(protocol)))
    for name in MODELS:
        wait(observed("modeldeployments", name), f"ModelDeployment {name}'s first status")
    wait(lambda: len(children("httproutes")) == 1 and len(children("grpcroutes")) == 1, "an HTTPRoute and a GRPCRoute")
    for name, protocol in MODELS.items():
        apply(model_deployment(name, label_routing(protocol)))
    for name in MODELS:
        wait(observed("modeldeployments", name), f"ModelDeployment {name}'s status after the routing mode change")
    wait(lambda: not children("httproutes") and not children("grpcroutes"), "the routes pruned")

    apply(experiment(200))
    wait(observed("experiments", "checkout"), "the Experiment's first status")
    apply(experiment(300))
    wait(observed("experiments", "checkout"), "the Experiment's status after a spec change")

    objects = (
        ("experiments", "checkout"),
        *(("modeldeployments", name) for name in MODELS),
        ("decisionpolicies", "banner"),
    )
    for kind, name in objects:
        kubectl("delete", f"{kind}.croupier.dev", name, "-n", NAMESPACE, "--wait=false")
    wait(lambda: all(get(k, n) is None for k, n in objects), "every object deleted (finalizers removed)")
