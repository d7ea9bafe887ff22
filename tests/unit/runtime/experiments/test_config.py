"""Loading an Experiment manifest: identity, epoch (the split's fingerprint) and refusals."""

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


def test_other_changes_keep_the_epoch_and_change_the_version() -> None:
    base = parse_experiment(EXAMPLE)
    for change in ({"analysis": {"alpha": 0.01}}, {"state": "Paused"}, {"guardrails": None}):
        changed = parse_experiment(_with(**change))
        assert changed.epoch == base.epoch
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
