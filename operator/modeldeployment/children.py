"""spec (and the serving plan) -> desired children of a ModelDeployment.

Two kinds of children:

* ``render`` (static, from the spec alone; applied by the shared machinery): the server ConfigMap (monitoring and
  batching files, read by TF Serving at start: their hash rolls the pods), the TF Serving Deployment(s), their
  Services and PodDisruptionBudgets, and in VersionLabels mode the model router's Deployment, PodDisruptionBudget and
  the model's Service in front of it (TF Serving's own Service is then ``<name>-tfserving``), and the NetworkPolicies
  of the TF Serving pods and of the router's pods (in both modes);
* ``render_served`` (from the ``ServingPlan``: which versions each server loads, which labels point where, the live
  weights; applied by the observer after each GetModelStatus): the model config ConfigMap of each server, which TF
  Serving polls (a version or label change never restarts a pod), in GatewayAPI mode the HTTPRoute or GRPCRoute
  weighted by the live canary weight, and in VersionLabels mode the router's routing table ConfigMap.

Pure: the same inputs always render the same objects, byte for byte (golden tests hold us to it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from croupier.api.common import GROUP
from croupier.api.modeldeployment import Protocol, RoutingMode
from croupier.operator.core.matching import digest
from croupier.operator.core.network import network_ingress, same_namespace_pods
from croupier.operator.core.observer import MANAGED_BY_LABEL
from croupier.operator.modeldeployment.model import ModelDeploymentObject
from croupier.operator.modeldeployment.storage import storage
from croupier.operator.modeldeployment.tfconfig import batching_parameters, model_config, monitoring_config
from croupier.operator.settings import FIELD_MANAGER, OperatorSettings
from croupier.operator.templating import render_manifest

TEMPLATE_DIR = "modeldeployment"
APP_NAME = "tensorflow-serving"
PART_OF = "croupier"
MODEL_DEPLOYMENT_LABEL = f"{GROUP}/modeldeployment"
SERVER_LABEL = f"{GROUP}/server"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
LABELS_ANNOTATION = f"{GROUP}/version-labels"
"""On a models ConfigMap: the labels it gives TF Serving, as JSON (what the next plan starts from)."""
FAILED_ANNOTATION = f"{GROUP}/failed-versions"
"""On a models ConfigMap: versions TF Serving failed to load, left out of the config until the spec drops them."""
CONFIG_MOUNT = "/etc/tfserving"
MODELS_KEY = "models.config"
ROUTING_KEY = "routing.yaml"
ROUTING_MOUNT = "/etc/croupier/routing"
ROUTING_ANNOTATION = f"{GROUP}/routing-hash"
"""On the router's pods: the hash of the routing table they should serve. The operator patches it after each table
change: any update of a pod makes the kubelet sync it, and so refresh its ConfigMap volume, at once."""
ROUTER_APP_NAME = "croupier-model-router"
SCORING_CLIENT_LABELS = {"app.kubernetes.io/name": "croupier-runtime"}
"""The DecisionPolicy runtimes' pods (operator/decisionpolicy/children.py APP_NAME): a model-scored policy calls the
ModelDeployment of its own namespace, so the model's NetworkPolicy always admits them."""
ROUTER_UID = 65532
MONITORING_KEY = "monitoring.config"
BATCHING_KEY = "batching.config"
GRPC_PORT = 8500
REST_PORT = 8501
SERVING_UID = 65532
GATEWAY_API = "gateway.networking.k8s.io/v1"

MAIN, STABLE, CANARY = "main", "stable", "canary"
"""Server roles: VersionLabels runs one server (main) with both versions; GatewayAPI one per version."""
ROUTER = "router"


@dataclass(frozen=True)
class ServerPlan:
    """What one TF Serving Deployment is told to load: exactly ``versions``, ``labels`` among them."""

    role: str
    versions: tuple[int, ...]
    labels: Mapping[str, int]
    failed: tuple[int, ...] = ()
    """Versions TF Serving failed to load: left out of the config (a new pod must not fail on them at start)."""


@dataclass(frozen=True)
class ServingPlan:
    servers: tuple[ServerPlan, ...]
    canary_weight: int
    """The live canary weight (percent); the stable version gets the rest."""

    def server(self, role: str) -> ServerPlan | None:
        return next((s for s in self.servers if s.role == role), None)


# TF Serving's REST verbs on a model's latest version: `POST /v1/models/<name>:<verb>`.
REST_VERBS = ("predict", "classify", "regress")


def server_roles(md: ModelDeploymentObject) -> tuple[str, ...]:
    return (STABLE, CANARY) if md.spec.routing.mode == RoutingMode.GATEWAY_API else (MAIN,)


def deployment_name(md: ModelDeploymentObject, role: str) -> str:
    return md.name if role == MAIN else f"{md.name}-{role}"


