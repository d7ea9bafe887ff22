"""The runtime NetworkPolicy as rendered, and the CRD's promises about it (spec.networkPolicy descriptions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.operator.core.network import OPERATOR_POD_LABELS
from croupier.operator.decisionpolicy.children import desired_children
from croupier.operator.decisionpolicy.model import parse_policy
from croupier.operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[3]
POLICIES = ROOT / "tests" / "unit" / "operator" / "policies"
CRD = ROOT / "crds" / "croupier.dev_decisionpolicies.yaml"


def _network_policy(source: str, settings: OperatorSettings) -> dict[str, Any]:
    body = yaml.safe_load((POLICIES / source).read_text())
    (found,) = [c for c in desired_children(parse_policy(body), settings) if c["kind"] == "NetworkPolicy"]
    return found


def _field_description(field: str) -> str:
    crd = yaml.safe_load(CRD.read_text())
    (version,) = crd["spec"]["versions"]
    network = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["networkPolicy"]
    description: str = network["properties"][field]["description"]
    return description


def test_the_operator_is_admitted_from_its_own_namespace_only() -> None:
    policy = _network_policy("minimal.yaml", OperatorSettings(pod_namespace="platform-ops"))
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    operator = [p for p in peers if p.get("podSelector") == {"matchLabels": OPERATOR_POD_LABELS}]
    assert operator == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "platform-ops"}},
            "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
        }
    ]
    assert all(p.get("namespaceSelector") != {} for p in peers), "no peer from any namespace"
    assert "operator's own namespace" in _field_description("ingress")


def test_a_bad_operator_namespace_is_a_settings_error() -> None:
    with pytest.raises(ValidationError, match="pod_namespace"):
        OperatorSettings(pod_namespace="Not_A_Namespace")


def test_disabled_keeps_an_object_that_admits_every_peer_as_documented() -> None:
    policy = _network_policy("open.yaml", OperatorSettings())
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{}]
    description = _field_description("enabled")
    assert "admits every peer" in description and "no NetworkPolicy" not in description
