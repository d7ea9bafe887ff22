"""What each TF Serving server should load, which labels point where, and the live canary weight (pure).

Inputs are what the operator knows now: the spec, each server's GetModelStatus answer (None when it could not be
read) and the labels its live model config carries (what the previous plan applied). The rules:

* a server loads exactly the versions it serves: VersionLabels' one server both, GatewayAPI's stable server the
  stable version and its canary server the canary version;
* a label points only at an AVAILABLE version (TF Serving refuses a config that labels anything else);
* promotion (stable.version changed): the version the ``stable`` label points at now stays loaded and labelled until
  the new stable version is AVAILABLE, then it is dropped from the config (TF Serving unloads it);
* a version TF Serving failed to load (END with an error) leaves the config and stays out, recorded on the live
  config, while the spec names it (a TF Serving that cannot load its initial config exits: a new pod must not try);
* the canary gets its weight (the static ``weight``, or the first step's until the canary engine drives the steps)
  only once it is AVAILABLE (and, with labels, labelled); the stable version gets the rest.

Unread status (a failed call) changes nothing that was applied: the labels in force stay, nothing new is labelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from croupier.api.modeldeployment import ModelVersionState
from croupier.operator.modeldeployment.children import CANARY, MAIN, STABLE, ServerPlan, ServingPlan, server_roles
from croupier.operator.modeldeployment.model import ModelDeploymentObject

if TYPE_CHECKING:
    from croupier.runtime.tfserving.client import VersionStatus  # grpc and protobuf: loaded by the first probe


@dataclass(frozen=True)
class ServerView:
    """One server as observed: its GetModelStatus answer (None: not read) and the labels its live config carries."""

    role: str
    versions: tuple[VersionStatus, ...] | None = None
    applied_labels: Mapping[str, int] | None = None
    applied_failed: frozenset[int] = frozenset()

    def failed(self) -> set[int]:
        reported = {v.version for v in self.versions or () if v.failed and v.state == ModelVersionState.END}
        return reported | set(self.applied_failed)

    def available(self) -> set[int]:
        if self.versions is None:
            # Unknown now: what was labelled was AVAILABLE when it was labelled; assume it still is (changes nothing).
            return set((self.applied_labels or {}).values())
        return {v.version for v in self.versions if v.state == ModelVersionState.AVAILABLE}


def desired_canary_weight(md: ModelDeploymentObject) -> int:
    """The weight the spec asks for now: the static weight, or the first step's (0 without a canary)."""
    canary = md.spec.canary
    if canary is None:
        return 0
    return canary.weight_at(0 if canary.steps is not None else None)


def role_labels(md: ModelDeploymentObject, role: str) -> dict[str, int]:
    """The labels a server should carry once their versions are AVAILABLE."""
    spec = md.spec
    wanted: dict[str, int] = {}
    if role in (MAIN, STABLE):
        wanted[STABLE] = spec.stable.version
    if role in (MAIN, CANARY) and spec.canary is not None:
        wanted[CANARY] = spec.canary.version
    return wanted


def server_for(md: ModelDeploymentObject, label: str) -> str:
    """The server that serves a label's version."""
    roles = server_roles(md)
    return MAIN if roles == (MAIN,) else label


def plan_server(md: ModelDeploymentObject, role: str, view: ServerView) -> ServerPlan:
    wanted = role_labels(md, role)
    requested = list(dict.fromkeys(wanted.values())) or [md.spec.stable.version]
    failed = view.failed() & set(requested)
    versions = [v for v in requested if v not in failed] or requested  # never an empty config
    available = view.available() - failed
    previous = view.applied_labels or {}
    labels: dict[str, int] = {}
    for label, version in wanted.items():
        if version in available:
            labels[label] = version
            continue
        kept = previous.get(label)
        if label == STABLE and kept is not None and kept != version and kept in available:
            versions.append(kept)  # promotion: the version serving as stable stays until the new one is AVAILABLE
            labels[label] = kept
    return ServerPlan(role=role, versions=tuple(sorted(versions)), labels=labels, failed=tuple(sorted(failed)))


def canary_ready(md: ModelDeploymentObject, servers: tuple[ServerPlan, ...]) -> bool:
    """The canary version is AVAILABLE where it is served (and labelled ``canary`` there)."""
    if md.spec.canary is None:
        return False
    canary_server = next(s for s in servers if s.role == server_for(md, CANARY))
    return canary_server.labels.get(CANARY) == md.spec.canary.version


def plan(md: ModelDeploymentObject, views: Mapping[str, ServerView], desired_weight: int | None = None) -> ServingPlan:
    """``desired_weight``: the canary weight a rollout engine decided (default: the spec's, see
    ``desired_canary_weight``); it applies only once the canary is AVAILABLE."""
    servers = tuple(plan_server(md, role, views.get(role) or ServerView(role)) for role in server_roles(md))
    wanted = desired_canary_weight(md) if desired_weight is None else desired_weight
    return ServingPlan(servers=servers, canary_weight=wanted if canary_ready(md, servers) else 0)
