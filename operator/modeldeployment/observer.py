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
    SERVER_LABEL,
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
    selector_labels,
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


ROUTER_METRICS_SETTING = "CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE"
MODEL_METRICS_SETTING = "CROUPIER_OPERATOR_MODEL_METRICS_URL_TEMPLATE"


def pod_metrics_urls(
    pods: Sequence[Mapping[str, Any]] | str | None,
    template: str,
    *,
    per_pod: bool,
    ready_replicas: int,
    server: str,
    setting: str,
    name: str,
    namespace: str,
    service: str,
) -> tuple[tuple[str, ...], str | None]:
    """The metrics URLs of one Deployment's pods (the router's, or one TF Serving server's), and why they cannot give
    exact numbers (None: they can). ``per_pod``: ``template`` names a pod, so one URL per ready pod of ``pods`` (the
    Deployment's pods, or why they could not be listed); otherwise the template's one URL (e.g. a Service), exact only
    while at most one pod is ready (``ready_replicas``, from the Deployment's status): a Service sends each scrape to
    one of them. ``server`` names the Deployment and ``setting`` the template's variable in the reasons."""
    if not per_pod:
        url = OperatorSettings.metrics_url(template, name=name, namespace=namespace, service=service)
        if ready_replicas > 1:
            return (url,), (
                f"{ready_replicas} pods of {server} are ready but {setting} ({template}) names no pod "
                "({pod} or {pod_ip}): one scrape reaches one of them"
            )
        return (url,), None
    if isinstance(pods, str):
        return (), f"the pods of {server} could not be listed: {pods}"
    urls = tuple(
        OperatorSettings.metrics_url(template, name=name, namespace=namespace, service=service, pod=pod, pod_ip=ip)
        for pod, ip in ready_pods(pods or ())
    )
    return urls, None if urls else f"no ready pod of {server} to scrape"


def router_metrics_targets(
    md: ModelDeploymentObject,
    settings: OperatorSettings,
    pods: Sequence[Mapping[str, Any]] | str | None,
    ready_replicas: int,
) -> VersionTargets | None:
    """VersionLabels: the router's per-version counters, one URL per ready router pod when the URL template names a
    pod (``pods``: the router's pods, or why they could not be listed), else the one URL of the template."""
    canary = md.spec.canary
    if canary is None:
        return None
    urls, problem = pod_metrics_urls(
        pods,
        settings.router_metrics_url_template,
        per_pod=settings.router_metrics_per_pod,
        ready_replicas=ready_replicas,
        server=f"the router {router_name(md)}",
        setting=ROUTER_METRICS_SETTING,
        name=md.name,
        namespace=md.namespace,
        service=md.name,
    )
    return VersionTargets(
        canary=Targets(urls, {"version": str(canary.version)}),
        stable=Targets(urls, {"version": str(md.spec.stable.version)}),
        problem=problem,
    )


def server_metrics_targets(
    md: ModelDeploymentObject,
    settings: OperatorSettings,
    pods: Sequence[Mapping[str, Any]] | str | None,
    ready_replicas: Mapping[str, int],
) -> VersionTargets | None:
    """GatewayAPI: TF Serving's own metrics of each version's server (they carry no version; each version has its own
    Deployment), one URL per ready pod of that server when the URL template names a pod (``pods``: the TF Serving pods
    of both servers, told apart by their server label, or why they could not be listed), else the template's one URL
    per server (``ready_replicas`` by server role). The stable server's problem counts only when the analysis compares
    with it."""
    canary = md.spec.canary
    if canary is None:
        return None
    compares = canary.analysis is not None and canary.analysis.compares_with_stable
    found: dict[str, tuple[str, ...]] = {}
    problems: list[str] = []
    for label in (CANARY, STABLE):
        role = server_for(md, label)
        own = pods if pods is None or isinstance(pods, str) else [p for p in pods if server_of(p) == role]
        found[label], problem = pod_metrics_urls(
            own,
            settings.model_metrics_url_template,
            per_pod=settings.model_metrics_per_pod,
            ready_replicas=ready_replicas.get(role, 0),
            server=f"the TF Serving server {deployment_name(md, role)}",
            setting=MODEL_METRICS_SETTING,
            name=md.name,
            namespace=md.namespace,
            service=service_name(md, role),
        )
        if problem is not None and (label == CANARY or compares):
            problems.append(problem)
    return VersionTargets(
        canary=Targets(found[CANARY]), stable=Targets(found[STABLE]), problem=problems[0] if problems else None
    )


def server_of(pod: Mapping[str, Any]) -> str | None:
    """The server role a TF Serving pod belongs to (its server label)."""
    value = ((pod.get("metadata") or {}).get("labels") or {}).get(SERVER_LABEL)
    return str(value) if value is not None else None


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
        pods: Sequence[Mapping[str, Any]] | str | None = None,
        router: RouterState | None = None,
        servers: Mapping[str, ServerState] | None = None,
    ) -> VersionTargets | None:
        """The metrics endpoints of the canary's and the stable version's servers (RuntimeStats): TF Serving's own of
        every ready pod of each version's server in GatewayAPI mode; the router's per-version counters in VersionLabels
        mode (TF Serving's metrics carry no version, and one server serves both there), from every ready router pod.
        ``pods``: the router's or the TF Serving servers' pods as listed this pass (``list_metrics_pods``)."""
        if has_router(md):
            ready = router.deployment.ready if router is not None and router.deployment is not None else 0
            return router_metrics_targets(md, self.settings, pods, ready)
        ready_replicas = {
            role: server.deployment.ready if server.deployment is not None else 0
            for role, server in (servers or {}).items()
        }
        return server_metrics_targets(md, self.settings, pods, ready_replicas)

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
                listed = await self.list_metrics_pods(md)
                if has_router(md):
                    router_pods = listed
                pods = self.metrics_targets(md, listed, router, servers)
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
        """The router's pods (by its selector labels), or why they could not be listed."""
        return await self.list_pods(md, router_selector_labels(md))

    async def list_metrics_pods(self, md: ModelDeploymentObject) -> list[dict[str, Any]] | str | None:
        """The pods whose metrics RuntimeStats reads when its URL template names a pod (None: it does not): the
        router's (VersionLabels), or both TF Serving servers' in one call (GatewayAPI; told apart by server label)."""
        if has_router(md):
            return await self.list_router_pods(md) if self.settings.router_metrics_per_pod else None
        if not self.settings.model_metrics_per_pod:
            return None
        servers = {k: v for k, v in selector_labels(md, STABLE).items() if k != SERVER_LABEL}
        return await self.list_pods(md, servers)

    async def list_pods(self, md: ModelDeploymentObject, labels: Mapping[str, str]) -> list[dict[str, Any]] | str:
        """The pods with these labels in the ModelDeployment's namespace, or why they could not be listed. No index
        holds pods (they are owned by ReplicaSets, not by the ModelDeployment), so this is one list call, made only on
        passes that need it: a running RuntimeStats analysis, or a routing table change."""
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
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
