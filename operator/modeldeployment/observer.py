"""What a ModelDeployment observes beyond its static children, and what it applies from that.

Each cycle: read every server's GetModelStatus (gRPC, through its Service, or the configured override), plan which
versions each server loads and where the labels and weights go (``plan``), apply the plan's children (model configs,
route) with the shared ``ChildApplier`` when they differ from the live ones, and hand the lot to ``status``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import grpc
import structlog

from croupier.api.common import now as utc_now
from croupier.api.modeldeployment import MetricsSourceType
from croupier.operator.core.applier import ApplyProblemError, ChildApplier
from croupier.operator.core.controller import ApplyProblem, Services, Snapshot
from croupier.operator.core.matching import contains, with_manifest_hashes
from croupier.operator.core.resources import CONFIG_MAP, DEPLOYMENT
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.modeldeployment.canary.analyst import Analyst, VersionTargets
from croupier.operator.modeldeployment.canary.engine import advance
from croupier.operator.modeldeployment.canary.runtimestats import Targets
from croupier.operator.modeldeployment.children import (
    CANARY,
    CONFIG_HASH_ANNOTATION,
    FAILED_ANNOTATION,
    LABELS_ANNOTATION,
    STABLE,
    ServingPlan,
    deployment_name,
    endpoints,
    models_configmap_name,
    render_served,
    route_kind,
    server_roles,
)
from croupier.operator.modeldeployment.model import ModelDeploymentObject
from croupier.operator.modeldeployment.plan import ServerView, canary_ready, plan, server_for
from croupier.operator.modeldeployment.rollout import stored_rollout, wake_in
from croupier.operator.modeldeployment.status import Observations, ServerState
from croupier.runtime.tfserving.client import ModelServerError, ModelServiceClient

RECHECK_SECONDS = 2.0
log = structlog.get_logger("croupier.operator.modeldeployment")


def applied_labels(configmap: Mapping[str, Any] | None) -> dict[str, int] | None:
    """The labels a live model config ConfigMap gives TF Serving (from the annotation the operator writes)."""
    if configmap is None:
        return None
    raw = ((configmap.get("metadata") or {}).get("annotations") or {}).get(LABELS_ANNOTATION)
    try:
        found = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    if not isinstance(found, dict):
        return None
    return {str(k): int(v) for k, v in found.items() if isinstance(v, int)}


def applied_failed(configmap: Mapping[str, Any] | None) -> frozenset[int]:
    """The versions a live model config ConfigMap leaves out because TF Serving failed to load them."""
    raw = (((configmap or {}).get("metadata") or {}).get("annotations") or {}).get(FAILED_ANNOTATION)
    try:
        found = json.loads(raw) if isinstance(raw, str) else []
    except ValueError:
        return frozenset()
    return frozenset(v for v in found if isinstance(v, int)) if isinstance(found, list) else frozenset()


def served(desired: list[dict[str, Any]], live: Mapping[tuple[str, str], Mapping[str, Any]]) -> bool:
    """Every planned child is live with the planned content (the index caught up with the apply)."""
    for child in desired:
        found = live.get((child["kind"], child["metadata"]["name"]))
        wanted = {k: v for k, v in child.items() if k not in ("apiVersion", "kind", "metadata")}
        if found is None or not contains(found, wanted):
            return False
    return True


def route_problem(route: Mapping[str, Any] | None) -> str | None:
    """A parent Gateway that says Accepted=False, with its message (None: accepted, or not reported yet)."""
    for parent in ((route or {}).get("status") or {}).get("parents") or ():
        for condition in parent.get("conditions") or ():
            if condition.get("type") == "Accepted" and condition.get("status") == "False":
                name = (parent.get("parentRef") or {}).get("name", "?")
                return f"Gateway {name} did not accept the route: {condition.get('reason')}: {condition.get('message')}"
    return None


class ModelObserver:
    """Reads TF Serving's model status and applies what follows from it; remembers consecutive failed reads."""

    def __init__(self, services: Services) -> None:
        if services.kube is None:
            raise ValueError("the ModelDeployment observer applies the serving plan: Services.kube must be set")
        self.settings = services.settings
        self.http = services.http
        self.failures: dict[str, int] = {}
        self.loading: set[str] = set()
        self.clients: dict[str, ModelServiceClient] = {}
        self.applier = ChildApplier(services.kube)
        self.analysts: dict[str, Analyst] = {}
        self.rollout_due: dict[str, float] = {}  # uid -> seconds until the rollout's next clock, as of the last pass

    def forget(self, uid: str) -> None:
        self.failures.pop(uid, None)
        self.loading.discard(uid)
        self.analysts.pop(uid, None)
        self.rollout_due.pop(uid, None)
        self.applier.forget(uid)

    async def close(self) -> None:
        for client in self.clients.values():
            await client.close()
        self.clients.clear()

    def recheck_after(self, uid: str) -> float | None:
        """Soon while a version loads or a read failed: readiness should not wait for the resync interval; and on
        time for the canary's next analysis interval or step end."""
        wanted = [s for s in (self.rollout_due.get(uid),) if s is not None]
        if self.failures.get(uid) or uid in self.loading:
            wanted.append(RECHECK_SECONDS)
        return min(wanted) if wanted else None

    def analyst(self, uid: str, md: ModelDeploymentObject) -> Analyst:
        if uid not in self.analysts:
            self.analysts[uid] = Analyst(self.http, namespace=md.namespace, name=md.name)
        return self.analysts[uid]

    def metrics_targets(self, md: ModelDeploymentObject) -> VersionTargets | None:
        """The metrics endpoints of the canary's and the stable version's servers (RuntimeStats). VersionLabels
        serves both versions from one server, whose TF Serving metrics carry no version: not measurable there."""
        canary_role, stable_role = server_for(md, CANARY), server_for(md, STABLE)
        if canary_role == stable_role:
            return None

        def targets(role: str) -> Targets:
            service = deployment_name(md, role)
            url = self.settings.model_metrics_url(name=md.name, namespace=md.namespace, service=service)
            return Targets((url,))

        return VersionTargets(canary=targets(canary_role), stable=targets(stable_role))

    def client(self, address: str) -> ModelServiceClient:
        if address not in self.clients:
            self.clients[address] = ModelServiceClient(address, timeout=self.settings.model_status_timeout_seconds)
        return self.clients[address]

    async def read(self, md: ModelDeploymentObject, server: ServerState) -> ServerState:
        """The server with TF Serving's model status (or why it could not be read)."""
        service = deployment_name(md, server.role)
        address = self.settings.model_server_address(name=md.name, namespace=md.namespace, service=service)
        try:
            versions = await self.client(address).get_model_status(md.spec.model.name)
        except ModelServerError as error:
            if error.code == grpc.StatusCode.NOT_FOUND:  # TF Serving found no version of the model (yet)
                return replace(server, versions=(), error=error.details, model_unknown=True)
            return replace(server, error=str(error))
        return replace(server, versions=versions)

    async def unapplied_labels(
        self, md: ModelDeploymentObject, role: str, labels: Mapping[str, int]
    ) -> tuple[str, ...]:
        """The planned labels TF Serving does not resolve to their version yet (GetModelMetadata by label)."""
        address = self.settings.model_server_address(
            name=md.name, namespace=md.namespace, service=deployment_name(md, role)
        )
        behind = []
        for label, version in sorted(labels.items()):
            try:
                resolved = await self.client(address).resolve_label(md.spec.model.name, label)
            except ModelServerError:
                behind.append(label)
                continue
            if resolved != version:
                behind.append(label)
        return tuple(behind)

    async def observe(self, snapshot: Snapshot[ModelDeploymentObject]) -> Observations:
        target, md = snapshot.target, snapshot.parsed
        if md is None or snapshot.problem is not None:
            return Observations(generation=target.generation, invalid=snapshot.invalid, apply_problem=snapshot.problem)
        servers: dict[str, ServerState] = {}
        views: dict[str, ServerView] = {}
        failed = False
        for role in server_roles(md):
            name = deployment_name(md, role)
            live = snapshot.live.get((DEPLOYMENT.kind, name))
            desired = snapshot.desired_child(DEPLOYMENT.kind, name)
            deployment = DeploymentState.from_object(live, CONFIG_HASH_ANNOTATION) if live is not None else None
            wanted_hash = DeploymentState.from_object(desired, CONFIG_HASH_ANNOTATION).config_hash if desired else None
            replicas = int((desired or {}).get("spec", {}).get("replicas", 0))
            read = ServerState(role, replicas, deployment, wanted_hash)
            if replicas and deployment is not None and deployment.available > 0:
                read = await self.read(md, read)
                failed = failed or (read.error is not None and not read.model_unknown)
            servers[role] = read
            models = snapshot.live.get((CONFIG_MAP.kind, models_configmap_name(md, role)))
            views[role] = ServerView(role, read.versions, applied_labels(models), applied_failed(models))
        self.failures[target.uid] = self.failures.get(target.uid, 0) + 1 if failed else 0
        previous = stored_rollout(snapshot.stored_status)
        moment = utc_now()
        available = canary_ready(md, plan(md, views).servers)
        analysis = md.spec.canary.analysis if md.spec.canary is not None else None
        observation = None
        if analysis is not None:
            pods = self.metrics_targets(md) if analysis.source.type == MetricsSourceType.RUNTIME_STATS else None
            observation = await self.analyst(target.uid, md).observe(md.spec, previous, moment, pods)
        outcome = advance(md.spec, previous, observation, moment, available)
        due_in = wake_in(md.spec, outcome.rollout, moment)
        if due_in is None:
            self.rollout_due.pop(target.uid, None)
        else:
            self.rollout_due[target.uid] = due_in
        serving = plan(md, views, desired_weight=outcome.weight)
        children = with_manifest_hashes(render_served(md, serving, self.settings))
        problem: ApplyProblem | None = None
        try:
            applied = await self.applier.ensure(target, children, snapshot.live)
        except ApplyProblemError as error:
            problem, applied = error.problem, 0
        if applied:
            log.info(
                "applied the serving plan",
                namespace=target.namespace,
                name=target.name,
                canary_weight=serving.canary_weight,
                servers={s.role: {"versions": list(s.versions), "labels": dict(s.labels)} for s in serving.servers},
            )
        for role, server in list(servers.items()):
            planned = serving.server(role)
            if planned is not None and server.versions is not None and planned.labels:
                behind = await self.unapplied_labels(md, role, planned.labels)
                servers[role] = replace(server, unapplied_labels=behind)
        self._note_loading(target.uid, md, serving, servers)
        kind = route_kind(md)
        grpc_endpoint, rest_endpoint = endpoints(md)
        return Observations(
            generation=target.generation,
            md=md,
            apply_problem=problem,
            servers=servers,
            plan=serving,
            served=applied == 0 and served(children, snapshot.live),
            route_problem=route_problem(snapshot.live.get((kind, md.name))) if kind else None,
            failures=self.failures[target.uid],
            failure_threshold=self.settings.probe_failure_threshold,
            endpoint=grpc_endpoint,
            rest_endpoint=rest_endpoint,
            rollout=outcome.rollout,
            desired_weight=outcome.weight,
            events=outcome.events,
        )

    def _note_loading(
        self, uid: str, md: ModelDeploymentObject, serving: ServingPlan, servers: Mapping[str, ServerState]
    ) -> None:
        wanted = {md.spec.stable.version} | ({md.spec.canary.version} if md.spec.canary is not None else set())
        labelled = {v for s in serving.servers for v in s.labels.values()}
        running = any(s.replicas and s.deployment is not None for s in servers.values())
        behind = any(s.unapplied_labels for s in servers.values())
        if running and (behind or not wanted <= labelled):
            self.loading.add(uid)
        else:
            self.loading.discard(uid)
