"""The runtime's policy file: the `scoring` block the operator renders (the model's address and name)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import ScoringEndpoint, parse_policy
from croupier.runtime.scoring.scorer import FallbackReason, Scorer

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "decisionpolicy-scored.yaml"


def document(scoring: Any) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    if scoring is not None:
        doc["scoring"] = scoring
    return doc


def test_the_block_names_the_model() -> None:
    served = parse_policy(document({"address": "10.0.0.5:8500", "modelName": "ranker"}))
    assert served.scoring_endpoint == ScoringEndpoint("10.0.0.5:8500", "ranker")
    assert parse_policy(document(None)).scoring_endpoint is None


@pytest.mark.parametrize(
    "block",
    [
        {"address": "10.0.0.5:8500"},
        {"address": "", "modelName": "m"},
        {"address": 1, "modelName": "m"},
        ["x"],
        {"a": 1},
    ],
)
def test_a_bad_block_is_a_clear_error(block: Any) -> None:
    with pytest.raises(PolicyConfigError, match="scoring"):
        parse_policy(document(block))


def test_without_an_address_every_decision_falls_back_with_its_reason() -> None:
    served = parse_policy(document(None))
    scorer = Scorer(served.spec, served.scoring_endpoint, RuntimeMetrics())
    assert scorer.disabled == FallbackReason.NOT_CONFIGURED
    assert scorer.arm_matrix.shape == (4, 4)
    assert scorer.arm_matrix[1].tolist() == [0.0, 1.0, 0.0, 0.0]  # ten-percent: bundle, discount, premium, shipping
