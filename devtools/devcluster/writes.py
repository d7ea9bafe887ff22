"""Counting a ServiceAccount's writes on the local control plane.

API Priority and Fairness attributes every request to a FlowSchema, and the API server counts dispatched requests per
schema (`apiserver_flowcontrol_dispatched_requests_total`). A schema that matches exactly one ServiceAccount's
mutating verbs therefore counts that account's writes, whoever's client library made them. The operator's tests and
its benchmark use this to prove that a steady state makes no writes.
"""

from __future__ import annotations

from typing import Any

from .kubectl import Kubectl

DISPATCHED = "apiserver_flowcontrol_dispatched_requests_total"
MUTATING_VERBS = ["create", "update", "patch", "delete", "deletecollection"]


def writes_flow_schema(name: str, service_account: str, namespace: str) -> dict[str, Any]:
    """A FlowSchema that matches every mutating request of one ServiceAccount (and nothing else)."""
    return {
        "apiVersion": "flowcontrol.apiserver.k8s.io/v1",
        "kind": "FlowSchema",
        "metadata": {"name": name},
        "spec": {
            "matchingPrecedence": 500,
            "priorityLevelConfiguration": {"name": "workload-high"},
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [
                {
                    "subjects": [
                        {"kind": "ServiceAccount", "serviceAccount": {"name": service_account, "namespace": namespace}}
                    ],
                    "resourceRules": [
                        {
                            "verbs": MUTATING_VERBS,
                            "apiGroups": ["*"],
                            "resources": ["*"],
                            "namespaces": ["*"],
                            "clusterScope": True,
                        }
                    ],
                }
            ],
        },
    }


def sum_metric(text: str, name: str, labels: dict[str, str] | None = None) -> float:
    """Sum of a Prometheus text-format metric's series whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        metric, _, rest = series.partition("{")
        if metric != name:
            continue
        found = dict(
            (k, v.strip('"')) for k, _, v in (p.partition("=") for p in rest.rstrip("}").split(",") if "=" in p)
        )
        if all(found.get(k) == v for k, v in (labels or {}).items()):
            total += float(value)
    return total


def dispatched_writes(kubectl: Kubectl, flow_schema: str) -> float:
    """Mutating requests the API server dispatched through ``flow_schema`` since it started."""
    return sum_metric(kubectl("get", "--raw", "/metrics").stdout, DISPATCHED, {"flow_schema": flow_schema})
