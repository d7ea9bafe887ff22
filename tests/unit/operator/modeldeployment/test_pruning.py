"""A routing mode change leaves the other mode's children behind unless they are pruned: ``stale_children`` names
exactly the children a ModelDeployment controls and no longer renders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.api.modeldeployment import ModelVersionState, RoutingMode
from croupier.operator.core.applier import stale_children
from croupier.operator.core.controller import Target
from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.modeldeployment.children import render, render_served, server_roles
from croupier.operator.modeldeployment.model import ModelDeploymentObject, parse_model_deployment
from croupier.operator.modeldeployment.plan import ServerView, plan, role_labels
from croupier.operator.settings import OperatorSettings
from croupier.runtime.tfserving.client import VersionStatus

pytestmark = pytest.mark.unit

DEPLOYMENTS = Path(__file__).resolve().parent / "deployments"
SETTINGS = OperatorSettings()


def everything(md: ModelDeploymentObject) -> list[dict[str, Any]]:
    views = {
        role: ServerView(
            role, tuple(VersionStatus(v, ModelVersionState.AVAILABLE) for v in set(role_labels(md, role).values()))
        )
        for role in server_roles(md)
    }
    return with_manifest_hashes([*render(md, SETTINGS), *render_served(md, plan(md, views), SETTINGS)])


def in_mode(md: ModelDeploymentObject, mode: RoutingMode) -> ModelDeploymentObject:
    routing = md.spec.routing.model_copy(update={"mode": mode, "parent_refs": None, "hostnames": None})
    if mode == RoutingMode.GATEWAY_API:
        routing = routing.model_validate({**routing.to_wire(), "parentRefs": [{"name": "gw"}]})
    spec = md.spec.model_copy(update={"routing": routing})
    return ModelDeploymentObject(md.name, md.namespace, md.uid, md.generation + 1, spec)


def as_live(children: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (c["kind"], c["metadata"]["name"]): {**c, "metadata": {**c["metadata"], "uid": f"uid-{i}"}}
        for i, c in enumerate(children)
    }


@pytest.fixture
def labels_md() -> ModelDeploymentObject:
    return parse_model_deployment(yaml.safe_load((DEPLOYMENTS / "versionlabels-steps-batching.yaml").read_text()))


def test_leaving_version_labels_prunes_the_router_and_the_single_server(labels_md: ModelDeploymentObject) -> None:
    target = Target("ModelDeployment", labels_md.name, labels_md.namespace, labels_md.uid, labels_md.generation)
    live = as_live(everything(labels_md))
    gateway = in_mode(labels_md, RoutingMode.GATEWAY_API)
    stale = {(c["kind"], c["metadata"]["name"]) for c in stale_children(target, everything(gateway), live)}
    name = labels_md.name
    assert stale == {
        ("Deployment", name),
        ("Deployment", f"{name}-router"),
        ("Service", name),
        ("Service", f"{name}-tfserving"),
        ("PodDisruptionBudget", name),
        ("PodDisruptionBudget", f"{name}-router"),
        ("ConfigMap", f"{name}-models"),
        ("ConfigMap", f"{name}-routing"),
    }
    # Shared by both modes: kept.
    assert ("ConfigMap", f"{name}-server") not in stale


def test_entering_version_labels_prunes_the_per_version_servers_and_the_route(
    labels_md: ModelDeploymentObject,
) -> None:
    gateway = in_mode(labels_md, RoutingMode.GATEWAY_API)
    target = Target("ModelDeployment", gateway.name, gateway.namespace, gateway.uid, gateway.generation)
    live = as_live(everything(gateway))
    stale = {(c["kind"], c["metadata"]["name"]) for c in stale_children(target, everything(labels_md), live)}
    name = labels_md.name
    assert ("GRPCRoute", name) in stale or ("HTTPRoute", name) in stale
    assert {("Deployment", f"{name}-stable"), ("Deployment", f"{name}-canary")} <= stale
    assert not {key for key in stale if key[1] in (name, f"{name}-router", f"{name}-routing")} - {
        ("GRPCRoute", name),
        ("HTTPRoute", name),
    }


def test_nothing_is_pruned_in_a_steady_state_or_that_another_object_controls(labels_md: ModelDeploymentObject) -> None:
    target = Target("ModelDeployment", labels_md.name, labels_md.namespace, labels_md.uid, labels_md.generation)
    children = everything(labels_md)
    live = as_live(children)
    assert stale_children(target, children, live) == []
    other = Target("ModelDeployment", labels_md.name, labels_md.namespace, "another-uid", labels_md.generation)
    assert stale_children(other, [], live) == []
