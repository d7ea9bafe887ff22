"""Statuses as GitOps tools see them: the first status of a new object of every kind comes within seconds (kstatus
calls an object without status Current, Argo CD's check calls it Progressing), and the states the Argo CD / Flux
checks are tested with come from here (recorded with CROUPIER_RECORD_HEALTH_TESTDATA, see health_recorder.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.ops.health_recorder import record

from croupier.devcluster.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = {"ModelDeployment": "modeldeployment-canary.yaml", "Experiment": "experiment-abn.yaml"}
# kstatus (Flux) calls an object without status Current: the first status must come quickly. The operator coalesces
# an in-progress DecisionPolicy status for up to 5 s (one write on the way to Ready), so the bound is above that.
FIRST_STATUS_SECONDS = 10.0


def _manifest(kind: str, name: str, namespace: str) -> dict[str, Any]:
    if kind == "DecisionPolicy":
        body: dict[str, Any] = json.loads(_policy(name, namespace))
        return body
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / EXAMPLES[kind]).read_text())
    doc["metadata"] = {"name": name, "namespace": namespace}
    return doc


def _policy(name: str, namespace: str, **spec: Any) -> str:
    from integration.operator.conftest import manifest  # noqa: PLC0415 - the operator tests' policy manifest

    return manifest(name, namespace, **spec)


@pytest.mark.parametrize("kind", ["DecisionPolicy", "ModelDeployment", "Experiment"])
def test_a_new_object_of_every_kind_gets_a_first_status_within_seconds(kind: str, policies, kubectl) -> None:
    namespace, name = policies.namespace, f"first-{kind.lower()}"
    policies.runtime.stop()  # nothing answers for the new policy, as in a new cluster
    created = json.loads(
        kubectl("create", "-o", "json", "-f", "-", input=json.dumps(_manifest(kind, name, namespace))).stdout
    )
    start = time.monotonic()
    assert not created.get("status"), "a just-created object has no status yet"
    record(created)
    first = None
    while time.monotonic() - start < FIRST_STATUS_SECONDS + 5:
        body = kubectl.json("get", kind.lower(), name, "-n", namespace)
        if (body.get("status") or {}).get("conditions"):
            first = body
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - start
    assert first is not None, f"no status on {kind} {name} after {elapsed:.1f} s"
    assert elapsed < FIRST_STATUS_SECONDS, f"first status after {elapsed:.1f} s"
    status = first["status"]
    assert status["observedGeneration"] == first["metadata"]["generation"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) == {"Ready", "Progressing", "Degraded", "Reconciling", "Stalled"}
    ready = conditions["Ready"]
    if kind in ("DecisionPolicy", "ModelDeployment"):
        # Progressing (rollout, TF Serving pods starting) or, when the pods were quicker than the runtime or the model
        # server, a verdict about it. Plain kstatus sees Reconciling with Progressing: InProgress, no longer Current.
        assert ready["status"] == "False" and (
            conditions["Progressing"]["status"] == "True" or conditions["Degraded"]["status"] == "True"
        ), conditions
        assert conditions["Reconciling"]["status"] == conditions["Progressing"]["status"], conditions
    else:
        # The example's targets (DecisionPolicy homepage-banner, ModelDeployment ranker) do not exist here: control
        # is served until they do.
        assert ready["status"] == "False" and ready["reason"] == "TargetNotFound", conditions


def test_decision_policy_states_seen_by_gitops_tools(policies, kubectl) -> None:
    """Drive one policy through the states a GitOps tool meets, recording each one."""
    namespace, name = policies.namespace, "banner"
    policies.apply(name)
    policies.serve(name, 1)
    record(policies.wait_condition(name, "Ready", "True", "Available"))

    # The runtime stops answering after Ready was confirmed: Ready is kept, Degraded says why.
    policies.runtime.stop()
    record(policies.wait_condition(name, "Degraded", "True", "RuntimeUnreachable"))
    policies.serve(name, 1)
    policies.wait_condition(name, "Degraded", "False")

    # A spec change the runtime has not loaded yet, then the rolled runtime serving it (learning paused).
    kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", '{"spec": {"paused": true}}')
    record(policies.wait_condition(name, "Ready", "False", "StaleGeneration"))
    policies.serve(name, 2)
    record(policies.wait_condition(name, "Ready", "True", "Paused"))

    # Scaled to zero: settled, nothing serves.
    kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", '{"spec": {"serving": {"replicas": 0}}}')
    policies.wait_condition(name, "Ready", "False", "ScaledToZero")
    scaled = wait_for(
        lambda: b if (b := policies.get(name))["status"].get("replicas") == 0 else None, timeout=30, what="0 replicas"
    )
    record(scaled)


def test_decision_policy_blocked_states(policies, kubectl) -> None:
    namespace = policies.namespace
    # A runtime that never answers for a new policy (the local runtime, shared by the session, is stopped).
    policies.runtime.stop()
    policies.apply("silent")
    record(policies.wait_condition("silent", "Ready", "False", "RuntimeUnreachable"))
    # A child's name held by someone else's object.
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "taken", "namespace": namespace, "labels": {"team": "someone-else"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    }
    kubectl.apply(json.dumps(service))
    policies.apply("taken")
    record(policies.wait_condition("taken", "Degraded", "True", "ChildConflict"))


def test_decision_policy_waiting_for_storage(policies, kubectl) -> None:
    """No provisioner: the state claim stays Pending, so the rollout waits; resizing an unbound claim is refused."""
    namespace, name = policies.namespace, "stored"
    policies.runtime.stop()
    state = {"backend": "Embedded", "persistence": {"enabled": True, "size": "1Gi"}}
    policies.apply(name, state=state)
    record(policies.wait_condition(name, "Ready", "False", "RolloutInProgress"))
    resize = '{"spec": {"state": {"persistence": {"size": "2Gi"}}}}'
    kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", resize)
    body = policies.wait_condition(name, "Degraded", "True", "ApplyRejected")
    assert "PersistentVolumeClaim" in policies.condition(body, "Degraded")["message"]
    record(body)


STALE_PATCH = {
    "DecisionPolicy": {"paused": True},
    "ModelDeployment": {"serving": {"replicas": 0}},
    "Experiment": {"state": "Paused"},
}


@pytest.mark.parametrize("kind", ["DecisionPolicy", "ModelDeployment", "Experiment"])
def test_a_spec_change_the_operator_has_not_seen_yet(kind: str, policies, kubectl, operator) -> None:
    """What a GitOps tool sees between a commit and the operator's next reconcile: metadata.generation ahead of
    status.observedGeneration (here the operator is stopped in between, so the moment lasts)."""
    namespace, name = policies.namespace, f"stale-{kind.lower()}"
    policies.runtime.stop()
    kubectl.apply(json.dumps(_manifest(kind, name, namespace)))
    wait_for(
        lambda: (
            (kubectl.json("get", kind.lower(), name, "-n", namespace).get("status") or {}).get("observedGeneration")
            == 1
        ),
        timeout=FIRST_STATUS_SECONDS,
        what=f"the first status of {kind} {name}",
    )
    operator.stop()
    try:
        patch = json.dumps({"spec": STALE_PATCH[kind]})
        kubectl("patch", kind.lower(), name, "-n", namespace, "--type=merge", "-p", patch)
        body = kubectl.json("get", kind.lower(), name, "-n", namespace)
        assert body["metadata"]["generation"] == 2 and body["status"]["observedGeneration"] == 1
        record(body, stem="stale-observed-generation")
    finally:
        operator.start()
