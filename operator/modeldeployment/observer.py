"""What a ModelDeployment observes beyond its static children, and what it applies from that.

Each cycle: read every server's GetModelStatus (gRPC, through its Service, or the configured override), plan which
versions each server loads and where the labels and weights go (``plan``), apply the plan's children (model configs,
route or routing table) with the shared ``ChildApplier`` when they differ from the live ones, delete the children the
object no longer renders (a routing mode change), and hand the lot to ``status``.

VersionLabels: the routing table gives a label traffic only once TF Serving resolves it to the planned version (its
config poll trails the ConfigMap), and after each table change the router's pods get a new ``ROUTING_ANNOTATION`` so
the kubelet refreshes their routing volume at once.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import structlog

from croupier.api.common import now as utc_now
from croupier.api.modeldeployment import MetricsSourceType, RolloutState, RolloutStatus
from croupier.operator.core.applier import ApplyProblemError, ChildApplier
from croupier.operator.core.controller import ApplyProblem, Services, Snapshot
from croupier.operator.core.kube import KubeClient, KubeError
from croupier.operator.core.matching import contains, digest, with_manifest_hashes
from croupier.operator.core.resources import CONFIG_MAP, DEPLOYMENT, POD
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.modeldeployment.canary.analyst import Analyst, VersionTargets
from croupier.operator.modeldeployment.canary.engine import advance, spec_hash
from croupier.operator.modeldeployment.canary.runtimestats import ROUTER as ROUTER_METRICS
from croupier.operator.modeldeployment.canary.runtimestats import TF_SERVING, MetricNames, Targets
from croupier.operator.modeldeployment.children import (
    CANARY,
    CONFIG_HASH_ANNOTATION,
    FAILED_ANNOTATION,
    LABELS_ANNOTATION,
    MAIN,
    ROUTING_ANNOTATION,
    ROUTING_KEY,
    STABLE,
    ServingPlan,
    deployment_name,
    endpoints,
    has_router,
    models_configmap_name,
    render_served,
    route_kind,
    router_name,
    router_selector_labels,
    routing_configmap_name,
    server_roles,
    service_name,
)
from croupier.operator.modeldeployment.model import ModelDeploymentObject
from croupier.operator.modeldeployment.plan import ServerView, canary_ready, plan, server_for
from croupier.operator.modeldeployment.rollout import stored_rollout, wake_in
from croupier.operator.modeldeployment.status import Observations, RouterState, ServerState
from croupier.operator.settings import OperatorSettings

if TYPE_CHECKING:
    from croupier.runtime.tfserving.client import ModelServiceClient

MODEL_CLIENT = "croupier.runtime.tfserving.client"
"""TF Serving's gRPC client (grpc, protobuf: about 8 MiB of RSS), loaded when the first ModelDeployment is observed."""

RECHECK_SECONDS = 2.0
log = structlog.get_logger("croupier.operator.modeldeployment")


async def load_model_client() -> None:
    """Import the TF Serving client (grpc, protobuf) in a thread, so that the event loop goes on serving every other
    object meanwhile; a no-op once loaded. An operator without ModelDeployments never imports it."""
    if MODEL_CLIENT not in sys.modules:
        await asyncio.to_thread(importlib.import_module, MODEL_CLIENT)


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


def metric_names(md: ModelDeploymentObject) -> MetricNames:
    """Where RuntimeStats reads a version's numbers: the router's counters (VersionLabels) or TF Serving's own."""
    return ROUTER_METRICS if has_router(md) else TF_SERVING


def ready_pods(pods: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """``(name, IP)`` of the pods a Service would send traffic to: running, with an IP, Ready, not terminating."""
    found = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ())
        if ready and status.get("phase") == "Running" and status.get("podIP") and not meta.get("deletionTimestamp"):
            found.append((str(meta["name"]), str(status["podIP"])))
    return sorted(found)


def router_metrics_targets(
    md: ModelDeploymentObject,
    settings: OperatorSettings,
    pods: Sequence[Mapping[str, Any]] | str | None,
    ready_replicas: int,
) -> VersionTargets | None:
    """VersionLabels: the router's per-version counters, one URL per ready router pod when the URL template names a
    pod (``pods``: the router's pods, or why they could not be listed), else the one URL of the template (exact only
    while at most one router pod is ready: a Service sends each scrape to one of them)."""
    canary = md.spec.canary
    if canary is None:
        return None
    problem: str | None = None
    if settings.router_metrics_per_pod:
        if isinstance(pods, str):
            problem = f"the router's pods could not be listed: {pods}"
        ready = [] if pods is None or isinstance(pods, str) else ready_pods(pods)
        urls = tuple(
            settings.router_metrics_url(name=md.name, namespace=md.namespace, service=md.name, pod=pod, pod_ip=ip)
            for pod, ip in ready
        )
        if not urls and problem is None:
            problem = f"no ready pod of the router {router_name(md)} to scrape"
    else:
        urls = (settings.router_metrics_url(name=md.name, namespace=md.namespace, service=md.name),)
        if ready_replicas > 1:
            problem = (
                f"{ready_replicas} router pods are ready but the router metrics URL template "
                f"({settings.router_metrics_url_template}) names no pod ({{pod}} or {{pod_ip}}): one scrape reaches "
                "one of them"
            )
    return VersionTargets(
        canary=Targets(urls, {"version": str(canary.version)}),
        stable=Targets(urls, {"version": str(md.spec.stable.version)}),
        problem=problem,
    )


