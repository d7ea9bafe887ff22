"""The Experiment contract of issue 9, section 1: outcomes, attribution, analysis parameters, guardrail actions and
the status sums (experiment_cases.yaml, shared with the admission tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.api import experiment
from croupier.operator.experiment.status import _config

from .cases import EXAMPLES, manifest

CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(Path(__file__).with_name("experiment_cases.yaml").read_text())


@pytest.mark.parametrize("case", CASES["valid"], ids=[c["name"] for c in CASES["valid"]])
def test_valid_case(case: dict[str, Any]) -> None:
    experiment.ExperimentSpec.model_validate(manifest(case)["spec"])


@pytest.mark.parametrize("case", CASES["invalid"], ids=[c["name"] for c in CASES["invalid"]])
def test_invalid_case_names_the_field(case: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as raised:
        experiment.ExperimentSpec.model_validate(manifest(case)["spec"])
    expected = case.get("python") or case["field"].rsplit(".", 1)[-1].split("[", 1)[0]
    assert expected in str(raised.value), f"{expected!r} not named in:\n{raised.value}"
    if "message" in case and case["message"] != "Unsupported value":
        assert case["message"] in str(raised.value)


def test_new_defaults() -> None:
    doc = yaml.safe_load((EXAMPLES / "experiment-abn.yaml").read_text())
    for key in ("analysis", "outcomes", "onGuardrailViolation"):
        doc["spec"].pop(key, None)
    spec = experiment.ExperimentSpec.model_validate(doc["spec"])
    assert spec.outcomes.attribution_window_seconds == 7 * 86400
    assert spec.outcomes.source == "Api"
    assert spec.analysis.multiple_comparisons == "Holm"
    assert spec.analysis.sequential_tuning_sample_size == 5000
    assert spec.on_guardrail_violation == "Pause"
    assert spec.metric.aggregation == "Sum"


def test_status_carries_negative_outcomes_sums_epoch_and_guardrail_action() -> None:
    status = experiment.ExperimentStatus.model_validate(
        {
            "epoch": "e3b0c44298fc",
            "epochStartTime": "2026-01-01T00:00:00Z",
            "variants": [
                {
                    "name": "treatment",
                    "exposures": 10,
                    "outcomes": -12.5,
                    "metrics": [
                        {"name": "revenue_delta", "count": 10, "sum": -12.5, "sumSquares": 40.25},
                        {"name": "latency_ms", "count": 8, "sum": 800.0, "sumSquares": 81000.0},
                    ],
                }
            ],
            "guardrailAction": {
                "variant": "treatment",
                "metric": "latency_ms",
                "lift": {"estimate": 0.2, "lower": 0.12, "upper": 0.28},
                "threshold": 0.1,
                "action": "Pause",
                "time": "2026-01-02T00:00:00Z",
            },
        }
    )
    assert status.variants is not None and status.variants[0].outcomes == -12.5
    assert status.variants[0].metrics is not None and status.variants[0].metrics[0].sum_squares == 40.25
    with pytest.raises(ValidationError, match="sumSquares"):
        experiment.MetricSums.model_validate({"name": "m", "count": 1, "sum": 1, "sumSquares": -1})


def test_sequential_tuning_sample_size_is_the_total_of_both_arms() -> None:
    """gbstats' sequential_tuning_parameter is the total n of treatment plus control (its n = n_a + n_b); the field is
    that same number, passed through unchanged, and its description must say so (not 'per variant')."""
    field = experiment.AnalysisSpec.model_fields["sequential_tuning_sample_size"]
    assert field.description is not None
    assert "per variant at which" not in field.description
    assert "total sample size of one comparison" in field.description
    doc = yaml.safe_load((EXAMPLES / "experiment-abn.yaml").read_text())
    doc["spec"].setdefault("analysis", {})["sequentialTuningSampleSize"] = 6461
    spec = experiment.ExperimentSpec.model_validate(doc["spec"])
    assert _config(spec).sequential_tuning_parameter == 6461.0


TRANSITIONS: list[dict[str, Any]] = yaml.safe_load((Path(__file__).parent / "experiment_cases.yaml").read_text())[
    "transitions"
]


def _transition(case: dict[str, Any]) -> tuple[experiment.ExperimentSpec, experiment.ExperimentSpec]:
    old = manifest({**case, "patch": case["old"]})["spec"]
    new = manifest({**case, "patch": case["new"]})["spec"]
    return experiment.ExperimentSpec.model_validate(old), experiment.ExperimentSpec.model_validate(new)


@pytest.mark.parametrize("case", TRANSITIONS, ids=[c["name"] for c in TRANSITIONS])
def test_analysis_settings_keep_the_running_epoch(case: dict[str, Any]) -> None:
    old, new = _transition(case)
    if case["allowed"]:
        new.check_update(old)
        return
    with pytest.raises(ValueError, match=r"analysis: .* cannot change while Running in the same epoch"):
        new.check_update(old)


def test_the_transition_rule_compares_what_check_update_compares() -> None:
    rule = experiment._ANALYSIS_FROZEN_WHILE_RUNNING["rule"]
    for name in ("method", "alpha", "sequentialTuningSampleSize"):
        assert f"self.analysis.{name} == oldSelf.analysis.{name}" in rule
    for name in ("name", "type", "aggregation", "direction"):
        assert f"self.metric.{name} == oldSelf.metric.{name}" in rule
