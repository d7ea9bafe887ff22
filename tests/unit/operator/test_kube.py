"""The operator's API client: credentials from the kubeconfig loaders, and the API server's errors as KubeError."""

from __future__ import annotations

import asyncio
import json

import pytest
from kubernetes import client

from croupier.operator.core.kube import USER_AGENT, KubeClient, _error_from

pytestmark = pytest.mark.unit


def test_the_bearer_token_of_the_loaders_is_sent() -> None:
    configuration = client.Configuration(host="https://127.0.0.1:6443")
    configuration.api_key["BearerToken"] = "Bearer abc"  # what load_kube_config / load_incluster_config store

    async def headers() -> tuple[dict[str, str], str]:
        kube = KubeClient(configuration)
        try:
            return kube._authorization(), kube.session.headers["User-Agent"]
        finally:
            await kube.aclose()

    authorization, agent = asyncio.run(headers())
    assert authorization == {"Authorization": "Bearer abc"}
    assert agent == USER_AGENT


def test_a_terminating_namespace_and_a_rejected_object_are_told_apart() -> None:
    body = {
        "kind": "Status",
        "message": 'configmaps "x" is forbidden: unable to create new content in namespace ns because it is being '
        "terminated",
        "reason": "Forbidden",
        "details": {"causes": [{"reason": "NamespaceTerminating", "message": "namespace ns is being terminated"}]},
        "code": 403,
    }
    error = _error_from(403, "Forbidden", json.dumps(body).encode())
    assert error.namespace_terminating and error.rejected
    assert error.message.startswith('configmaps "x" is forbidden')
    invalid = _error_from(422, "Unprocessable Entity", b'{"message": "spec: Forbidden", "reason": "Invalid"}')
    assert invalid.rejected and not invalid.namespace_terminating and invalid.reason == "Invalid"
    unavailable = _error_from(503, "Service Unavailable", b"not json")
    assert not unavailable.rejected and unavailable.message == "not json"
