"""Traefik follows an HTTPRoute's backend weights between two Services whose pods are real model servers.

Hand-written Deployments, Services and HTTPRoute (no operator): the harness that the ModelDeployment test builds on.
Each answer is attributed to the version that served it (the two ranker versions score differently) and checked
against the servers' own request counters.
"""

from __future__ import annotations

import json
from typing import Any

import grpc
import numpy as np
import tensorflow as tf
from support.savedmodels import RANKER
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for
from croupier.modelserver import savedmodels

from .conftest import (
    ARMS,
    CONTEXT,
    GRPC_PORT,
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


def weighted_route(
    kind: str, name: str, port: int, *, namespace: str, gateway: Gateway, weights: dict[str, int]
) -> dict[str, Any]:
    """An HTTPRoute or GRPCRoute on the gateway splitting its traffic over the Services by ``weights``."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "parentRefs": [{"name": gateway.name}],
            "rules": [{"backendRefs": [{"name": s, "port": port, "weight": w} for s, w in weights.items()]}],
        },
    }


def http_route(namespace: str, gateway: Gateway, weights: dict[str, int]) -> dict[str, Any]:
    return weighted_route("HTTPRoute", "ranker", REST_PORT, namespace=namespace, gateway=gateway, weights=weights)


def wait_until_traefik_runs(
    traefik: TraefikProcess, namespace: str, weights: dict[str, int], *, grpc: bool = False
) -> None:
    """Until Traefik's live configuration has a weighted service with exactly these weights (Traefik names a
    Service backend ``<namespace>-<service>-http-<port>``, or ``<namespace>-<service>-<port>-grpc`` for GRPCRoute)."""

    def matches(name: str, backend: str) -> bool:
        if grpc:
            return name.split("@", maxsplit=1)[0] == f"{namespace}-{backend}-{GRPC_PORT}-grpc"
        return name.startswith(f"{namespace}-{backend}-http-")

    def live(service: dict[str, int]) -> dict[str, int]:
        return {backend: weight for name, weight in service.items() for backend in weights if matches(name, backend)}

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


def grpc_route(namespace: str, gateway: Gateway, weights: dict[str, int]) -> dict[str, Any]:
    return weighted_route("GRPCRoute", "ranker-grpc", GRPC_PORT, namespace=namespace, gateway=gateway, weights=weights)


def count_grpc_versions(target: str, requests: int) -> dict[int, int]:
    """Send ``requests`` gRPC Predicts (TF Serving's stock stub, h2c) through the gateway; count by served version."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.inputs["context"].CopyFrom(tf.make_tensor_proto(np.asarray(CONTEXT, dtype=np.float32)))
    request.inputs["arms"].CopyFrom(tf.make_tensor_proto(np.asarray(ARMS, dtype=np.float32)))
    expected = {v: savedmodels.expected_scores(v, CONTEXT, ARMS) for v in (1, 2)}
    counts = {1: 0, 2: 0}
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(requests):
            scores = tf.make_ndarray(stub.Predict(request, timeout=30).outputs["scores"])
            (version,) = [v for v, e in expected.items() if np.allclose(scores, e, atol=1e-5)]
            counts[version] += 1
    return counts


def test_traefik_splits_grpc_predicts_by_the_grpcroute_weights(
    kubectl: Kubectl, namespace: str, gateway: Gateway, traefik: TraefikProcess, serve_pods: ServePods
) -> None:
    for name in ("ranker-stable", "ranker-canary"):
        for obj in tf_serving_workload(name, namespace):
            kubectl.apply(json.dumps(obj))
    stable = serve_pods(namespace, "ranker-stable", 1)
    canary = serve_pods(namespace, "ranker-canary", 2)
    weights = {"ranker-stable": 80, "ranker-canary": 20}
    kubectl.apply(json.dumps(grpc_route(namespace, gateway, weights)))
    wait_until_traefik_runs(traefik, namespace, weights, grpc=True)

    before = stable.request_count(), canary.request_count()
    counts = count_grpc_versions(gateway.url.removeprefix("http://"), REQUESTS)
    served = stable.request_count() - before[0], canary.request_count() - before[1]
    print(f"GRPCRoute {weights}: served {counts} (servers counted {served})")

    assert abs(100.0 * counts[2] / REQUESTS - weights["ranker-canary"]) <= TOLERANCE_POINTS, counts
    assert served == (counts[1], counts[2])
