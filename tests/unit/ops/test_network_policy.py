"""The NetworkPolicies as rendered (DecisionPolicy and Experiment runtimes, TF Serving and model routers), and the
CRD's promises about them (spec.networkPolicy descriptions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.operator.core.network import OPERATOR_POD_LABELS
from croupier.operator.decisionpolicy import children as policy_children
from croupier.operator.decisionpolicy.children import EXPERIMENT_RUNTIME_LABELS, desired_children
from croupier.operator.decisionpolicy.model import parse_policy
from croupier.operator.experiment import children as experiment_children
from croupier.operator.experiment.model import parse_experiment
from croupier.operator.modeldeployment import children as model_children
from croupier.operator.modeldeployment.model import parse_model_deployment
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


EXPERIMENTS = ROOT / "tests" / "unit" / "operator" / "experiment" / "experiments"
MODELS = ROOT / "tests" / "unit" / "operator" / "modeldeployment" / "deployments"


def _peers(netpol: dict[str, Any]) -> list[dict[str, Any]]:
    return [peer for rule in netpol["spec"]["ingress"] for peer in rule["from"]]


def _pods(labels: dict[str, str]) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": labels}}


def test_a_policy_admits_the_experiment_runtimes_of_its_namespace_whatever_its_peers() -> None:
    body = yaml.safe_load((POLICIES / "minimal.yaml").read_text())
    body["spec"]["networkPolicy"] = {"ingress": [{"namespaceSelector": {"matchLabels": {"team": "games"}}}]}
    (netpol,) = [c for c in desired_children(parse_policy(body), OperatorSettings()) if c["kind"] == "NetworkPolicy"]
    peers = _peers(netpol)
    assert _pods({"app.kubernetes.io/name": experiment_children.APP_NAME}) in peers
    assert {"podSelector": {}} not in peers, "custom peers replace the namespace default"
    assert EXPERIMENT_RUNTIME_LABELS["app.kubernetes.io/name"] == experiment_children.APP_NAME
    assert "croupier-experiment" in _field_description("ingress")


def test_an_experiment_runtime_gets_its_own_network_policy_from_its_spec() -> None:
    body = yaml.safe_load((EXPERIMENTS / "ab-policy.yaml").read_text())
    body["spec"]["networkPolicy"] = {
        "ingress": [{"podSelector": {"matchLabels": {"app": "checkout"}}}],
        "metricsNamespaceSelector": {"matchLabels": {"prometheus": "yes"}},
    }
    settings = OperatorSettings(pod_namespace="platform-ops")
    children = experiment_children.desired_children(parse_experiment(body), settings)
    (netpol,) = [c for c in children if c["kind"] == "NetworkPolicy"]
    (deployment,) = [c for c in children if c["kind"] == "Deployment"]
    assert netpol["spec"]["podSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert netpol["metadata"]["name"] == "checkout-offer-experiment"
    callers, fixed = netpol["spec"]["ingress"]
    assert callers["from"] == [_pods({"app": "checkout"})]
    assert fixed["from"][0]["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "platform-ops"}
    assert fixed["from"][1] == {"namespaceSelector": {"matchLabels": {"prometheus": "yes"}}}
    assert {p["port"] for rule in netpol["spec"]["ingress"] for p in rule["ports"]} == {settings.runtime_port}
    # Who may reach the pods does not reach the runtime: changing it rolls no pod.
    before = experiment_children.desired_children(
        parse_experiment(yaml.safe_load((EXPERIMENTS / "ab-policy.yaml").read_text())), settings
    )
    assert next(c for c in before if c["kind"] == "Deployment")["spec"]["template"] == deployment["spec"]["template"]


def test_an_experiment_disabled_keeps_an_object_that_admits_every_peer() -> None:
    body = yaml.safe_load((EXPERIMENTS / "ab-policy.yaml").read_text())
    body["spec"]["networkPolicy"] = {"enabled": False}
    children = experiment_children.desired_children(parse_experiment(body), OperatorSettings())
    (netpol,) = [c for c in children if c["kind"] == "NetworkPolicy"]
    assert netpol["spec"]["ingress"] == [{}]


def _model(source: str, network_policy: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    body = yaml.safe_load((MODELS / source).read_text())
    if network_policy is not None:
        body["spec"]["networkPolicy"] = network_policy
    children = model_children.render(parse_model_deployment(body), OperatorSettings())
    return {c["metadata"]["name"]: c for c in children if c["kind"] == "NetworkPolicy"}


GATEWAY_PODS = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateways"}}}
SCORING = _pods({"app.kubernetes.io/name": "croupier-runtime"})


def test_behind_a_router_tf_serving_admits_only_the_router_and_the_router_admits_the_callers() -> None:
    policies = _model("versionlabels-gcs.yaml", {"ingress": [GATEWAY_PODS]})
    name = next(iter(policies)).rsplit("-", 1)[0]
    server, router = policies[f"{name}-tfserving"], policies[f"{name}-router"]
    assert server["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "tensorflow-serving",
        "app.kubernetes.io/instance": name,
    }
    callers, fixed = server["spec"]["ingress"]
    assert callers["from"] == [
        _pods(
            {
                "app.kubernetes.io/name": "croupier-model-router",
                "app.kubernetes.io/instance": name,
                "croupier.dev/server": "router",
            }
        )
    ]
    assert {p["port"] for p in callers["ports"]} == {8500, 8501}
    assert fixed["from"][0]["podSelector"] == {"matchLabels": OPERATOR_POD_LABELS}
    assert router["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "croupier-model-router"
    assert router["spec"]["ingress"][0]["from"] == [GATEWAY_PODS, SCORING]


def test_in_gateway_mode_every_server_role_admits_the_listed_gateway_pods() -> None:
    policies = _model("gateway-http-pvc.yaml", {"ingress": [GATEWAY_PODS]})
    server, router = policies.values()
    assert server["metadata"]["name"].endswith("-tfserving")
    # The router's stays (selecting no pod in this mode), so a mode change has no NetworkPolicy to delete: the
    # operator may not delete NetworkPolicies.
    assert router["metadata"]["name"].endswith("-router")
    assert "croupier.dev/server" not in server["spec"]["podSelector"]["matchLabels"], "stable and canary alike"
    assert server["spec"]["ingress"][0]["from"] == [GATEWAY_PODS, SCORING]
    assert model_children.SCORING_CLIENT_LABELS["app.kubernetes.io/name"] == policy_children.APP_NAME


def test_a_model_disabled_keeps_objects_that_admit_every_peer() -> None:
    policies = _model("versionlabels-gcs.yaml", {"enabled": False})
    assert len(policies) == 2
    assert all(p["spec"]["ingress"] == [{}] for p in policies.values())
