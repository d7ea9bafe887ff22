"""Read a runtime's ``GET /v1/stats``: the per-arm table and the generation it serves."""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass

import httpx
from pydantic import ValidationError

from croupier.api.decisionpolicy import AuthScope, AuthSpec
from croupier.api.wire import STATS_PATH, StatsResponse
from croupier.operator import metrics
from croupier.operator.core.kube import KubeClient, KubeError
from croupier.operator.core.resources import SECRET

AUTH_SECRET_LABEL = "croupier.dev/runtime-auth"
"""The label (value "true") a Secret needs before the operator reads a token from it."""


@dataclass(frozen=True)
class ProbeResult:
    url: str
    stats: StatsResponse | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.stats is not None


async def probe_stats(
    http: httpx.AsyncClient, base_url: str, *, token: str | None = None, token_problem: str | None = None
) -> ProbeResult:
    """GET /v1/stats, with the admin-scoped bearer token when authentication is on (``token_problem`` says why there
    is none, for the error of a 401)."""
    url = f"{base_url}{STATS_PATH}"
    started = time.perf_counter()
    headers = {"authorization": f"Bearer {token}"} if token is not None else None
    try:
        response = await http.get(url, headers=headers)
    except httpx.HTTPError as error:
        metrics.PROBES.labels(outcome="unreachable").inc()
        return ProbeResult(url=url, error=f"GET {url} failed: {type(error).__name__}: {error}".rstrip(": "))
    finally:
        metrics.PROBE_SECONDS.observe(time.perf_counter() - started)
    if response.status_code != 200:
        metrics.PROBES.labels(outcome="unreachable").inc()
        detail = f" ({token_problem})" if token_problem and response.status_code in (401, 403) else ""
        return ProbeResult(url=url, error=f"GET {url} answered HTTP {response.status_code}{detail}")
    try:
        stats = StatsResponse.model_validate_json(response.content)
    except ValidationError as error:
        metrics.PROBES.labels(outcome="invalid").inc()
        return ProbeResult(url=url, error=f"GET {url} returned an unexpected body: {error.error_count()} errors")
    metrics.PROBES.labels(outcome="ok").inc()
    return ProbeResult(url=url, stats=stats)


async def admin_token(
    kube: KubeClient | None, namespace: str, auth: AuthSpec, policy_name: str
) -> tuple[str | None, str]:
    """The first token of the first Secret key with the admin scope, or None and why not. Read per probe (one GET by
    name; the operator may get Secrets, never list or watch them), so a rotated Secret is used at the next probe. The
    token is never logged or written to status."""
    secret_name = auth.secret_for(policy_name)
    keys = [t.key for t in auth.tokens if AuthScope.ADMIN in t.scopes]
    if kube is None:
        return None, "the operator has no API client to read the auth Secret"
    try:
        secret = await kube.get(SECRET.kind, namespace, secret_name)
    except KubeError as error:
        return None, f"reading Secret {namespace}/{secret_name} failed: HTTP {error.status} {error.reason}"
    if secret is None:
        return None, f"Secret {namespace}/{secret_name} (spec.auth.secretName) does not exist"
    if (secret.get("metadata", {}).get("labels") or {}).get(AUTH_SECRET_LABEL) != "true":
        # Without the opt-in, anyone allowed to write a DecisionPolicy could name any Secret of the namespace and
        # receive one of its values through a runtime image of their own: the operator sends only opted-in tokens.
        return None, f"Secret {namespace}/{secret_name} lacks the label {AUTH_SECRET_LABEL}=true"
    data = secret.get("data") or {}
    for key in keys:
        if key in data:
            lines = [line.strip() for line in base64.b64decode(data[key]).decode("utf-8", "replace").splitlines()]
            token = next((line for line in lines if line), None)
            if token is not None:
                return token, ""
    return None, f"Secret {namespace}/{secret_name} has no token under an admin-scoped key ({', '.join(keys)})"
