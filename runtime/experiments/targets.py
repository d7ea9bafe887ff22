"""What a variant serves besides a static payload: a DecisionPolicy's decision (asked of that policy's runtime over
HTTP) or a ModelDeployment version's route."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from croupier.api import wire
from croupier.runtime.errors import TargetUnavailable
from croupier.runtime.experiments.records import ModelRoute, PolicyDecision

MODEL_VERSION_HEADER = "x-croupier-model-version"
"""The header a ModelDeployment version target's requests carry; the model router sends them to that version."""


def model_route(name: str, version: int) -> ModelRoute:
    return ModelRoute(name, version, MODEL_VERSION_HEADER, str(version))


class PolicyClient:
    """Asks DecisionPolicy runtimes for decisions (POST /v1/decide), one pooled async client for all of them.

    A policy's URL is `urls[name]` if given, else `template` formatted with the policy's name and namespace (in a
    cluster: its Service, `http://{name}.{namespace}.svc:8080`)."""

    def __init__(
        self, *, template: str, namespace: str | None, urls: Mapping[str, str] | None = None, timeout: float = 0.5
    ) -> None:
        self._template = template
        self._namespace = namespace or "default"
        self._urls = dict(urls or {})
        self._timeout = timeout
        self._client: httpx.AsyncClient | None = None

    def url(self, policy: str) -> str:
        base = self._urls.get(policy) or self._template.format(name=policy, namespace=self._namespace)
        return base.rstrip("/") + wire.DECIDE_PATH

    async def start(self) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self._timeout),
            limits=httpx.Limits(max_connections=256, max_keepalive_connections=64),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def decide(self, policy: str, unit_id: str, context: object | None, variant: str) -> PolicyDecision:
        assert self._client is not None, "PolicyClient.start() was not awaited"
        url = self.url(policy)
        body: dict[str, Any] = {"unitId": unit_id}
        if context is not None:
            body["context"] = context
        where = f"variant {variant!r}: DecisionPolicy {policy!r} at {url}"
        try:
            response = await self._client.post(
                url, content=orjson.dumps(body), headers={"content-type": "application/json"}
            )
        except httpx.TimeoutException:
            raise TargetUnavailable(f"{where} did not answer within {self._timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TargetUnavailable(f"{where} is unreachable: {exc!r}") from None
        if response.status_code != 200:
            detail = response.text[:300]
            raise TargetUnavailable(f"{where} answered {response.status_code}: {detail}")
        try:
            answer = orjson.loads(response.content)
            return PolicyDecision(
                policy,
                answer["decisionId"],
                answer["arm"],
                answer["probabilities"],
                answer["policyVersion"],
            )
        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise TargetUnavailable(f"{where} answered an unexpected body: {exc!r}") from None
