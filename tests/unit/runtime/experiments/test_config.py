"""Loading an Experiment manifest: identity, epoch (the fingerprint of the split and the analysis settings) and
refusals."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.runtime.errors import ExperimentConfigError
from croupier.runtime.experiments.config import parse_experiment

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "experiment-abn.yaml").read_text())


def _with(**spec: Any) -> dict[str, Any]:
    document = copy.deepcopy(EXAMPLE)
    document["spec"].update(spec)
    return document


def test_example_is_served_with_its_metrics_in_order() -> None:
    served = parse_experiment(EXAMPLE)
    assert served.variant_names == ["control", "bandit", "ranker-v2"]
    assert [(m.name, m.kind) for m in served.metrics] == [
        ("conversion", "Binary"),
        ("latency_ms", "Continuous:Mean"),
        ("refunds", "Count"),
    ]
    assert served.salt == "checkout-offer-2025-q1"
    assert parse_experiment(_with(assignment={"unitKey": "userId"})).salt == "default/checkout-offer"


VARIANTS = EXAMPLE["spec"]["variants"]


@pytest.mark.parametrize(
    "change",
    [
        {"variants": [{**VARIANTS[0], "weight": 40}, {**VARIANTS[1], "weight": 27}, VARIANTS[2]]},
        {"assignment": {**EXAMPLE["spec"]["assignment"], "salt": "reshuffled"}},
        {"assignment": {**EXAMPLE["spec"]["assignment"], "algorithm": "fnv1a32-v2"}},
        {"variants": [{**VARIANTS[0], "payload": {"offer": "other"}}, *VARIANTS[1:]]},
    ],
)
def test_a_change_of_the_split_starts_a_new_epoch(change: dict[str, Any]) -> None:
    assert parse_experiment(_with(**change)).epoch != parse_experiment(EXAMPLE).epoch


ANALYSIS = EXAMPLE["spec"].get("analysis", {})
METRIC = EXAMPLE["spec"]["metric"]


@pytest.mark.parametrize(
    "change",
    [
        {"analysis": {**ANALYSIS, "alpha": 0.01}},
        {"analysis": {**ANALYSIS, "method": "Bayesian"}},
        {"analysis": {**ANALYSIS, "sequentialTuningSampleSize": 20000}},
        {"metric": {**METRIC, "name": "checkout"}},
        {"metric": {**METRIC, "type": "Count"}},
        {"metric": {**METRIC, "type": "Continuous", "aggregation": "Mean"}},
        {"metric": {**METRIC, "direction": "Decrease"}},
    ],
    ids=["alpha", "method", "tuning", "metric-name", "metric-type", "metric-aggregation", "metric-direction"],
)
def test_a_change_of_the_analysis_settings_starts_a_new_epoch(change: dict[str, Any]) -> None:
    """What a running epoch's sequential guarantee rests on is in the fingerprint, so Paused -> change -> Running (each
    step admitted) resumes in a new epoch instead of continuing the old one under other settings."""
    assert parse_experiment(_with(**change)).epoch != parse_experiment(EXAMPLE).epoch


def test_a_paused_change_of_alpha_resumes_in_a_new_epoch() -> None:
    running = parse_experiment(_with(state="Running"))
    paused = parse_experiment(_with(state="Paused"))
    paused_changed = parse_experiment(_with(state="Paused", analysis={**ANALYSIS, "alpha": 0.1}))
    resumed = parse_experiment(_with(state="Running", analysis={**ANALYSIS, "alpha": 0.1}))
    assert paused.epoch == running.epoch  # pausing alone keeps the epoch
    assert paused_changed.epoch == resumed.epoch != running.epoch


def test_settings_spelled_out_at_their_defaults_keep_the_epoch() -> None:
    implicit = _with(analysis={}, metric={"name": METRIC["name"], "type": METRIC["type"]})
    explicit = _with(
        analysis={"method": "Sequential", "alpha": 0.05, "sequentialTuningSampleSize": 5000},
        metric={"name": METRIC["name"], "type": METRIC["type"], "aggregation": "Sum", "direction": "Increase"},
    )
    assert parse_experiment(implicit).epoch == parse_experiment(explicit).epoch


def test_other_changes_keep_the_epoch_and_change_the_version() -> None:
    base = parse_experiment(EXAMPLE)
    for change in (
        {"analysis": {**ANALYSIS, "power": 0.9, "srmThreshold": 0.01, "minimumSamplesPerVariant": 500}},
        {"analysis": {**ANALYSIS, "multipleComparisons": "Bonferroni"}},
        {"metric": {**METRIC, "minimumDetectableEffect": 0.05}},
        {"outcomes": {"attributionWindowSeconds": 3600}},
        {"state": "Paused"},
        {"guardrails": None},
    ):
        changed = parse_experiment(_with(**change))
        assert changed.epoch == base.epoch, change
        assert changed.version != base.version


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({**EXAMPLE, "kind": "DecisionPolicy"}, "expected 'Experiment'"),
        ({**EXAMPLE, "apiVersion": "v1"}, "apiVersion"),
        ({**EXAMPLE, "metadata": {}}, "metadata.name"),
        (_with(control="nobody"), "control"),
        ({**EXAMPLE, "status": {"winner": "nobody"}}, "status.winner"),
        ([1, 2], "YAML mapping"),
    ],
)
def test_what_cannot_be_served_is_refused(document: Any, message: str) -> None:
    with pytest.raises(ExperimentConfigError, match=message):
        parse_experiment(document)
