"""Blocked states of every kind, driven against the real control plane and operator and recorded as health-check
testdata (CROUPIER_RECORD_HEALTH_TESTDATA, see health_recorder.py):

- a child the API server refuses (a ResourceQuota: 403 exceeded quota) -> ApplyRejected;
- a child the API server cannot take now (a validating webhook that does not answer, failurePolicy Fail: 500) ->
  ApplyFailed;
- a child's name held by someone else's object -> ChildConflict;
- a runtime Deployment past its progress deadline (a ResourceQuota of zero pods, the deadline shortened on the live
  Deployment) -> RolloutStalled;
- a name or a spec the operator cannot use -> InvalidName / InvalidSpec: today's CRDs refuse both at admission, so
  they are stored only through a CRD without the schema rules (as from an older release's manifests).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
from integration.operator.conftest import manifest as policy_manifest
from integration.ops.health_recorder import record

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.ports import free_ports
from croupier.devcluster.waiting import wait_for

KINDS = ("DecisionPolicy", "ModelDeployment", "Experiment")
PLURAL = {"DecisionPolicy": "decisionpolicies", "ModelDeployment": "modeldeployments", "Experiment": "experiments"}
# The Service each kind renders for an object called ``name``.
SERVICE = {"DecisionPolicy": "{}", "ModelDeployment": "{}", "Experiment": "{}-experiment"}
AB = [{"name": "a", "weight": 50, "payload": {"color": "blue"}}, {"name": "b", "weight": 50, "payload": {"c": 1}}]


def body(kind: str, name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    if kind == "DecisionPolicy":
        policy: dict[str, Any] = json.loads(policy_manifest(name, namespace, **spec))
        return policy
    if kind == "ModelDeployment":
        base: dict[str, Any] = {
            "model": {"name": "ranker", "storageUri": "file:///models/ranker"},
            "stable": {"version": 1},
        }
    else:
        base = {
            "variants": AB,
            "control": "a",
            "assignment": {"unitKey": "userId", "salt": "s"},
            "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
        }
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {**base, **spec},
    }


def conditions(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (found.get("status") or {}).get("conditions") or ()}


def wait_condition(
    kubectl: Kubectl, kind: str, name: str, namespace: str, want: tuple[str, str, str], *, timeout: float = 60
) -> dict[str, Any]:
    type_, status, reason = want

    def check() -> dict[str, Any] | None:
        found: dict[str, Any] = kubectl.json("get", kind.lower(), name, "-n", namespace)
        condition = conditions(found).get(type_, {})
        current = condition.get("observedGeneration") == found["metadata"]["generation"]
        return found if current and (condition.get("status"), condition.get("reason")) == (status, reason) else None

    try:
        result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{kind} {name}: {type_}={status} ({reason})")
    except TimeoutError:
        now = kubectl.json("get", kind.lower(), name, "-n", namespace).get("status")
        raise AssertionError(f"{kind} {name}: {type_} never {status}/{reason}; status {json.dumps(now)}") from None
    return result


def quota(kubectl: Kubectl, namespace: str, name: str, hard: dict[str, str]) -> None:
    """A ResourceQuota, once the quota controller has counted what the namespace holds (admission uses that)."""
    meta = {"name": name, "namespace": namespace}
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta, "spec": {"hard": hard}}))
    wait_for(
        lambda: (
            set((kubectl.json("get", "resourcequota", name, "-n", namespace).get("status") or {}).get("used") or ())
            >= set(hard)
        ),
        timeout=30,
        what=f"ResourceQuota {name} counted",
    )


@pytest.fixture
def silent_webhook(kubectl: Kubectl, namespace: str) -> Iterator[str]:
    """Every ConfigMap create in the namespace goes through a webhook where nothing listens (failurePolicy Fail)."""
    (port,) = free_ports(1)
    name = f"{namespace}-silent"[:63]
    webhook = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [
            {
                "name": "silent.croupier.dev",
                "clientConfig": {"url": f"https://127.0.0.1:{port}/validate"},
                "rules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["CREATE", "UPDATE"],
                        "resources": ["configmaps"],
                    }
                ],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "failurePolicy": "Fail",
                "sideEffects": "None",
                "admissionReviewVersions": ["v1"],
                "timeoutSeconds": 2,
            }
        ],
    }
    kubectl.apply(json.dumps(webhook))
    try:
        yield name
    finally:
        kubectl("delete", "validatingwebhookconfiguration", name, "--ignore-not-found")


@pytest.mark.parametrize("kind", KINDS)
def test_a_child_the_api_server_cannot_take_now_is_apply_failed(
    kind: str, silent_webhook: str, operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    kubectl.apply(json.dumps(body(kind, "webhooked", namespace)))
    found = wait_condition(kubectl, kind, "webhooked", namespace, ("Degraded", "True", "ApplyFailed"))
    assert "failed calling webhook" in conditions(found)["Degraded"]["message"], conditions(found)
    record(found)
    # The webhook gone, the retry goes through: nothing was left half-done.
    kubectl("delete", "validatingwebhookconfiguration", silent_webhook)
    wait_for(
        lambda: (
            conditions(kubectl.json("get", kind.lower(), "webhooked", "-n", namespace))["Ready"]["reason"]
            != "ApplyFailed"
        ),
        timeout=90,
        what="the retry once the webhook is gone",
    )


@pytest.mark.parametrize("kind", ["ModelDeployment", "Experiment"])  # DecisionPolicy: test_health_states.py
def test_a_refused_child_and_a_taken_name(kind: str, operator: Any, kubectl: Kubectl, namespace: str) -> None:
    # A Service already there under the child's name, owned by nobody and not managed by Croupier.
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": SERVICE[kind].format("taken"), "namespace": namespace, "labels": {"team": "other"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    }
    kubectl.apply(json.dumps(service))
    kubectl.apply(json.dumps(body(kind, "taken", namespace)))
    found = wait_condition(kubectl, kind, "taken", namespace, ("Degraded", "True", "ChildConflict"))
    assert "not managed by" in conditions(found)["Degraded"]["message"]
    record(found)
    theirs = kubectl.json("get", "service", service["metadata"]["name"], "-n", namespace)
    assert theirs["spec"]["selector"] == {"app": "theirs"} and "ownerReferences" not in theirs["metadata"]

    # No ConfigMap may be created in the namespace any more: the API server refuses the child (403 exceeded quota).
    quota(kubectl, namespace, "no-configmaps", {"count/configmaps": "0"})
    kubectl.apply(json.dumps(body(kind, "refused", namespace)))
    found = wait_condition(kubectl, kind, "refused", namespace, ("Degraded", "True", "ApplyRejected"))
    assert "exceeded quota" in conditions(found)["Degraded"]["message"], conditions(found)
    record(found)


@pytest.mark.parametrize("kind", ["DecisionPolicy", "Experiment"])
def test_a_rollout_past_its_progress_deadline_is_stalled(
    kind: str, operator: Any, local_runtime: Any, kubectl: Kubectl, namespace: str
) -> None:
    local_runtime.stop()  # nothing answers for the object: its pods never run
    quota(kubectl, namespace, "no-pods", {"pods": "0"})
    kubectl.apply(json.dumps(body(kind, "stuck", namespace)))
    deployment = SERVICE[kind].format("stuck")
    wait_for(
        lambda: kubectl("get", "deployment", deployment, "-n", namespace, check=False).returncode == 0,
        timeout=30,
        what=f"Deployment {deployment}",
    )
    # A field the operator does not set (Kubernetes' default is 600 s): shortened by another field manager, kept.
    kubectl("patch", "deployment", deployment, "-n", namespace, "--field-manager=health-test", "--type=merge",
            "-p", '{"spec": {"progressDeadlineSeconds": 1}}')  # fmt: skip
    found = wait_condition(kubectl, kind, "stuck", namespace, ("Degraded", "True", "RolloutStalled"), timeout=90)
    assert "progress" in conditions(found)["Degraded"]["message"], conditions(found)
    record(found)


# --- names and specs today's CRDs refuse ------------------------------------------------------------------------------

INVALID_SPEC: dict[str, dict[str, Any]] = {
    # Two arms with one name.
    "DecisionPolicy": {"arms": [{"name": "blue"}, {"name": "blue"}], "algorithm": {"type": "UCB1"}},
    # Version 0 does not exist in TF Serving's numbering.
    "ModelDeployment": {"stable": {"version": 0}},
    # Weights that do not add up to 100.
    "Experiment": {"variants": [{**AB[0], "weight": 50}, {**AB[1], "weight": 40}]},
}


def _relaxed(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD without name rules and with an unchecked spec: what a cluster installed from older manifests holds."""
    relaxed = copy.deepcopy(crd)
    for field in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation"):
        relaxed["metadata"].pop(field, None)
    relaxed.pop("status", None)
    for version in relaxed["spec"]["versions"]:
        schema = version["schema"]["openAPIV3Schema"]
        schema.pop("x-kubernetes-validations", None)
        schema["properties"]["metadata"] = {"type": "object"}
        schema["properties"]["spec"] = {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    return relaxed


def _restore(crd: dict[str, Any]) -> dict[str, Any]:
    restored = copy.deepcopy(crd)
    for field in ("resourceVersion", "managedFields", "uid", "creationTimestamp", "generation"):
        restored["metadata"].pop(field, None)
    restored.pop("status", None)
    return restored


@pytest.mark.parametrize("kind", KINDS)
def test_a_name_or_spec_the_crd_no_longer_admits_is_invalid(
    kind: str, operator: Any, kubectl: Kubectl, namespace: str
) -> None:
    crd_name = f"{PLURAL[kind]}.croupier.dev"
    original = kubectl.json("get", "crd", crd_name)
    bad_name = body(kind, "1example", namespace)
    bad_spec = body(kind, "example", namespace)
    bad_spec["spec"] = {**bad_spec["spec"], **INVALID_SPEC[kind]}
    # Today's CRDs refuse every such name and spec at admission; the operator checks them again.
    stored = []
    for obj in (bad_name, bad_spec):
        done = kubectl("create", "-f", "-", input=json.dumps(obj), check=False)
        if done.returncode == 0:
            stored.append(obj)
    assert stored == []
    kubectl("replace", "-f", "-", input=json.dumps(_relaxed(original)))
    try:
        for obj in (o for o in (bad_name, bad_spec) if o not in stored):
            # The API server takes a moment to switch to the replaced schema.
            wait_for(
                lambda obj=obj: kubectl("create", "-f", "-", input=json.dumps(obj), check=False).returncode == 0,
                timeout=30,
                what=f"{kind} {obj['metadata']['name']} stored under the relaxed CRD",
            )
        found = wait_condition(kubectl, kind, "1example", namespace, ("Degraded", "True", "InvalidName"))
        assert "metadata.name" in conditions(found)["Ready"]["message"]
        record(found)
        found = wait_condition(kubectl, kind, "example", namespace, ("Degraded", "True", "InvalidSpec"))
        assert conditions(found)["Ready"]["message"].startswith("spec")
        record(found)
        # Nothing was rendered for either.
        children = kubectl.json("get", "configmaps,services,deployments", "-n", namespace)["items"]
        assert not [c for c in children if (c["metadata"].get("ownerReferences") or [{}])[0].get("kind") == kind]
    finally:
        for name in ("1example", "example"):
            kubectl("delete", kind.lower(), name, "-n", namespace, "--ignore-not-found", "--wait=false")
        kubectl("replace", "-f", "-", input=json.dumps(_restore(original)))
