"""Every Kubernetes resource the operator reads or writes, defined once: its kind, group, version and plural.

The child kinds a custom resource may own are listed here (``CHILD_KINDS``); each Kind declares which of them it uses,
and the watches, indexes and API paths all derive from these definitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from croupier.api import decisionpolicy, experiment, modeldeployment
from croupier.api.common import GROUP, VERSION


@dataclass(frozen=True)
class Resource:
    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def base(self) -> str:
        return f"/apis/{self.api_version}" if self.group else f"/api/{self.version}"

    def path(self, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
        path = f"{self.base}/namespaces/{namespace}/{self.plural}"
        if name is not None:
            path += f"/{name}"
        if subresource is not None:
            path += f"/{subresource}"
        return path


CONFIG_MAP = Resource("ConfigMap", "", "v1", "configmaps")
SERVICE = Resource("Service", "", "v1", "services")
PERSISTENT_VOLUME_CLAIM = Resource("PersistentVolumeClaim", "", "v1", "persistentvolumeclaims")
DEPLOYMENT = Resource("Deployment", "apps", "v1", "deployments")
POD_DISRUPTION_BUDGET = Resource("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets")
NETWORK_POLICY = Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies")
# Read only (get, by name): the auth Secret a DecisionPolicy names, for the admin token of the stats probe.
SECRET = Resource("Secret", "", "v1", "secrets")
# Listed by label and annotated (merge patch): a ModelDeployment's router pods, so the kubelet refreshes their routing
# table volume at once after a weight change. Never watched, created or deleted.
POD = Resource("Pod", "", "v1", "pods")
# Gateway API routes (a ModelDeployment in GatewayAPI mode); watched only where the Gateway API CRDs are installed.
HTTP_ROUTE = Resource("HTTPRoute", "gateway.networking.k8s.io", "v1", "httproutes")
GRPC_ROUTE = Resource("GRPCRoute", "gateway.networking.k8s.io", "v1", "grpcroutes")

# The kinds a custom resource may own (watched label-selected, indexed by owner, applied server-side).
CHILD_KINDS: tuple[Resource, ...] = (
    CONFIG_MAP,
    SERVICE,
    PERSISTENT_VOLUME_CLAIM,
    DEPLOYMENT,
    POD_DISRUPTION_BUDGET,
    NETWORK_POLICY,
    HTTP_ROUTE,
    GRPC_ROUTE,
)

# Kinds the operator only reads, one object by name (never lists or watches them): RBAC grants them `get` alone.
READ_BY_NAME: tuple[Resource, ...] = (SECRET,)
# Kinds the operator lists by label and merge-patches (an annotation), never creates, watches or deletes.
LIST_AND_ANNOTATE: tuple[Resource, ...] = (POD,)

DECISION_POLICY = Resource(decisionpolicy.KIND, GROUP, VERSION, decisionpolicy.PLURAL)
MODEL_DEPLOYMENT = Resource(modeldeployment.KIND, GROUP, VERSION, modeldeployment.PLURAL)
EXPERIMENT = Resource(experiment.KIND, GROUP, VERSION, experiment.PLURAL)
# Custom resources read by name as another kind's target (an Experiment's DecisionPolicies and ModelDeployments, a
# scored DecisionPolicy's ModelDeployment): RBAC grants them `get`; the kind nobody targets (Experiment) gets none.
TARGETS_READ_BY_NAME: tuple[Resource, ...] = (DECISION_POLICY, MODEL_DEPLOYMENT)

# Custom resources (the kinds with a controller) and children, by kind.
BY_KIND: dict[str, Resource] = {
    r.kind: r for r in (*CHILD_KINDS, SECRET, POD, DECISION_POLICY, MODEL_DEPLOYMENT, EXPERIMENT)
}
