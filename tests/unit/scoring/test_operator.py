"""The operator's part of model-scored policies: the model's address in the runtime's config, the fallback rate in
status, and the Degraded reasons when the ModelDeployment is missing, not Ready, or most decisions fell back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from croupier.api.decisionpolicy import Reason
from croupier.api.wire import StatsResponse
from croupier.operator.decisionpolicy.children import POLICY_KEY, render
from croupier.operator.decisionpolicy.model import parse_policy
from croupier.operator.decisionpolicy.probe import ProbeResult
from croupier.operator.decisionpolicy.status import DeploymentState, Observations, ScoringModel, desired_status
from croupier.operator.settings import OperatorSettings
from croupier.runtime.policy_file import ScoringEndpoint
from croupier.runtime.policy_file import parse_policy as runtime_parse

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "decisionpolicy-scored.yaml"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ADDRESS = "ranker-stable.shop.svc:8500"


def body(status: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["metadata"].update({"namespace": "shop", "uid": "u-1", "generation": 3})
    if status is not None:
        doc["status"] = status
    return doc


def config_of(doc: dict[str, Any]) -> dict[str, Any]:
    children = render(parse_policy(doc), OperatorSettings())
    configmap = next(c for c in children if c["kind"] == "ConfigMap")
    loaded: dict[str, Any] = yaml.safe_load(configmap["data"][POLICY_KEY])
    return loaded


def test_the_runtime_config_carries_the_models_address_once_observed() -> None:
    assert "scoring" not in config_of(body())
    stored = {"scoring": {"modelDeployment": "ranker", "modelName": "ranker", "address": ADDRESS}}
    document = config_of(body(stored))
    assert document["scoring"] == {"address": ADDRESS, "modelName": "ranker"}
    served = runtime_parse(document)
    assert served.scoring_endpoint == ScoringEndpoint(ADDRESS, "ranker")


def deployment() -> DeploymentState:
    return DeploymentState(1, 1, 1, 1, 1, 1, 1, None)


def stats(fallbacks: dict[str, int], decisions: int) -> StatsResponse:
    return StatsResponse.model_validate(
        {
            "policy": {"name": "scored-offers", "namespace": "shop"},
            "generation": 3,
            "policyVersion": "g3-x",
            "algorithm": "ThompsonSampling",
            "backend": "Embedded",
            "arms": [],
            "totals": {"decisions": decisions},
            "scoring": {
                "modelName": "ranker",
                "address": ADDRESS,
                "modelVersion": 2,
                "decisions": decisions,
                "fallbacks": fallbacks,
                "fallbackRate": sum(fallbacks.values()) / decisions,
            },
        }
    )


def observed(model: ScoringModel, probe: StatsResponse | None = None) -> Observations:
    return Observations(
        generation=3,
        endpoint="http://scored-offers.shop.svc:80",
        desired_replicas=1,
        config_hash=None,
        deployment=deployment(),
        probe=ProbeResult(url="http://x", stats=probe) if probe is not None else None,
        probe_failures=0 if probe is not None else 1,
        scoring=model,
    )


def degraded(obs: Observations) -> tuple[str, str]:
    status = desired_status(obs, None, NOW)
    condition = next(c for c in status.conditions or () if c.type == "Degraded")
    return condition.status, condition.reason


READY_MODEL = ScoringModel("ranker", found=True, ready=True, address=ADDRESS, model_name="ranker")


def test_the_fallback_rate_reaches_status() -> None:
    status = desired_status(observed(READY_MODEL, stats({"timeout": 5}, 100)), None, NOW)
    assert status.scoring is not None
    assert status.scoring.to_wire() == {
        "modelDeployment": "ranker",
        "modelName": "ranker",
        "address": ADDRESS,
        "modelVersion": 2,
        "decisions": 100,
        "fallbacks": {"timeout": 5},
        "fallbackRate": 0.05,
    }
    assert degraded(observed(READY_MODEL, stats({"timeout": 5}, 100))) == ("False", Reason.AS_EXPECTED)


def test_degraded_names_why_the_model_cannot_serve() -> None:
    missing = ScoringModel("ranker", found=False, ready=False, detail="ModelDeployment 'ranker' does not exist")
    unconfigured = stats({"not_configured": 10}, 10)
    assert degraded(observed(missing, unconfigured)) == ("True", Reason.MODEL_DEPLOYMENT_NOT_FOUND)
    loading = ScoringModel("ranker", found=True, ready=False, detail="not Ready (VersionLoading: ...)")
    assert degraded(observed(loading, stats({}, 10))) == ("True", Reason.MODEL_NOT_READY)
    failing = stats({"timeout": 40, "unavailable": 30}, 100)
    assert degraded(observed(READY_MODEL, failing)) == ("True", Reason.SCORING_FALLBACKS)