def service_name(md: ModelDeploymentObject, role: str) -> str:
    """A server's Service. VersionLabels: the model's Service (``<name>``) fronts the router, so TF Serving's own is
    ``<name>-tfserving``."""
    return f"{md.name}-tfserving" if role == MAIN else deployment_name(md, role)


def router_name(md: ModelDeploymentObject) -> str:
    return f"{md.name}-router"


def routing_configmap_name(md: ModelDeploymentObject) -> str:
    return f"{md.name}-routing"


def has_router(md: ModelDeploymentObject) -> bool:
    return md.spec.routing.mode == RoutingMode.VERSION_LABELS


def models_configmap_name(md: ModelDeploymentObject, role: str) -> str:
    return f"{deployment_name(md, role)}-models"


def server_configmap_name(md: ModelDeploymentObject) -> str:
    return f"{md.name}-server"


def route_kind(md: ModelDeploymentObject) -> str | None:
    if md.spec.routing.mode != RoutingMode.GATEWAY_API:
        return None
    return "GRPCRoute" if md.spec.routing.protocol == Protocol.GRPC else "HTTPRoute"


def selector_labels(md: ModelDeploymentObject, role: str) -> dict[str, str]:
    """Immutable once a Deployment exists: never add to this."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": md.name, SERVER_LABEL: role}


def router_selector_labels(md: ModelDeploymentObject) -> dict[str, str]:
    """Immutable once the router's Deployment exists: never add to this."""
    return {"app.kubernetes.io/name": ROUTER_APP_NAME, "app.kubernetes.io/instance": md.name, SERVER_LABEL: ROUTER}


def labels(md: ModelDeploymentObject, component: str, role: str | None = None) -> dict[str, str]:
    found = {
        "app.kubernetes.io/name": ROUTER_APP_NAME if role == ROUTER else APP_NAME,
        "app.kubernetes.io/instance": md.name,
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL: FIELD_MANAGER,
        "app.kubernetes.io/part-of": PART_OF,
        MODEL_DEPLOYMENT_LABEL: md.name,
    }
    if role is not None:
        found[SERVER_LABEL] = role
    return found


def server_files(md: ModelDeploymentObject) -> dict[str, str]:
    """The files TF Serving reads once, at start (a change rolls the pods through the config hash)."""
    files = {MONITORING_KEY: monitoring_config()}
    if md.spec.serving.batching is not None:
        files[BATCHING_KEY] = batching_parameters(md.spec.serving.batching)
    return files


def server_args(md: ModelDeploymentObject, settings: OperatorSettings) -> list[str]:
    args = [
        f"--port={GRPC_PORT}",
        f"--rest_api_port={REST_PORT}",
        f"--model_config_file={CONFIG_MOUNT}/{MODELS_KEY}",
        f"--model_config_file_poll_wait_seconds={settings.model_config_poll_seconds}",
        f"--monitoring_config_file={CONFIG_MOUNT}/{MONITORING_KEY}",
    ]
    if md.spec.serving.batching is not None:
        args += ["--enable_batching=true", f"--batching_parameters_file={CONFIG_MOUNT}/{BATCHING_KEY}"]
    return args


def _replicas(md: ModelDeploymentObject, role: str) -> int:
    if role == CANARY and md.spec.canary is None:
        return 0  # no canary: its Deployment stays, scaled to zero, and its route weight is 0
    return md.spec.serving.replicas


def _min_available(replicas: int) -> int | None:
    # One replica: maxUnavailable 1 (never block a node drain). More: all but one stay up during voluntary disruptions.
    return replicas - 1 if replicas > 1 else None


def _server_context(md: ModelDeploymentObject, role: str, settings: OperatorSettings) -> dict[str, Any]:
    where = storage(md.spec.model)
    serving = md.spec.serving
    files = server_files(md)
    replicas = _replicas(md, role)
    return {
        "namespace": md.namespace,
        "owner": md.owner_reference,
        "name": deployment_name(md, role),
        "service_name": service_name(md, role),
        "labels": labels(md, "model-server", role),
        "selector": selector_labels(md, role),
        "replicas": replicas,
        "image": serving.image,
        "args": server_args(md, settings),
        "config_hash_annotation": CONFIG_HASH_ANNOTATION,
        "config_hash": digest(files),
        "config_mount": CONFIG_MOUNT,
        "server_configmap": server_configmap_name(md),
        "models_configmap": models_configmap_name(md, role),
        "uid": SERVING_UID,
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "model_name": md.spec.model.name,
        "resources": serving.resources.to_wire() if serving.resources is not None else None,
        "env": where.env,
        "env_from": where.env_from,
        "volumes": where.volumes,
        "volume_mounts": where.mounts,
        "min_available": _min_available(replicas),
        "grpc_app_protocol": "kubernetes.io/h2c",
    }


