"""The ingress rules of the NetworkPolicy the operator renders for the pods of each kind (pure: spec in, rules out).

Every kind's pods admit, on their ports: the callers (by default the peers of `spec.networkPolicy.ingress`), the
operator's pods in the operator's own namespace (status probes, stats reads), and the namespaces matching
`spec.networkPolicy.metricsNamespaceSelector` (Prometheus; metrics and health share the API's port). A disabled spec
renders one rule that admits every peer, so the object never needs deleting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from croupier.api.common import LabelSelector, NetworkPeer, NetworkPolicySpec

OPERATOR_POD_LABELS = {"app.kubernetes.io/name": "croupier-operator"}
# Set by the API server on every namespace (immutable): selects one namespace by name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def selector(selector: LabelSelector) -> dict[str, Any]:
    # As the API server stores it: an empty matchLabels is dropped (omitempty), and a rendered `matchLabels: {}` would
    # differ from the live object on every comparison.
    return {"matchLabels": dict(selector.match_labels)} if selector.match_labels else {}


def peer(peer: NetworkPeer) -> dict[str, Any]:
    """A spec peer as a NetworkPolicy `from` entry."""
    out: dict[str, Any] = {}
    if peer.namespace_selector is not None:
        out["namespaceSelector"] = selector(peer.namespace_selector)
    if peer.pod_selector is not None:
        out["podSelector"] = selector(peer.pod_selector)
    return out


def same_namespace_pods(labels: dict[str, str]) -> dict[str, Any]:
    """A `from` entry for the pods carrying `labels` in the NetworkPolicy's own namespace."""
    return {"podSelector": {"matchLabels": dict(labels)}}


def network_ingress(
    spec: NetworkPolicySpec,
    ports: Sequence[int],
    operator_namespace: str,
    *,
    callers: Sequence[dict[str, Any]] | None = None,
    also: Sequence[dict[str, Any]] = (),
) -> list[dict[str, Any]]:
    """The ingress rules on `ports` (TCP): `callers` (default: the spec's peers) plus the `also` peers the operator
    always admits, then the operator's pods in `operator_namespace` and the monitoring namespaces; `[{}]` (every peer)
    when the spec is disabled."""
    if not spec.enabled:
        return [{}]
    port_list = [{"protocol": "TCP", "port": port} for port in ports]
    operator = {
        "namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: operator_namespace}},
        "podSelector": {"matchLabels": dict(OPERATOR_POD_LABELS)},
    }
    monitoring = {"namespaceSelector": selector(spec.metrics_namespace_selector)}
    rules: list[dict[str, Any]] = []
    admitted = [*([peer(p) for p in spec.ingress] if callers is None else callers), *also]
    if admitted:
        rules.append({"from": admitted, "ports": port_list})
    rules.append({"from": [operator, monitoring], "ports": port_list})
    return rules
