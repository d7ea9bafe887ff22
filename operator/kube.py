"""The few Kubernetes API calls the operator makes itself (Kopf does the watching): apply, read, patch status.

Synchronous (the official client is), so handlers call it through ``asyncio.to_thread``-style executors. Every write
is counted in ``croupier_operator_api_writes_total``: the steady state must keep that counter still.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from croupier.api.common import GROUP, VERSION
from croupier.api.decisionpolicy import PLURAL
from croupier.operator import metrics
from croupier.operator.settings import FIELD_MANAGER, OPERATOR_VERSION

USER_AGENT = f"croupier-operator/{OPERATOR_VERSION}"
REQUEST_TIMEOUT = 30


@dataclass(frozen=True)
class KindInfo:
    api_version: str
    plural: str

    @property
    def base(self) -> str:
        return f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"


KINDS: dict[str, KindInfo] = {
    "ConfigMap": KindInfo("v1", "configmaps"),
    "Service": KindInfo("v1", "services"),
    "PersistentVolumeClaim": KindInfo("v1", "persistentvolumeclaims"),
    "Deployment": KindInfo("apps/v1", "deployments"),
    "PodDisruptionBudget": KindInfo("policy/v1", "poddisruptionbudgets"),
    "DecisionPolicy": KindInfo(f"{GROUP}/{VERSION}", PLURAL),
}


class KubeError(RuntimeError):
    """An API call failed; ``status`` is the HTTP status (0 when no answer came)."""

    def __init__(self, status: int, reason: str, message: str, causes: tuple[str, ...] = ()) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.causes = causes

    @property
    def namespace_terminating(self) -> bool:
        """The namespace is being deleted: nothing new can be created in it, and nothing needs to be."""
        return "NamespaceTerminating" in self.causes

    @property
    def rejected(self) -> bool:
        """The API server refused the object itself (invalid, forbidden): retrying the same request cannot help."""
        return self.status in (400, 403, 422)


def object_path(kind: str, namespace: str, name: str | None = None, subresource: str | None = None) -> str:
    info = KINDS[kind]
    path = f"{info.base}/namespaces/{namespace}/{info.plural}"
    if name is not None:
        path += f"/{name}"
    if subresource is not None:
        path += f"/{subresource}"
    return path


def load_api_client(kubeconfig: str | None = None, pool_size: int = 16) -> client.ApiClient:
    """In a pod: the ServiceAccount; elsewhere: $KUBECONFIG or ~/.kube/config (or the given file)."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    configuration.connection_pool_maxsize = pool_size
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api


class KubeClient:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: bytes | dict[str, Any] | None = None,
        content_type: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        method, url, headers, _, _ = self.api.param_serialize(
            method=method, resource_path=path, query_params=query, header_params=headers, auth_settings=["BearerToken"]
        )
        try:
            response = self.api.call_api(
                method, url, header_params=headers, body=body, _request_timeout=REQUEST_TIMEOUT
            )
            data: bytes = response.read()  # type: ignore[no-untyped-call]
        except ApiException as error:  # transport-level failures surface as ApiException(status=0)
            raise KubeError(int(error.status or 0), str(error.reason or "Error"), str(error.body or error)) from error
        except OSError as error:
            raise KubeError(0, type(error).__name__, str(error)) from error
        if not 200 <= response.status < 300:
            raise _error_from(response.status, str(response.reason), data)
        parsed: dict[str, Any] = json.loads(data) if data else {}
        return parsed

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", object_path(kind, namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side apply under our one field manager, forcing ownership of the fields we set."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["namespace"], meta["name"])
        query = [("fieldManager", FIELD_MANAGER), ("force", "true")]
        body = json.dumps(obj, separators=(",", ":")).encode()
        metrics.API_WRITES.labels(verb="apply", kind=obj["kind"]).inc()
        return self._call("PATCH", path, query=query, body=body, content_type="application/apply-patch+yaml")

    def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """JSON merge patch of the status subresource (lists are replaced whole, as conditions must be)."""
        body = {"status": dict(status)}  # the client serializes JSON bodies itself
        metrics.API_WRITES.labels(verb="patch_status", kind=kind).inc()
        path = object_path(kind, namespace, name, "status")
        return self._call("PATCH", path, body=body, content_type="application/merge-patch+json")


def _error_from(status: int, reason: str, data: bytes) -> KubeError:
    message = data.decode(errors="replace")
    causes: tuple[str, ...] = ()
    try:
        parsed = json.loads(data)
        if isinstance(parsed, dict) and parsed.get("message"):
            message = str(parsed["message"])
            reason = str(parsed.get("reason") or reason)
            details = parsed.get("details") or {}
            causes = tuple(str(c.get("reason")) for c in details.get("causes") or () if isinstance(c, dict))
    except ValueError:
        pass
    return KubeError(status, reason, message, causes)
