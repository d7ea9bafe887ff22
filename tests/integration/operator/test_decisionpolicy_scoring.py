"""A model-scored DecisionPolicy through the operator process: Degraded names a missing ModelDeployment; once it exists,
its gRPC endpoint and model name reach status.scoring and the runtime's config (ConfigMap policy.yaml); the runtime
serves (falling back), Ready is True and Degraded says the model is not Ready (no model server runs here)."""

from __future__ import annotations

import json
from typing import Any

import yaml
from integration.ops.health_recorder import record

from croupier.devcluster.waiting import wait_for

from .conftest import condition

SPEC: dict[str, Any] = {
    "arms": [{"name": "blue", "features": {"x": 1.0}}, {"name": "red", "features": {"x": -1.0}}],
    "scoring": {"modelDeploymentRef": {"name": "ranker"}, "timeoutMilliseconds": 40},
}


def test_a_scored_policy_finds_its_model_and_renders_its_address(policies, kubectl) -> None:
    name, namespace = "scored", policies.namespace
    policies.apply(name, **SPEC)
    body = policies.wait_condition(name, "Degraded", "True", "ModelDeploymentNotFound")
    if condition(body, "Ready").get("reason") != "RolloutInProgress":  # under load, a pass may still see old pods
        body = policies.wait_condition(name, "Ready", "False", "RolloutInProgress")
        assert condition(body, "Degraded")["reason"] == "ModelDeploymentNotFound"
    record(body)
    missing = condition(body, "Degraded")
    assert "ModelDeployment 'ranker' does not exist" in missing["message"]
    assert "scoring" not in yaml.safe_load(policies.policy_yaml(name, 1))
    assert policies.status(name)["scoring"] == {"modelDeployment": "ranker"}

    md = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "ranker", "namespace": namespace},
        "spec": {"model": {"name": "ranker-model", "storageUri": "file:///models/ranker"}, "stable": {"version": 1}},
    }
    kubectl.apply(json.dumps(md))
    endpoint: str = wait_for(
        lambda: kubectl.json("get", "modeldeployment", "ranker", "-n", namespace).get("status", {}).get("endpoint"),
        timeout=60,
        what="the ModelDeployment's endpoint",
    )

    def rendered() -> dict[str, Any] | None:
        configmap = kubectl.json("get", "configmap", f"{name}-policy", "-n", namespace)
        document: dict[str, Any] = yaml.safe_load(configmap["data"]["policy.yaml"])
        return document.get("scoring")

    block = wait_for(rendered, timeout=60, what="the model's address in the runtime's config")
    assert block == {"address": endpoint, "modelName": "ranker-model"}
    scoring = policies.status(name)["scoring"]
    assert scoring == {"modelDeployment": "ranker", "modelName": "ranker-model", "address": endpoint}
    policies.serve(name, 1)  # the runtime starts although the model is unreachable: decisions fall back
    body = policies.wait_condition(name, "Ready", "True", "Available")
    not_ready = condition(body, "Degraded")
    if not_ready["reason"] != "ModelNotReady":  # the first status after Ready may predate the next resync
        body = policies.wait_condition(name, "Degraded", "True", "ModelNotReady")
        not_ready = condition(body, "Degraded")
    record(body)
    assert "ModelDeployment 'ranker' is not Ready" in not_ready["message"]
    assert policies.status(name)["scoring"]["decisions"] == 0  # the runtime's own count, read by the probe
