"""Experiment: registered on the shared machinery before its reconciler exists, so its status says that this operator
version does not reconcile it (instead of saying nothing)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.devcluster.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = {"experiment": "experiment-abn.yaml"}


def _conditions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in (body.get("status") or {}).get("conditions") or ()}


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_status_says_not_implemented_with_the_observed_generation(kind: str, policies, kubectl) -> None:
    namespace = policies.namespace
    doc = yaml.safe_load((ROOT / "examples" / EXAMPLES[kind]).read_text())
    doc["metadata"]["namespace"] = namespace
    name = doc["metadata"]["name"]
    kubectl.apply(json.dumps(doc))

    def reported(generation: int) -> dict[str, Any] | None:
        body: dict[str, Any] = kubectl.json("get", kind, name, "-n", namespace)
        conditions = _conditions(body)
        ready = conditions.get("Ready", {})
        if ready.get("observedGeneration") == generation and body["status"].get("observedGeneration") == generation:
            return body
        return None

    body = wait_for(lambda: reported(1), timeout=60, what=f"{kind} status for generation 1")
    conditions = _conditions(body)
    assert [c["type"] for c in body["status"]["conditions"]] == ["Ready", "Progressing", "Degraded"]
    for condition in conditions.values():
        assert (condition["status"], condition["reason"]) == ("False", "NotImplemented")
        assert "does not reconcile" in condition["message"] and condition["lastTransitionTime"]
    # kubectl wait sees the condition (kstatus: Ready=False with a reason, not an object without status).
    kubectl("wait", "--for=condition=Ready=False", f"{kind}/{name}", "-n", namespace, "--timeout=30s", timeout=40)

    # A spec change moves observedGeneration; the conditions' status did not change, so neither does their time.
    since = conditions["Ready"]["lastTransitionTime"]
    patch = {"metadata": {"annotations": {"touched": "yes"}}, "spec": {**doc["spec"], "state": "Paused"}}
    kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
    body = wait_for(lambda: reported(2), timeout=60, what=f"{kind} status for generation 2")
    assert _conditions(body)["Ready"]["lastTransitionTime"] == since
    assert _conditions(body)["Ready"]["reason"] == "NotImplemented"
