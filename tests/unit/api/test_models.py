"""The API models accept the examples and reject bad input with an error that names the field."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from croupier.api import decisionpolicy, experiment, modeldeployment
from croupier.api.common import Condition

from .cases import CASES, EXAMPLES, manifest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]

SPECS: dict[str, type[BaseModel]] = {
    "DecisionPolicy": decisionpolicy.DecisionPolicySpec,
    "ModelDeployment": modeldeployment.ModelDeploymentSpec,
    "Experiment": experiment.ExperimentSpec,
}


def test_examples_are_namespace_less_and_valid() -> None:
    paths = sorted(EXAMPLES.glob("*.yaml"))
    assert {p.name for p in paths} >= {
        "decisionpolicy-thompson.yaml",
        "decisionpolicy-linucb.yaml",
        "modeldeployment-canary.yaml",
        "experiment-abn.yaml",
    }
    for path in paths:
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc["apiVersion"] == "croupier.dev/v1alpha1", path
            assert "namespace" not in doc["metadata"], path
            SPECS[doc["kind"]].model_validate(doc["spec"])


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["name"] for c in CASES["valid"]])
def test_valid_case(case: dict[str, Any]) -> None:
    doc = manifest(case)
    SPECS[doc["kind"]].model_validate(doc["spec"])


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["name"] for c in CASES["invalid"]])
def test_invalid_case_names_the_field(case: dict[str, Any]) -> None:
    doc = manifest(case)
    with pytest.raises(ValidationError) as raised:
        SPECS[doc["kind"]].model_validate(doc["spec"])
    expected = case.get("python") or case["field"].rsplit(".", 1)[-1].split("[", 1)[0]
    assert expected in str(raised.value), f"{expected!r} not named in:\n{raised.value}"


def test_unknown_fields_are_rejected() -> None:
    doc = yaml.safe_load((EXAMPLES / "modeldeployment-canary.yaml").read_text())
    doc["spec"]["canary"]["wieght"] = 10
    with pytest.raises(ValidationError, match="wieght"):
        modeldeployment.ModelDeploymentSpec.model_validate(doc["spec"])


def test_wire_form_round_trips_with_camel_case_and_no_nulls() -> None:
    doc = yaml.safe_load((EXAMPLES / "modeldeployment-canary.yaml").read_text())
    spec = modeldeployment.ModelDeploymentSpec.model_validate(doc["spec"])
    wire = spec.to_wire()
    assert wire["model"]["storageUri"] == "file:///models/ranker"
    assert wire["canary"]["steps"][0] == {"weight": 10, "pauseSeconds": 300}
    assert "weight" not in wire["canary"]  # unset optionals are omitted, never null
    assert modeldeployment.ModelDeploymentSpec.model_validate(wire) == spec


def test_canary_weight_at_a_step() -> None:
    doc = yaml.safe_load((EXAMPLES / "modeldeployment-canary.yaml").read_text())
    canary = modeldeployment.ModelDeploymentSpec.model_validate(doc["spec"]).canary
    assert canary is not None
    assert [canary.weight_at(i) for i in range(4)] == [10, 25, 50, 100]
    with pytest.raises(IndexError):
        canary.weight_at(4)
    assert modeldeployment.CanarySpec(version=2, weight=7).weight_at(None) == 7


def test_split_formatting() -> None:
    assert experiment.format_split([("control", 34), ("bandit", 66)]) == "control=34,bandit=66"


def test_model_deployment_defaults() -> None:
    spec = modeldeployment.ModelDeploymentSpec.model_validate(
        {"model": {"name": "ranker", "storageUri": "gs://bkt/ranker"}, "stable": {"version": 3}}
    )
    assert spec.routing.mode == "VersionLabels"
    assert spec.routing.protocol == "GRPC"
    assert spec.serving.image.startswith("tensorflow/serving:")
    assert spec.canary is None


def test_experiment_defaults() -> None:
    doc = yaml.safe_load((EXAMPLES / "experiment-abn.yaml").read_text())
    for key in ("analysis", "state", "onConclude", "guardrails"):
        doc["spec"].pop(key)
    doc["spec"]["assignment"] = {"unitKey": "userId"}
    spec = experiment.ExperimentSpec.model_validate(doc["spec"])
    assert spec.state == "Running"
    assert spec.on_conclude == "KeepWinner"
    assert spec.analysis.method == "Sequential"
    assert spec.analysis.srm_threshold == 0.001
    assert spec.assignment.algorithm == "sha256-v1"
    assert spec.assignment.sticky is True


def test_status_models_accept_what_the_operator_writes() -> None:
    condition = {"type": "Ready", "status": "True", "reason": "Available", "lastTransitionTime": "2025-01-01T00:00:00Z"}
    md = modeldeployment.ModelDeploymentStatus.model_validate(
        {
            "observedGeneration": 3,
            "conditions": [condition],
            "versions": [
                {"version": 1, "role": "stable", "state": "AVAILABLE", "weight": 90},
                {"version": 2, "role": "canary", "state": "AVAILABLE", "weight": 10},
            ],
            "canaryWeight": 10,
            "currentStep": 0,
            "rollout": {
                "canaryVersion": 2,
                "specHash": "0f3a",
                "state": "Progressing",
                "weight": 10,
                "step": 0,
                "analyses": [
                    {
                        "result": "InsufficientData",
                        "startTime": "2025-01-01T00:00:00Z",
                        "endTime": "2025-01-01T00:01:00Z",
                        "requests": 3,
                        "message": "canary served 3 requests < minRequests 200",
                    }
                ],
            },
        }
    )
    assert md.versions is not None and md.versions[1].state == "AVAILABLE"
    exp = experiment.ExperimentStatus.model_validate(
        {
            "conditions": [{**condition, "type": "Degraded", "reason": "SampleRatioMismatch"}],
            "variants": [
                {"name": "control", "exposures": 1000, "outcomes": 100, "mean": 0.1},
                {
                    "name": "bandit",
                    "exposures": 980,
                    "outcomes": 120,
                    "mean": 0.122,
                    "lift": {"estimate": 0.22, "lower": 0.01, "upper": 0.45},
                    "pValue": 0.03,
                },
            ],
            "srmPValue": 0.0004,
        }
    )
    assert exp.srm_p_value == 0.0004
    with pytest.raises(ValidationError, match="state"):
        modeldeployment.VersionStatus.model_validate({"version": 1, "role": "stable", "state": "READY"})
    with pytest.raises(ValidationError, match="reason"):
        Condition.model_validate({**condition, "reason": "not camel case!"})


# --- assignment hashing: a contract other languages implement byte for byte ---------------------------------------

VECTORS = [
    # (unit id, salt, bucket, variant under control 34 / bandit 33 / ranker-v2 33)
    ("user-1", "checkout-offer-2025-q1", 4054, "bandit"),
    ("user-2", "checkout-offer-2025-q1", 3366, "control"),
    ("42", "s", 2115, "control"),
    ("ünïcode", "salt/with/slashes", 845, "control"),
]
WEIGHTS = [("control", 34), ("bandit", 33), ("ranker-v2", 33)]


@pytest.mark.parametrize(("unit", "salt", "expected_bucket", "variant"), VECTORS)
def test_sha256_v1_vectors(unit: str, salt: str, expected_bucket: int, variant: str) -> None:
    # The documented recipe, spelled out independently of the implementation.
    digest = hashlib.sha256((salt + ":" + unit).encode("utf-8")).hexdigest()
    assert int(digest[:16], 16) % 10_000 == expected_bucket
    assert experiment.bucket(unit, salt) == expected_bucket
    assert experiment.assign(unit, salt, WEIGHTS) == variant


def test_assignment_follows_the_weights_and_skips_zero_weight() -> None:
    counts = Counter(experiment.assign(f"u{i}", "salt", [("a", 20), ("b", 0), ("c", 80)]) for i in range(20_000))
    assert counts["b"] == 0
    assert abs(counts["a"] / 20_000 - 0.2) < 0.015


def test_unknown_hash_algorithm_is_an_error() -> None:
    with pytest.raises(ValueError, match="md5"):
        experiment.bucket("u", "s", algorithm="md5")
