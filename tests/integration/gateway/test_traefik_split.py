"""Traefik follows an HTTPRoute's backend weights between two Services whose pods are real model servers.

Hand-written Deployments, Services and HTTPRoute (no operator): the harness that the ModelDeployment test builds on.
Each answer is attributed to the version that served it (the two ranker versions score differently) and checked
against the servers' own request counters.
"""

from __future__ import annotations

import json
from typing import Any

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

from .conftest import (
    REST_PORT,
    Backend,
    Gateway,
    ServePods,
    count_versions,
    tf_serving_workload,
)
from .traefik import TraefikProcess

REQUESTS = 1000
TOLERANCE_POINTS = 2.0


def http_route(namespace: str, gateway: Gateway, weights: dict[str, int]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "ranker", "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": gateway.name}],
            "rules": [{"backendRefs": [{"name": name, "port": REST_PORT, "weight": w} for name, w in weights.items()]}],
        },
    }


def wait_until_traefik_runs(traefik: TraefikProcess, namespace: str, weights: dict[str, int]) -> None:
    """Until Traefik's live configuration has a weighted service with exactly these weights (Traefik names a
    Service backend ``<namespace>-<service>-http-<port>``)."""

    def live(service: dict[str, int]) -> dict[str, int]:
        return {
            backend: weight
            for name, weight in service.items()
            for backend in weights
            if name.startswith(f"{namespace}-{backend}-http-")
        }

    wait_for(
        lambda: any(live(service) == weights for service in traefik.weights()),
        timeout=60,
        what=f"Traefik running the route with weights {weights}",
        on_tick=traefik.check,
    )


def measure(gateway: Gateway, stable: Backend, canary: Backend) -> tuple[dict[int, int], int, int]:
    before = stable.request_count(), canary.request_count()
    counts = count_versions(gateway.url, REQUESTS)
    return counts, stable.request_count() - before[0], canary.request_count() - before[1]


def test_traefik_splits_predicts_by_the_httproute_weights_and_follows_a_change(
    kubectl: Kubectl, namespace: str, gateway: Gateway, traefik: TraefikProcess, serve_pods: ServePods
) -> None:
    for name in ("ranker-stable", "ranker-canary"):
        for obj in tf_serving_workload(name, namespace):
            kubectl.apply(json.dumps(obj))
    stable = serve_pods(namespace, "ranker-stable", 1)
    canary = serve_pods(namespace, "ranker-canary", 2)

    for canary_weight in (10, 35):
        weights = {"ranker-stable": 100 - canary_weight, "ranker-canary": canary_weight}
        kubectl.apply(json.dumps(http_route(namespace, gateway, weights)))
        wait_until_traefik_runs(traefik, namespace, weights)

        counts, stable_served, canary_served = measure(gateway, stable, canary)

        share = 100.0 * counts[2] / REQUESTS
        print(f"route {weights}: served {counts} (servers counted {stable_served}, {canary_served})")
        assert abs(share - canary_weight) <= TOLERANCE_POINTS, (counts, weights)
        # The servers' own counters agree with the answers: every request reached the server that answered it.
        assert (stable_served, canary_served) == (counts[1], counts[2])
