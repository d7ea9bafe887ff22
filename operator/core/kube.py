"""The few Kubernetes API calls the operator makes itself (Kopf does the watching): apply, read, patch status.

Asynchronous, on aiohttp (Kopf's own HTTP stack): one connection pool per process, no thread pool. Credentials come
from the ServiceAccount in a pod, else $KUBECONFIG or ~/.kube/config, resolved by the official client's loaders
(tokens, client certificates, exec plugins); a rotated ServiceAccount token is re-read when the loader says so.
Every write is counted in ``croupier_operator_api_writes_total``: the steady state must keep that counter still.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from kubernetes import client, config

from croupier.operator import metrics
from croupier.operator.core.resources import BY_KIND
from croupier.operator.settings import FIELD_MANAGER, OPERATOR_VERSION

USER_AGENT = f"croupier-operator/{OPERATOR_VERSION}"
REQUEST_TIMEOUT = 30
"""Seconds a request may take once it has a connection: to connect, and between two reads of the answer. The wait for
one of the ``max_connections`` is not bounded: under a burst (hundreds of new objects at once) requests queue for a
connection, and a bound on the whole would fail the last ones in the queue although the API server answers each in
time (each failure then costs a retry and a 10 s backoff)."""
# A resourceVersion in an applied configuration is a precondition on an existing object, and ignored when the apply
# creates the object. No live object has resourceVersion 1 (etcd's first revision), so an apply that carries it
# creates the object if it is absent and fails with 409 Conflict if it exists: a create-only apply.
CREATE_ONLY_RESOURCE_VERSION = "1"


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
    def conflict(self) -> bool:
        """409: the object exists (a create-only apply), or changed under a precondition."""
        return self.status == 409

    @property
    def unavailable(self) -> bool:
        """No answer, or the API server (or its storage) cannot serve now: an outage to wait out, not a bug."""
        return self.status in (0, 429, 500, 502, 503, 504)

    @property
    def rejected(self) -> bool:
        """The API server refused the object itself (invalid, forbidden): retrying the same request cannot help."""
        return self.status in (400, 403, 422)


def load_configuration(kubeconfig: str | None = None) -> client.Configuration:
    """In a pod: the ServiceAccount; elsewhere: $KUBECONFIG or ~/.kube/config (or the given file)."""
    configuration = client.Configuration()
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, client_configuration=configuration
        )
    return configuration


def _ssl_context(configuration: client.Configuration) -> ssl.SSLContext | bool:
    if not configuration.host.startswith("https"):
        return False
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class KubeClient:
    """An asynchronous client of the few endpoints the operator writes: server-side apply, status patch, get."""

    def __init__(self, configuration: client.Configuration, *, max_connections: int = 16) -> None:
        self.configuration = configuration
        self.host = configuration.host.rstrip("/")
        connector = aiohttp.TCPConnector(limit=max_connections, ssl=_ssl_context(configuration))
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=REQUEST_TIMEOUT, sock_read=REQUEST_TIMEOUT),
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        )

    @classmethod
    def from_kubeconfig(cls, kubeconfig: str | None = None, *, max_connections: int = 16) -> KubeClient:
        return cls(load_configuration(kubeconfig), max_connections=max_connections)

    async def aclose(self) -> None:
        await self.session.close()

    def _authorization(self) -> dict[str, str]:
        # The loaders keep "Bearer <token>" under BearerToken (older clients: authorization); the refresh hook, if
        # any, re-reads a rotated ServiceAccount token once it is due.
        token = self.configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        return {"Authorization": token} if token else {}

    async def _call(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
        parse: bool = True,
    ) -> dict[str, Any]:
        """One request; the answer's JSON (``parse`` False: not decoded, ``{}``; large objects nobody reads)."""
        headers = self._authorization()
        data = None
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
            data = json.dumps(body, separators=(",", ":")).encode()
        try:
            async with self.session.request(
                method, f"{self.host}{path}", params=query, data=data, headers=headers
            ) as response:
                payload = await response.read()
                status, reason = response.status, str(response.reason or "")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise KubeError(0, type(error).__name__, str(error) or type(error).__name__) from error
        if not 200 <= status < 300:
            raise _error_from(status, reason, payload)
        parsed: dict[str, Any] = json.loads(payload) if payload and parse else {}
        return parsed

    async def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", BY_KIND[kind].path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def apply(self, obj: Mapping[str, Any], *, create_only: bool = False) -> None:
        """Server-side apply under our one field manager, forcing ownership of the fields we set.

        ``create_only``: create the object if it is absent, else fail with 409 (``KubeError.conflict``) and change
        nothing - one request where a read and an apply would otherwise be needed.
        """
        meta = obj["metadata"]
        path = BY_KIND[obj["kind"]].path(meta["namespace"], meta["name"])
        if create_only:
            obj = {**obj, "metadata": {**meta, "resourceVersion": CREATE_ONLY_RESOURCE_VERSION}}
        query = {"fieldManager": FIELD_MANAGER, "force": "true"}
        metrics.API_WRITES.labels(verb="apply", kind=obj["kind"]).inc()
        await self._call("PATCH", path, query=query, body=obj, content_type="application/apply-patch+yaml", parse=False)

    async def list(self, kind: str, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        """The objects of a kind in a namespace that match a label selector."""
        found = await self._call("GET", BY_KIND[kind].path(namespace), query={"labelSelector": label_selector})
        items: list[dict[str, Any]] = found.get("items") or []
        return items

    async def patch(self, kind: str, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """JSON merge patch of an object (not a child we own: e.g. an annotation on a pod)."""
        metrics.API_WRITES.labels(verb="patch", kind=kind).inc()
        await self._call(
            "PATCH", BY_KIND[kind].path(namespace, name), body=patch, content_type="application/merge-patch+json"
        )

    async def delete(self, kind: str, namespace: str, name: str, uid: str) -> None:
        """Delete one object if it is still the one we saw (``uid`` precondition); its dependents go in the
        background (the garbage collector). Already gone is not an error."""
        metrics.API_WRITES.labels(verb="delete", kind=kind).inc()
        body = {"propagationPolicy": "Background", "preconditions": {"uid": uid}}
        try:
            await self._call("DELETE", BY_KIND[kind].path(namespace, name), body=body, parse=False)
        except KubeError as error:
            if error.status != 404:
                raise

    async def patch_status(self, kind: str, namespace: str, name: str, status: Mapping[str, Any]) -> dict[str, Any]:
        """JSON merge patch of the status subresource (lists are replaced whole, as conditions must be)."""
        metrics.API_WRITES.labels(verb="patch_status", kind=kind).inc()
        path = BY_KIND[kind].path(namespace, name, "status")
        return await self._call(
            "PATCH", path, body={"status": dict(status)}, content_type="application/merge-patch+json"
        )


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
