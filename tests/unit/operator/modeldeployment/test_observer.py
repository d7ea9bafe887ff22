"""The observer's pure parts: reading back what the live model config applied, whether the live children carry the
plan, and a Gateway's refusal of the route."""

from __future__ import annotations

from typing import Any

import pytest

from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.modeldeployment.children import FAILED_ANNOTATION, LABELS_ANNOTATION, render_served
from croupier.operator.modeldeployment.model import parse_model_deployment
from croupier.operator.modeldeployment.observer import applied_failed, applied_labels, route_problem, served
from croupier.operator.modeldeployment.plan import plan
from croupier.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit


def configmap(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"annotations": annotations}}


def test_applied_labels_and_failed_versions_round_trip_through_the_rendered_annotations() -> None:
    body = {
        "metadata": {"name": "r", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {
            "model": {"name": "r", "storageUri": "file:///m"},
            "stable": {"version": 1},
            "routing": {"mode": "GatewayAPI", "protocol": "GRPC", "parentRefs": [{"name": "gw"}]},
        },
    }
    md = parse_model_deployment(body)
    children = with_manifest_hashes(render_served(md, plan(md, {}), OperatorSettings()))
    stable = next(c for c in children if c["metadata"]["name"] == "r-stable-models")
    assert applied_labels(stable) == {} and applied_failed(stable) == frozenset()
    live = {(c["kind"], c["metadata"]["name"]): {**c, "status": {"parents": []}} for c in children}
    assert served(children, live)
    route = next(c for c in children if c["kind"] == "GRPCRoute")
    moved = {**route, "spec": {**route["spec"], "rules": [{**route["spec"]["rules"][0], "backendRefs": []}]}}
    assert not served(children, {**live, ("GRPCRoute", "r"): moved})
    assert not served(children, {})


def test_unreadable_annotations_read_as_nothing_applied() -> None:
    assert applied_labels(None) is None
    assert applied_labels(configmap(**{LABELS_ANNOTATION: "not json"})) is None
    assert applied_labels(configmap(**{LABELS_ANNOTATION: '{"stable": 3, "canary": "x"}'})) == {"stable": 3}
    assert applied_failed(configmap(**{FAILED_ANNOTATION: "[2, 3]"})) == frozenset({2, 3})
    assert applied_failed(configmap(**{FAILED_ANNOTATION: "{}"})) == frozenset()


def test_a_gateway_that_refuses_the_route_is_named_with_its_message() -> None:
    accepted = {
        "status": {"parents": [{"parentRef": {"name": "gw"}, "conditions": [{"type": "Accepted", "status": "True"}]}]}
    }
    assert route_problem(accepted) is None and route_problem(None) is None
    refused = {
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "gw"},
                    "conditions": [
                        {
                            "type": "Accepted",
                            "status": "False",
                            "reason": "NotAllowedByListeners",
                            "message": "no match",
                        }
                    ],
                }
            ]
        }
    }
    assert route_problem(refused) == "Gateway gw did not accept the route: NotAllowedByListeners: no match"
