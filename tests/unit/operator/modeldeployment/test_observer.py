"""The observer's pure parts: reading back what the live model config applied, whether the live children carry the
plan, and a Gateway's refusal of the route."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from croupier.api.modeldeployment import RolloutState, RolloutStatus
from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.modeldeployment.canary.engine import spec_hash
from croupier.operator.modeldeployment.canary.runtimestats import Targets
from croupier.operator.modeldeployment.children import (
    FAILED_ANNOTATION,
    LABELS_ANNOTATION,
    SERVER_LABEL,
    render_served,
)
from croupier.operator.modeldeployment.model import parse_model_deployment
from croupier.operator.modeldeployment.observer import (
    analysis_stopped,
    applied_failed,
    applied_labels,
    ready_pods,
    route_problem,
    router_metrics_targets,
    served,
    server_metrics_targets,
)
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


def router_pod(
    name: str,
    ip: str | None,
    *,
    ready: bool = True,
    phase: str = "Running",
    gone: bool = False,
    labels: dict[str, str] | None = None,
) -> Any:
    meta: dict[str, Any] = {"name": name, **({"deletionTimestamp": "2026-01-01T00:00:00Z"} if gone else {})}
    if labels is not None:
        meta["labels"] = labels
    status: dict[str, Any] = {"phase": phase, "conditions": [{"type": "Ready", "status": str(ready)}]}
    if ip is not None:
        status["podIP"] = ip
    return {"metadata": meta, "status": status}


def labels_md() -> Any:
    return parse_model_deployment(
        {
            "metadata": {"name": "r", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "model": {"name": "ranker", "storageUri": "file:///m"},
                "stable": {"version": 1},
                "canary": {"version": 2, "weight": 10},
                "serving": {"replicas": 3},
            },
        }
    )


def test_only_ready_running_router_pods_with_an_ip_are_scraped() -> None:
    pods = [
        router_pod("r-router-b", "10.0.0.12"),
        router_pod("r-router-a", "10.0.0.11"),
        router_pod("r-router-c", "10.0.0.13", ready=False),
        router_pod("r-router-d", None),
        router_pod("r-router-e", "10.0.0.15", phase="Pending"),
        router_pod("r-router-f", "10.0.0.16", gone=True),
    ]
    assert ready_pods(pods) == [("r-router-a", "10.0.0.11"), ("r-router-b", "10.0.0.12")]


def test_the_router_is_read_per_pod_with_the_default_template() -> None:
    md, settings = labels_md(), OperatorSettings()
    assert settings.router_metrics_per_pod
    pods = [router_pod("r-router-a", "10.0.0.11"), router_pod("r-router-b", "fd00::b")]
    targets = router_metrics_targets(md, settings, pods, ready_replicas=2)
    assert targets is not None and targets.problem is None
    urls = ("http://10.0.0.11:8501/metrics", "http://[fd00::b]:8501/metrics")
    assert targets.canary == Targets(urls, {"version": "2"}) and targets.stable == Targets(urls, {"version": "1"})
    # A local override names the pod (a dispatcher on loopback plays the pod network).
    local = OperatorSettings(router_metrics_url_template="http://127.0.0.1:9000/{namespace}/{pod}/metrics")
    found = router_metrics_targets(md, local, pods, ready_replicas=2)
    assert found is not None
    assert found.canary.urls == (
        "http://127.0.0.1:9000/ns/r-router-a/metrics",
        "http://127.0.0.1:9000/ns/r-router-b/metrics",
    )


def test_router_pods_that_cannot_be_read_or_counted_exactly_are_named() -> None:
    md, settings = labels_md(), OperatorSettings()
    unlisted = router_metrics_targets(md, settings, "403 Forbidden: pods is forbidden", ready_replicas=2)
    assert (
        unlisted is not None
        and unlisted.problem == "the pods of the router r-router could not be listed: 403 Forbidden: pods is forbidden"
    )
    none_ready = router_metrics_targets(md, settings, [router_pod("r-router-a", "10.0.0.11", ready=False)], 0)
    assert none_ready is not None and none_ready.problem == "no ready pod of the router r-router to scrape"
    # A template without {pod}/{pod_ip} is one address (a Service): exact with one ready router pod only.
    service = OperatorSettings(router_metrics_url_template="http://{service}.{namespace}.svc:8501/metrics")
    assert not service.router_metrics_per_pod
    one = router_metrics_targets(md, service, None, ready_replicas=1)
    assert one is not None and one.problem is None and one.canary.urls == ("http://r.ns.svc:8501/metrics",)
    several = router_metrics_targets(md, service, None, ready_replicas=3)
    assert several is not None and several.problem is not None
    assert several.problem == (
        "3 pods of the router r-router are ready but CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE "
        "(http://{service}.{namespace}.svc:8501/metrics) names no pod ({pod} or {pod_ip}): "
        "one scrape reaches one of them"
    )
    assert (
        router_metrics_targets(replace(md, spec=md.spec.model_copy(update={"canary": None})), settings, [], 0) is None
    )


def gateway_md(**analysis: Any) -> Any:
    canary: dict[str, Any] = {"version": 2, "weight": 10}
    if analysis:
        canary["analysis"] = {"intervalSeconds": 60, "minRequests": 10, **analysis}
    return parse_model_deployment(
        {
            "metadata": {"name": "r", "namespace": "ns", "uid": "u", "generation": 1},
            "spec": {
                "model": {"name": "ranker", "storageUri": "file:///m"},
                "stable": {"version": 1},
                "canary": canary,
                "serving": {"replicas": 2},
                "routing": {"mode": "GatewayAPI", "protocol": "GRPC", "parentRefs": [{"name": "gw"}]},
            },
        }
    )


def server_pod(role: str, name: str, ip: str, *, ready: bool = True) -> Any:
    return router_pod(name, ip, ready=ready, labels={"app.kubernetes.io/instance": "r", SERVER_LABEL: role})


def test_gateway_mode_reads_every_ready_pod_of_each_version_server() -> None:
    md, settings = gateway_md(maxErrorRate=0.1), OperatorSettings()
    assert settings.model_metrics_per_pod
    pods = [
        server_pod("canary", "r-canary-b", "10.0.1.2"),
        server_pod("stable", "r-stable-a", "10.0.2.1"),
        server_pod("canary", "r-canary-a", "fd00::1"),
        server_pod("canary", "r-canary-c", "10.0.1.3", ready=False),
        router_pod("stray", "10.0.9.9"),  # no server label: neither version's
    ]
    targets = server_metrics_targets(md, settings, pods, {"canary": 2, "stable": 1})
    assert targets is not None and targets.problem is None
    assert targets.canary == Targets(
        (
            "http://[fd00::1]:8501/monitoring/prometheus/metrics",
            "http://10.0.1.2:8501/monitoring/prometheus/metrics",
        )
    )
    assert targets.stable == Targets(("http://10.0.2.1:8501/monitoring/prometheus/metrics",))
    local = OperatorSettings(
        model_metrics_url_template="http://127.0.0.1:9000/{namespace}/{pod}/monitoring/prometheus/metrics"
    )
    found = server_metrics_targets(md, local, pods, {})
    assert found is not None and found.stable.urls == (
        "http://127.0.0.1:9000/ns/r-stable-a/monitoring/prometheus/metrics",
    )


def test_gateway_mode_names_a_version_server_it_cannot_count_exactly() -> None:
    settings = OperatorSettings()
    alone, comparing = gateway_md(maxErrorRate=0.1), gateway_md(maxErrorRateIncrease=0.05)
    unlisted = server_metrics_targets(alone, settings, "403 Forbidden: pods is forbidden", {})
    assert unlisted is not None and unlisted.problem == (
        "the pods of the TF Serving server r-canary could not be listed: 403 Forbidden: pods is forbidden"
    )
    # No ready stable pod matters only when the analysis compares the canary with the stable version.
    canary_only = [server_pod("canary", "r-canary-a", "10.0.1.1")]
    found = server_metrics_targets(alone, settings, canary_only, {})
    assert found is not None and found.problem is None and found.stable.urls == ()
    compared = server_metrics_targets(comparing, settings, canary_only, {})
    assert compared is not None and compared.problem == "no ready pod of the TF Serving server r-stable to scrape"
    stable_only = [server_pod("stable", "r-stable-a", "10.0.2.1")]
    missing = server_metrics_targets(alone, settings, stable_only, {})
    assert missing is not None and missing.problem == "no ready pod of the TF Serving server r-canary to scrape"
    # A Service template is one address per server: exact while one pod of that server is ready.
    service = OperatorSettings(
        model_metrics_url_template="http://{service}.{namespace}.svc:8501/monitoring/prometheus/metrics"
    )
    one = server_metrics_targets(comparing, service, None, {"canary": 1, "stable": 1})
    assert one is not None and one.problem is None
    assert one.canary.urls == ("http://r-canary.ns.svc:8501/monitoring/prometheus/metrics",)
    assert one.stable.urls == ("http://r-stable.ns.svc:8501/monitoring/prometheus/metrics",)
    several = server_metrics_targets(comparing, service, None, {"canary": 1, "stable": 2})
    assert several is not None and several.problem is not None
    assert several.problem.startswith("2 pods of the TF Serving server r-stable are ready but ")
    assert server_metrics_targets(alone, service, None, {"canary": 1, "stable": 2}).problem is None  # type: ignore[union-attr]
    no_canary = replace(alone, spec=alone.spec.model_copy(update={"canary": None}))
    assert server_metrics_targets(no_canary, settings, [], {}) is None


def test_nothing_is_scraped_for_a_rolled_back_or_halted_canary_until_its_spec_changes() -> None:
    md = labels_md()
    assert md.spec.canary is not None
    digest = spec_hash(md.spec.canary)

    def rollout(state: RolloutState, version: int = 2, spec: str = digest) -> RolloutStatus:
        return RolloutStatus(canary_version=version, spec_hash=spec, state=state)

    assert analysis_stopped(md, rollout(RolloutState.ROLLED_BACK))
    assert analysis_stopped(md, rollout(RolloutState.HALTED))
    for running in (RolloutState.PROGRESSING, RolloutState.SERVING, RolloutState.COMPLETE, RolloutState.PAUSED):
        assert not analysis_stopped(md, rollout(running))
    assert not analysis_stopped(md, rollout(RolloutState.ROLLED_BACK, version=3))  # a new canary version
    assert not analysis_stopped(md, rollout(RolloutState.HALTED, spec="other"))  # an edited canary spec
    assert not analysis_stopped(md, None)
