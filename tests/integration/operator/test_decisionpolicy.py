"""The DecisionPolicy operator against a real API server, controller-manager (garbage collector) and kwok pods."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from croupier.devcluster.waiting import wait_for

# Fixtures (conftest.py): `policies` (helpers bound to the test's namespace, the local runtime and the operator),
# `operator` (the subprocess), `kubectl` (admin).


@pytest.fixture
def ready(policies) -> str:
    """A DecisionPolicy that reached Ready=True with the local runtime serving it."""
    policies.apply("banner")
    policies.serve("banner", 1)
    policies.wait_condition("banner", "Ready", "True", "Available")
    return "banner"


def test_apply_creates_owned_children_and_becomes_ready(policies, kubectl) -> None:
    name, namespace = "banner", policies.namespace
    policies.apply(name)
    kids = policies.wait_children(name, 4)
    uid = policies.get(name)["metadata"]["uid"]
    for kind, child in kids.items():
        assert child["metadata"]["ownerReferences"] == [
            {
                "apiVersion": "croupier.dev/v1alpha1",
                "kind": "DecisionPolicy",
                "name": name,
                "uid": uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ], kind
        managed = kubectl.json("get", kind.lower(), child["metadata"]["name"], "-n", namespace, "--show-managed-fields")
        appliers = {m["manager"] for m in managed["metadata"]["managedFields"] if m["operation"] == "Apply"}
        assert appliers == {"croupier-operator"}, kind
    # kwok runs the pod (Running/Ready); Ready still waits for the runtime to serve this generation.
    wait_for(lambda: policies.status(name).get("readyReplicas") == 1, timeout=60, what="readyReplicas 1")
    not_yet = policies.wait_condition(name, "Ready", "False", "RuntimeUnreachable")
    assert policies.condition(not_yet, "Degraded")["reason"] == "RuntimeUnreachable"

    policies.serve(name, 1)
    kubectl("wait", "--for=condition=Ready", f"dp/{name}", "-n", namespace, "--timeout=60s", timeout=70)
    status = policies.status(name)
    assert status["observedGeneration"] == 1
    assert status["endpoint"] == f"http://{name}.{namespace}.svc:80"
    assert (status["replicas"], status["readyReplicas"]) == (1, 1)
    assert status["servedGeneration"] == 1
    assert [a["name"] for a in status["arms"]] == ["blue", "red", "green"]
    assert status["totals"]["decisions"] == 0
    assert status["lastProbeTime"]
    assert [c["type"] for c in status["conditions"]] == ["Ready", "Progressing", "Degraded", "Reconciling", "Stalled"]
    assert policies.condition({"status": status}, "Degraded")["status"] == "False"

    def ready_event() -> bool:
        events = kubectl.json("get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}")
        return ("Available", "Normal") in {(e["reason"], e["type"]) for e in events["items"]}

    wait_for(ready_event, timeout=15, what="a Normal/Available event")


def test_spec_change_rolls_the_pods_and_observed_generation_follows(policies, ready, kubectl) -> None:
    name, namespace = ready, policies.namespace
    old_hash = policies.children(name)["Deployment"]["spec"]["template"]["metadata"]["annotations"][
        "croupier.dev/config-hash"
    ]
    patch = '{"spec": {"algorithm": {"epsilonGreedy": {"epsilon": 0.3}}}}'
    kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", patch)
    # The runtime still serves generation 1: not Ready, and the status says so for generation 2.
    stale = policies.wait_condition(name, "Ready", "False", "StaleGeneration")
    assert stale["status"]["observedGeneration"] == 2
    new_hash = policies.children(name)["Deployment"]["spec"]["template"]["metadata"]["annotations"][
        "croupier.dev/config-hash"
    ]
    assert new_hash != old_hash
    # The "rolled pod" loads the new ConfigMap: Ready again, at generation 2.
    policies.serve(name, 2)
    kubectl("wait", "--for=condition=Ready", f"dp/{name}", "-n", namespace, "--timeout=60s", timeout=70)
    status = policies.status(name)
    assert status["observedGeneration"] == 2 and status["servedGeneration"] == 2
    assert policies.condition({"status": status}, "Ready")["observedGeneration"] == 2


def test_statistics_reach_the_status(policies, ready) -> None:
    url = policies.runtime.url
    with httpx.Client(trust_env=False) as http:
        for _ in range(20):
            decision = http.post(f"{url}/v1/decide", json={}).json()
            reward = 1.0 if decision["arm"] == "red" else 0.0
            http.post(
                f"{url}/v1/rewards", json={"decisionId": decision["decisionId"], "reward": reward}
            ).raise_for_status()

    def counted() -> dict | None:
        status = policies.status(ready)
        return status if (status.get("totals") or {}).get("rewards") == 20 else None

    status = wait_for(counted, timeout=policies.resync_seconds * 10, what="20 rewards in status.totals")
    assert status["totals"]["decisions"] == 20
    assert sum(a["pulls"] for a in status["arms"]) == 20


def test_steady_state_writes_nothing(policies, ready, operator, kubectl) -> None:
    # Earlier tests' namespaces are still being deleted: the operator rightly releases those policies' finalizers.
    # Measure once this policy is the only one left in the cluster.
    def alone() -> bool:
        policies_left = kubectl.json("get", "dp", "--all-namespaces")["items"]
        terminating = [n for n in kubectl.json("get", "namespaces")["items"] if n["status"]["phase"] == "Terminating"]
        return len(policies_left) == 1 and not terminating

    wait_for(alone, timeout=120, what="earlier tests' namespaces gone")
    time.sleep(policies.resync_seconds * 2)  # let the Ready write and its watch events settle

    def versions() -> dict[str, str]:
        found = {k: v["metadata"]["resourceVersion"] for k, v in policies.children(ready).items()}
        found["DecisionPolicy"] = policies.get(ready)["metadata"]["resourceVersion"]
        return found

    before = versions()
    ours = operator.metric("croupier_operator_api_writes_total")
    server, series = policies.operator_writes(), policies.write_series()
    assert server > 0  # the FlowSchema does attribute the operator's requests (it created the policy's children)
    time.sleep(policies.resync_seconds * 6)  # six resync cycles: drift checks and runtime probes, nothing changed
    assert versions() == before
    assert operator.metric("croupier_operator_api_writes_total") == ours
    after = policies.write_series()
    changed = {k: v - series.get(k, 0) for k, v in after.items() if v != series.get(k, 0)}
    assert policies.operator_writes() == server, f"writes by anyone meanwhile: {json.dumps(changed, indent=1)}"

    # A restart (every policy resumes, every child is compared again) writes nothing either.
    operator.restart()
    time.sleep(policies.resync_seconds * 4)
    assert versions() == before
    assert operator.metric("croupier_operator_api_writes_total") == 0
    assert policies.operator_writes() == server


def test_ssa_of_an_unchanged_child_is_a_no_op_server_side(policies, ready, kubectl) -> None:
    configmap = policies.children(ready)["ConfigMap"]
    meta = configmap["metadata"]
    same = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {k: meta[k] for k in ("name", "namespace", "labels", "annotations", "ownerReferences")},
        "data": configmap["data"],
    }
    kubectl.apply(json.dumps(same), "--server-side", "--field-manager=croupier-operator", "--force-conflicts")
    assert policies.children(ready)["ConfigMap"]["metadata"]["resourceVersion"] == meta["resourceVersion"]


def test_drift_is_repaired(policies, ready, kubectl) -> None:
    name, namespace = ready, policies.namespace
    kubectl("scale", "deployment", name, "-n", namespace, "--replicas=3")
    wait_for(
        lambda: policies.children(name)["Deployment"]["spec"]["replicas"] == 1, timeout=30, what="replicas back to 1"
    )
    kubectl("delete", "service", name, "-n", namespace, "--wait=true")
    wait_for(lambda: "Service" in policies.children(name), timeout=30, what="Service recreated")
    patch = '{"data": {"policy.yaml": "tampered"}}'
    kubectl("patch", "configmap", f"{name}-policy", "-n", namespace, "--type=merge", "-p", patch)
    wait_for(
        lambda: policies.children(name)["ConfigMap"]["data"]["policy.yaml"] != "tampered",
        timeout=30,
        what="ConfigMap restored",
    )
    policies.wait_condition(name, "Ready", "True")


def test_delete_garbage_collects_the_children(policies, ready, kubectl) -> None:
    assert len(policies.children(ready)) == 4
    kubectl("delete", "dp", ready, "-n", policies.namespace, "--wait=true", "--timeout=60s", timeout=70)
    wait_for(lambda: not policies.children(ready), timeout=60, what="children garbage-collected")


def test_unreachable_runtime_degrades_without_flapping_ready(policies, ready) -> None:
    body = policies.get(ready)
    ready_since = policies.condition(body, "Ready")["lastTransitionTime"]
    table = body["status"]["arms"]
    policies.runtime.stop()
    degraded = policies.wait_condition(ready, "Degraded", "True", "RuntimeUnreachable")
    still = policies.condition(degraded, "Ready")
    assert (still["status"], still["lastTransitionTime"]) == ("True", ready_since)
    assert degraded["status"]["arms"] == table
    policies.serve(ready, 1)
    policies.wait_condition(ready, "Degraded", "False")


def test_a_foreign_object_in_the_way_is_a_conflict_not_a_takeover(policies, kubectl) -> None:
    name, namespace = "taken", policies.namespace
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": namespace, "labels": {"team": "someone-else"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 80}]},
    }
    kubectl.apply(json.dumps(service))
    policies.apply(name)
    body = policies.wait_condition(name, "Degraded", "True", "ChildConflict")
    assert "Service taken already exists" in policies.condition(body, "Ready")["message"]
    theirs = kubectl.json("get", "service", name, "-n", namespace)
    assert theirs["spec"]["selector"] == {"app": "theirs"} and "ownerReferences" not in theirs["metadata"]
    kubectl("delete", "service", name, "-n", namespace, "--wait=true")
    policies.serve(name, 1)
    policies.wait_condition(name, "Ready", "True", timeout=90)


def test_an_unservable_name_is_refused_at_admission_and_nothing_crashes(policies, kubectl) -> None:
    # A DNS subdomain that no Service can carry: the CRD refuses it at admission (the operator's InvalidName
    # condition stays as defence in depth for CRDs installed from older manifests; tests/unit/operator covers it).
    doc = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "v1.banner", "namespace": policies.namespace},
        "spec": {"arms": [{"name": "a"}, {"name": "b"}], "algorithm": {"type": "UCB1"}},
    }
    refused = kubectl("apply", "-f", "-", input=json.dumps(doc), check=False)
    assert refused.returncode != 0
    assert "metadata.name" in refused.stderr, refused.stderr
    assert policies.children("v1.banner") == {}
    # The operator keeps serving other policies.
    policies.apply("fine")
    policies.wait_children("fine", 4)


def test_embedded_state_on_a_volume_claim(policies, kubectl) -> None:
    name, namespace = "durable", policies.namespace
    # A volume for the claim to bind (the test cluster has no provisioner); the binder and scheduler are real.
    volume = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": f"{namespace}-state"},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "hostPath": {"path": f"/tmp/{namespace}"},
            "claimRef": {"namespace": namespace, "name": f"{name}-state"},
        },
    }
    kubectl.apply(json.dumps(volume))
    try:
        policies.apply(name, state={"backend": "Embedded", "persistence": {"enabled": True, "size": "1Gi"}})
        kids = policies.wait_children(name, 5)
        assert "Deployment" in kids, sorted(kids)
        assert kids["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}
        wait_for(
            lambda: kubectl.json("get", "pvc", f"{name}-state", "-n", namespace)["status"].get("phase") == "Bound",
            timeout=60,
            what="the claim bound",
        )
        policies.serve(name, 1)
        policies.wait_condition(name, "Ready", "True", "Available", timeout=90)
        # An update the API server refuses (a claim cannot shrink) is reported, not retried in a loop, and undone.
        shrink = '{"spec": {"state": {"persistence": {"size": "512Mi"}}}}'
        kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", shrink)
        body = policies.wait_condition(name, "Degraded", "True", "ApplyRejected")
        assert "PersistentVolumeClaim durable-state" in policies.condition(body, "Degraded")["message"]
        grow_back = '{"spec": {"state": {"persistence": {"size": "1Gi"}}}}'
        kubectl("patch", "dp", name, "-n", namespace, "--type=merge", "-p", grow_back)
        policies.wait_condition(name, "Degraded", "False")
        policies.serve(name, 3)
        policies.wait_condition(name, "Ready", "True", "Available", timeout=60)
    finally:
        kubectl("delete", "pv", f"{namespace}-state", "--wait=false", check=False)
