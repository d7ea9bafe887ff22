"""The Experiment CRD's outcome, analysis and status contract (issue 9, section 1) in a real kube-apiserver: the
cases of tests/unit/api/experiment_cases.yaml are admitted or rejected naming the field, exactly as the models do,
and the status subresource takes negative outcomes, per-metric sums, the epoch and a guardrail action."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from croupier.api.common import GROUP, VERSION

from ..unit.api.cases import manifest
from .test_crd_admission import crds, create, custom, rejection

__all__ = ["crds", "custom"]  # fixtures used by name

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(
    (Path(__file__).resolve().parents[1] / "unit" / "api" / "experiment_cases.yaml").read_text()
)


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["name"] for c in CASES["valid"]])
def test_valid_case_is_admitted(custom: client.CustomObjectsApi, namespace: str, case: dict[str, Any]) -> None:
    created = create(custom, namespace, manifest(case))
    assert created["metadata"]["uid"]


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["name"] for c in CASES["invalid"]])
def test_invalid_case_is_rejected_naming_the_field(
    custom: client.CustomObjectsApi, namespace: str, case: dict[str, Any]
) -> None:
    message = rejection(custom, namespace, manifest(case))
    assert case["field"] in message, message
    if "message" in case:
        assert case["message"] in message, message


@pytest.mark.parametrize("case", CASES["transitions"], ids=[c["name"] for c in CASES["transitions"]])
def test_analysis_settings_keep_the_running_epoch(
    custom: client.CustomObjectsApi, namespace: str, case: dict[str, Any]
) -> None:
    """The transition rule (oldSelf) on an update: what the models' check_update refuses, admission refuses."""
    created = create(custom, namespace, manifest({**case, "patch": case["old"]}))
    new = manifest({**case, "patch": case["new"]})
    new["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    plural = "experiments"
    if case["allowed"]:
        custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, plural, case["name"], new)
        return
    with pytest.raises(ApiException) as raised:
        custom.replace_namespaced_custom_object(GROUP, VERSION, namespace, plural, case["name"], new)
    assert raised.value.status == 422, raised.value
    message = str(yaml.safe_load(raised.value.body)["message"])
    assert "spec.analysis" in message and "cannot change while Running in the same epoch" in message, message


def test_defaults_of_the_outcome_and_analysis_contract(custom: client.CustomObjectsApi, namespace: str) -> None:
    doc = manifest({"name": "defaults", "base": "experiment-abn.yaml"})
    doc["spec"].pop("analysis")
    spec = create(custom, namespace, doc)["spec"]
    assert spec["outcomes"] == {"source": "Api", "attributionWindowSeconds": 604800}
    assert spec["analysis"]["multipleComparisons"] == "Holm"
    assert spec["analysis"]["sequentialTuningSampleSize"] == 5000
    assert spec["onGuardrailViolation"] == "Pause"
    assert spec["metric"]["aggregation"] == "Sum"


def test_status_takes_negative_outcomes_sums_epoch_and_guardrail_action(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    create(custom, namespace, manifest({"name": "revenue", "base": "experiment-abn.yaml"}))
    status = {
        "epoch": "3f2a9c1b7d4e",
        "variants": [
            {
                "name": "bandit",
                "exposures": 10,
                "outcomes": -12.5,
                "metrics": [{"name": "conversion", "count": 10, "sum": -12.5, "sumSquares": 40.25}],
            }
        ],
        "guardrailAction": {
            "variant": "bandit",
            "metric": "latency_ms",
            "lift": {"estimate": 0.2, "lower": 0.12, "upper": 0.28},
            "threshold": 0.1,
            "action": "Pause",
            "time": "2026-01-02T00:00:00Z",
        },
    }
    written = custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, "experiments", "revenue", {"status": status}
    )
    assert written["status"]["variants"][0]["outcomes"] == -12.5
    assert written["status"]["guardrailAction"]["action"] == "Pause"
    bad = {"status": {"variants": [{"name": "bandit", "metrics": [{"name": "m", "sumSquares": -1}]}]}}
    with pytest.raises(ApiException) as raised:
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, "experiments", "revenue", bad)
    assert "status.variants[0].metrics[0].sumSquares" in raised.value.body
