"""operator/core/network.py: the ingress rules every kind's NetworkPolicy is rendered from."""

from __future__ import annotations

from croupier.api.common import LabelSelector, NetworkPeer, NetworkPolicySpec
from croupier.operator.core.network import OPERATOR_POD_LABELS, network_ingress, same_namespace_pods

OPERATOR = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "croupier-system"}},
    "podSelector": {"matchLabels": OPERATOR_POD_LABELS},
}
MONITORING = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
PORTS = [{"protocol": "TCP", "port": 8500}, {"protocol": "TCP", "port": 8501}]


def test_default_spec_admits_the_namespace_the_operator_and_monitoring_on_every_port() -> None:
    rules = network_ingress(NetworkPolicySpec(), [8500, 8501], "croupier-system")
    assert rules == [
        {"from": [{"podSelector": {}}], "ports": PORTS},
        {"from": [OPERATOR, MONITORING], "ports": PORTS},
    ]


def test_spec_peers_keep_their_selectors_and_an_empty_selector_is_dropped_as_the_api_server_does() -> None:
    spec = NetworkPolicySpec(
        ingress=[
            NetworkPeer(namespace_selector=LabelSelector(match_labels={"team": "games"})),
            NetworkPeer(namespace_selector=LabelSelector(), pod_selector=LabelSelector(match_labels={"app": "lobby"})),
        ],
        metrics_namespace_selector=LabelSelector(match_labels={"prometheus": "on"}),
    )
    (callers, fixed) = network_ingress(spec, [8080], "ops")
    assert callers["from"] == [
        {"namespaceSelector": {"matchLabels": {"team": "games"}}},
        {"namespaceSelector": {}, "podSelector": {"matchLabels": {"app": "lobby"}}},
    ]
    assert fixed["from"][1] == {"namespaceSelector": {"matchLabels": {"prometheus": "on"}}}
    assert fixed["from"][0]["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}


def test_callers_replace_the_spec_peers_and_also_is_added_to_them() -> None:
    router = same_namespace_pods({"app.kubernetes.io/name": "croupier-model-router"})
    experiments = same_namespace_pods({"app.kubernetes.io/name": "croupier-experiment"})
    spec = NetworkPolicySpec(ingress=[NetworkPeer(namespace_selector=LabelSelector(match_labels={"a": "b"}))])
    (callers, _) = network_ingress(spec, [1], "ops", callers=[router])
    assert callers["from"] == [router]
    (callers, _) = network_ingress(spec, [1], "ops", also=[experiments])
    assert callers["from"] == [{"namespaceSelector": {"matchLabels": {"a": "b"}}}, experiments]


def test_no_peers_leaves_only_the_operator_and_monitoring() -> None:
    assert network_ingress(NetworkPolicySpec(ingress=[]), [1], "ops") == [
        {
            "from": [
                {**OPERATOR, "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ops"}}},
                MONITORING,
            ],
            "ports": [{"protocol": "TCP", "port": 1}],
        }
    ]


def test_disabled_admits_every_peer() -> None:
    assert network_ingress(NetworkPolicySpec(enabled=False), [1], "ops", also=[{"podSelector": {}}]) == [{}]