def render(md: ModelDeploymentObject, settings: OperatorSettings) -> Sequence[dict[str, Any]]:
    """The children the spec alone decides, in apply order (config before the pods that mount it)."""
    children = [
        render_manifest(
            settings.templates_dir,
            f"{TEMPLATE_DIR}/server-configmap.yaml.j2",
            {
                "namespace": md.namespace,
                "owner": md.owner_reference,
                "name": server_configmap_name(md),
                "labels": labels(md, "config"),
                "files": server_files(md),
            },
        )
    ]
    for role in server_roles(md):
        context = _server_context(md, role, settings)
        for template in ("deployment.yaml.j2", "service.yaml.j2", "pdb.yaml.j2"):
            children.append(render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/{template}", context))
    if has_router(md):
        context = _router_context(md, settings)
        for template in ("router-deployment.yaml.j2", "service.yaml.j2", "pdb.yaml.j2"):
            children.append(render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/{template}", context))
    children += [
        render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/networkpolicy.yaml.j2", context)
        for context in network_policy_contexts(md, settings)
    ]
    return children


def network_policy_name(md: ModelDeploymentObject, router: bool) -> str:
    return router_name(md) if router else f"{md.name}-tfserving"


def network_policy_contexts(md: ModelDeploymentObject, settings: OperatorSettings) -> list[dict[str, Any]]:
    """A NetworkPolicy for the TF Serving pods (every role) and one for the router's. Who calls the model (the spec's
    peers, and the namespace's DecisionPolicy runtimes, which score with it) reaches the router in VersionLabels mode
    and TF Serving in GatewayAPI mode (the Gateway's pods are among the spec's peers); TF Serving behind a router admits
    only the router. The operator (GetModelStatus) and the monitoring namespaces reach both. The router's object is
    rendered in both modes (in GatewayAPI mode it selects no pod): a mode change then leaves no NetworkPolicy to
    delete."""
    spec = md.spec.network_policy
    ports = [GRPC_PORT, REST_PORT]
    scoring = [same_namespace_pods(SCORING_CLIENT_LABELS)]
    router = [same_namespace_pods(router_selector_labels(md))]
    common = {"namespace": md.namespace, "owner": md.owner_reference}
    server_callers = {"callers": router} if has_router(md) else {"also": scoring}
    return [
        {
            **common,
            "name": network_policy_name(md, router=False),
            "labels": labels(md, "model-server"),
            "selector": {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": md.name},
            "network_ingress": network_ingress(spec, ports, settings.pod_namespace, **server_callers),
        },
        {
            **common,
            "name": network_policy_name(md, router=True),
            "labels": labels(md, "model-router", ROUTER),
            "selector": router_selector_labels(md),
            "network_ingress": network_ingress(spec, ports, settings.pod_namespace, also=scoring),
        },
    ]


def router_args(md: ModelDeploymentObject) -> list[str]:
    upstream = f"{service_name(md, MAIN)}.{md.namespace}.svc"
    return [
        f"--rest-port={REST_PORT}",
        f"--grpc-port={GRPC_PORT}",
        f"--upstream-rest=http://{upstream}:{REST_PORT}",
        f"--upstream-grpc={upstream}:{GRPC_PORT}",
        f"--routing-file={ROUTING_MOUNT}/{ROUTING_KEY}",
    ]


def _router_context(md: ModelDeploymentObject, settings: OperatorSettings) -> dict[str, Any]:
    replicas = md.spec.serving.replicas
    return {
        "namespace": md.namespace,
        "owner": md.owner_reference,
        "name": router_name(md),
        "service_name": md.name,
        "labels": labels(md, "model-router", ROUTER),
        "selector": router_selector_labels(md),
        "replicas": replicas,
        "image": settings.runtime_image,
        "image_pull_policy": settings.runtime_image_pull_policy,
        "args": router_args(md),
        "uid": ROUTER_UID,
        "grpc_port": GRPC_PORT,
        "rest_port": REST_PORT,
        "model_name": md.spec.model.name,
        "resources": None,
        "routing_mount": ROUTING_MOUNT,
        "routing_configmap": routing_configmap_name(md),
        "min_available": _min_available(replicas),
        "grpc_app_protocol": "kubernetes.io/h2c",
    }


def routing_table(md: ModelDeploymentObject, plan: ServingPlan, resolved: Mapping[str, int] | None = None) -> str:
    """VersionLabels: the model router's table (``croupier.runtime.modelrouter.routing.RoutingTable``).

    ``resolved``: the labels TF Serving resolves now (None: take the plan's). A label gets traffic only once TF
    Serving resolves it to the planned version: its config poll trails the ConfigMap, and a request for a label it
    does not know yet would fail (and count against the canary)."""
    server = plan.servers[0]
    known = server.labels if resolved is None else resolved
    routed = {label: v for label, v in server.labels.items() if known.get(label) == v}
    route: dict[str, Any] = {}
    if STABLE in routed:
        route["stable"] = routed[STABLE]
        if CANARY in routed:
            route["canary"] = routed[CANARY]
            route["canaryWeight"] = plan.canary_weight
    table = {
        "salt": f"{md.namespace}/{md.name}",
        "models": {md.spec.model.name: route} if route else {},
    }
    return json.dumps(table, sort_keys=True, indent=2) + "\n"


def _models_configmap(
    md: ModelDeploymentObject, server: ServerPlan, plan: ServingPlan, settings: OperatorSettings
) -> dict[str, Any]:
    base = storage(md.spec.model).base_path
    data = {MODELS_KEY: model_config(md.spec.model.name, base, server.versions, server.labels)}
    context = {
        "namespace": md.namespace,
        "owner": md.owner_reference,
        "name": models_configmap_name(md, server.role),
        "labels": labels(md, "model-config", server.role),
        "labels_annotation": LABELS_ANNOTATION,
        "version_labels": json.dumps(dict(sorted(server.labels.items())), separators=(",", ":")),
        "failed_annotation": FAILED_ANNOTATION,
        "failed_versions": json.dumps(sorted(server.failed)),
        "data": data,
    }
    return render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/models-configmap.yaml.j2", context)


def _route(md: ModelDeploymentObject, plan: ServingPlan, settings: OperatorSettings) -> dict[str, Any]:
    kind = route_kind(md)
    grpc = kind == "GRPCRoute"
    port = GRPC_PORT if grpc else REST_PORT
    backends = [
        {"name": deployment_name(md, STABLE), "port": port, "weight": 100 - plan.canary_weight},
        {"name": deployment_name(md, CANARY), "port": port, "weight": plan.canary_weight},
    ]
    parents = [
        {
            "group": "gateway.networking.k8s.io",
            "kind": "Gateway",
            **{k: v for k, v in ref.to_wire().items() if k in ("name", "namespace", "sectionName", "port")},
        }
        for ref in md.spec.routing.parent_refs or ()
    ]
    # gRPC: no match, so every TF Serving service (PredictionService, ModelService) on the route's hostnames (a
    # method regular expression is implementation-specific in Gateway API). REST: the model's own paths (core). A
    # PathPrefix matches whole path segments, so `/v1/models/<name>:predict` (the latest version's verbs) is not under
    # the prefix `/v1/models/<name>`: those three paths get Exact matches of their own.
    model_path = f"/v1/models/{md.spec.model.name}"
    matches = (
        []
        if grpc
        else [
            {"path": {"type": "PathPrefix", "value": model_path}},
            *({"path": {"type": "Exact", "value": f"{model_path}:{verb}"}} for verb in REST_VERBS),
        ]
    )
    context = {
        "api_version": GATEWAY_API,
        "kind": kind,
        "namespace": md.namespace,
        "owner": md.owner_reference,
        "name": md.name,
        "labels": labels(md, "route"),
        "parent_refs": parents,
        "hostnames": list(md.spec.routing.hostnames or []),
        "matches": matches,
        "backends": backends,
    }
    return render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/route.yaml.j2", context)


def _routing_configmap(
    md: ModelDeploymentObject, plan: ServingPlan, resolved: Mapping[str, int] | None, settings: OperatorSettings
) -> dict[str, Any]:
    context = {
        "namespace": md.namespace,
        "owner": md.owner_reference,
        "name": routing_configmap_name(md),
        "labels": labels(md, "routing", ROUTER),
        "data": {ROUTING_KEY: routing_table(md, plan, resolved)},
    }
    return render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/routing-configmap.yaml.j2", context)


def render_served(
    md: ModelDeploymentObject,
    plan: ServingPlan,
    settings: OperatorSettings,
    resolved: Mapping[str, int] | None = None,
) -> list[dict[str, Any]]:
    """The children the serving plan decides: each server's model config, the weighted route (GatewayAPI) or the
    router's routing table (VersionLabels; ``resolved`` as in ``routing_table``)."""
    children: list[dict[str, Any]] = [_models_configmap(md, server, plan, settings) for server in plan.servers]
    if route_kind(md) is not None:
        children.append(_route(md, plan, settings))
    if has_router(md):
        children.append(_routing_configmap(md, plan, resolved, settings))
    return children


def endpoints(md: ModelDeploymentObject) -> tuple[str, str]:
    """(gRPC host:port, REST URL) inside the cluster: the model's Service (the router's in VersionLabels mode), or
    the stable server's (GatewayAPI; clients go through the Gateway)."""
    service = md.name if has_router(md) else deployment_name(md, server_roles(md)[0])
    host = f"{service}.{md.namespace}.svc"
    return f"{host}:{GRPC_PORT}", f"http://{host}:{REST_PORT}"