def analysis_stopped(md: ModelDeploymentObject, rollout: RolloutStatus | None) -> bool:
    """The stored rollout of this very canary spec is rolled back or halted: no interval runs until the spec changes,
    so there is nothing to scrape (nor router pods to list) for it."""
    canary = md.spec.canary
    return (
        canary is not None
        and rollout is not None
        and rollout.state in (RolloutState.ROLLED_BACK, RolloutState.HALTED)
        and rollout.canary_version == canary.version
        and rollout.spec_hash == spec_hash(canary)
    )


def unrouted_labels(serving: ServingPlan, resolved: Mapping[str, int] | None) -> tuple[str, ...]:
    """Planned labels the routing table leaves out this pass, because TF Serving does not resolve them yet."""
    if resolved is None:
        return ()
    main = serving.server(MAIN)
    planned = main.labels if main is not None else {}
    return tuple(sorted(label for label, version in planned.items() if resolved.get(label) != version))


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
        self.kube: KubeClient = services.kube
        self.applier = ChildApplier(services.kube)
        self.analysts: dict[str, Analyst] = {}
        self.annotated: dict[str, str] = {}  # uid -> the routing table hash last annotated on every router pod
        self.rollout_due: dict[str, float] = {}  # uid -> seconds until the rollout's next clock, as of the last pass

    def forget(self, uid: str) -> None:
        self.failures.pop(uid, None)
        self.loading.discard(uid)
        self.analysts.pop(uid, None)
        self.rollout_due.pop(uid, None)
        self.annotated.pop(uid, None)
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
        names = metric_names(md)
        if uid not in self.analysts or self.analysts[uid].names != names:
            self.analysts[uid] = Analyst(self.http, namespace=md.namespace, name=md.name, names=names)
        return self.analysts[uid]

    def metrics_targets(
        self,
        md: ModelDeploymentObject,
        router_pods: Sequence[Mapping[str, Any]] | str | None = None,
        router: RouterState | None = None,
    ) -> VersionTargets | None:
        """The metrics endpoints of the canary's and the stable version's servers (RuntimeStats): TF Serving's own per
        server in GatewayAPI mode; the router's per-version counters in VersionLabels mode (TF Serving's metrics carry
        no version, and one server serves both there), from every ready router pod."""
        if has_router(md):
            ready = router.deployment.ready if router is not None and router.deployment is not None else 0
            return router_metrics_targets(md, self.settings, router_pods, ready)
        canary_role, stable_role = server_for(md, CANARY), server_for(md, STABLE)

        def targets(role: str) -> Targets:
            service = service_name(md, role)
            url = self.settings.model_metrics_url(name=md.name, namespace=md.namespace, service=service)
            return Targets((url,))

        return VersionTargets(canary=targets(canary_role), stable=targets(stable_role))

    def client(self, address: str) -> ModelServiceClient:
        from croupier.runtime.tfserving.client import ModelServiceClient  # noqa: PLC0415  (load_model_client)

        if address not in self.clients:
            self.clients[address] = ModelServiceClient(address, timeout=self.settings.model_status_timeout_seconds)
        return self.clients[address]

    async def read(self, md: ModelDeploymentObject, server: ServerState) -> ServerState:
        """The server with TF Serving's model status (or why it could not be read)."""
        import grpc  # noqa: PLC0415  (loaded with the client: load_model_client)

        from croupier.runtime.tfserving.client import ModelServerError  # noqa: PLC0415

        service = service_name(md, server.role)
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
        from croupier.runtime.tfserving.client import ModelServerError  # noqa: PLC0415  (load_model_client)

        address = self.settings.model_server_address(
            name=md.name, namespace=md.namespace, service=service_name(md, role)
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
        await load_model_client()  # before the probes below and the status (its error codes) use it
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
        router = self._router_state(md, snapshot)
        router_pods: list[dict[str, Any]] | str | None = None  # listed at most once per pass (analysis, annotation)
        if analysis is not None:
            pods = None
            if analysis.source.type == MetricsSourceType.RUNTIME_STATS and not analysis_stopped(md, previous):
                if has_router(md) and self.settings.router_metrics_per_pod:
                    router_pods = await self.list_router_pods(md)
                pods = self.metrics_targets(md, router_pods, router)
            observation = await self.analyst(target.uid, md).observe(md.spec, previous, moment, pods)
        outcome = advance(md.spec, previous, observation, moment, available)
        due_in = wake_in(md.spec, outcome.rollout, moment)
        if due_in is None:
            self.rollout_due.pop(target.uid, None)
        else:
            self.rollout_due[target.uid] = due_in
        serving = plan(md, views, desired_weight=outcome.weight)
        resolved = await self.resolved_labels(md, servers.get(MAIN), views.get(MAIN)) if has_router(md) else None
        children = with_manifest_hashes(render_served(md, serving, self.settings, resolved))
        problem: ApplyProblem | None = None
        try:
            applied = await self.applier.ensure(target, children, snapshot.live)
            if snapshot.problem is None:
                await self.applier.prune(target, [*snapshot.desired, *children], snapshot.live)
        except ApplyProblemError as error:
            problem, applied = error.problem, 0
        if has_router(md) and problem is None:
            await self.annotate_router_pods(md, target.uid, children, router_pods)
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
        unrouted = unrouted_labels(serving, resolved)
        self._note_loading(target.uid, md, serving, servers, unrouted)
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
            router=router,
            unrouted_labels=unrouted,
        )

    def _router_state(self, md: ModelDeploymentObject, snapshot: Snapshot[ModelDeploymentObject]) -> RouterState | None:
        if not has_router(md):
            return None
        name = router_name(md)
        live = snapshot.live.get((DEPLOYMENT.kind, name))
        desired = snapshot.desired_child(DEPLOYMENT.kind, name)
        replicas = int((desired or {}).get("spec", {}).get("replicas", 0))
        state = DeploymentState.from_object(live, CONFIG_HASH_ANNOTATION) if live is not None else None
        return RouterState(name, replicas, state)

    async def resolved_labels(
        self, md: ModelDeploymentObject, server: ServerState | None, view: ServerView | None
    ) -> dict[str, int] | None:
        """The labels of the live model config that TF Serving resolves to their version now (None: not read, the
        routing table keeps following the plan)."""
        if server is None or server.versions is None or view is None:
            return None
        applied = dict(view.applied_labels or {})
        behind = set(await self.unapplied_labels(md, MAIN, applied)) if applied else set()
        return {label: version for label, version in applied.items() if label not in behind}

    async def list_router_pods(self, md: ModelDeploymentObject) -> list[dict[str, Any]] | str:
        """The router's pods (by its selector labels), or why they could not be listed. No index holds pods (they are
        owned by ReplicaSets, not by the ModelDeployment), so this is one list call, made only on passes that need it:
        a RuntimeStats analysis in VersionLabels mode, or a routing table change."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(router_selector_labels(md).items()))
        try:
            return [dict(pod) for pod in await self.kube.list(POD.kind, md.namespace, selector)]
        except KubeError as error:
            return str(error)

    async def annotate_router_pods(
        self,
        md: ModelDeploymentObject,
        uid: str,
        children: list[dict[str, Any]],
        listed: list[dict[str, Any]] | str | None = None,
    ) -> None:
        """After a routing table change, annotate every router pod with the table's hash: a pod update makes the
        kubelet sync the pod, and so its ConfigMap volume, at once (instead of within its sync period, ~1 min).
        ``listed``: the router's pods as this pass already listed them (None: list them here)."""
        name = routing_configmap_name(md)
        table = next((c for c in children if c["kind"] == CONFIG_MAP.kind and c["metadata"]["name"] == name), None)
        if table is None:
            return
        wanted = digest(table["data"][ROUTING_KEY])
        if self.annotated.get(uid) == wanted:
            return
        if listed is None or isinstance(listed, str):
            listed = await self.list_router_pods(md)
        if isinstance(listed, str):
            log.warning("could not list the router's pods", namespace=md.namespace, name=md.name, error=listed)
            return
        try:
            for pod in listed:
                meta = pod.get("metadata") or {}
                if (meta.get("annotations") or {}).get(ROUTING_ANNOTATION) == wanted or meta.get("deletionTimestamp"):
                    continue
                patch = {"metadata": {"annotations": {ROUTING_ANNOTATION: wanted}}}
                await self.kube.patch(POD.kind, md.namespace, str(meta["name"]), patch)
        except KubeError as error:  # the next pass tries again; the kubelet's own sync gets there meanwhile
            if error.status != 404:
                log.warning(
                    "could not annotate the router's pods", namespace=md.namespace, name=md.name, error=str(error)
                )
            return
        self.annotated[uid] = wanted

    def _note_loading(
        self,
        uid: str,
        md: ModelDeploymentObject,
        serving: ServingPlan,
        servers: Mapping[str, ServerState],
        unrouted: tuple[str, ...] = (),
    ) -> None:
        wanted = {md.spec.stable.version} | ({md.spec.canary.version} if md.spec.canary is not None else set())
        labelled = {v for s in serving.servers for v in s.labels.values()}
        running = any(s.replicas and s.deployment is not None for s in servers.values())
        behind = bool(unrouted) or any(s.unapplied_labels for s in servers.values())
        if running and (behind or not wanted <= labelled):
            self.loading.add(uid)
        else:
            self.loading.discard(uid)
