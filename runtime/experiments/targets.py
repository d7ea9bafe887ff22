"""What a variant serves besides a static payload: a DecisionPolicy's decision (asked of that policy's runtime over
HTTP) or a ModelDeployment version's route."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
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


TOKEN_RELOAD_INTERVAL_SECONDS = 1.0
MAX_TOKEN_FILE_BYTES = 64 * 1024


class PolicyTokens:
    """The decide-scope bearer token for each DecisionPolicy target: file `<directory>/<policy>`, its first non-empty
    line (the operator mounts the key of the policy's auth Secret there). Like the runtime's own tokens, a file is
    looked at (one stat) at most once a second per policy and re-read when it changed, so a rotation by the kubelet
    needs no restart. No file: the request goes without a token (a policy with auth disabled). Never logged."""

    def __init__(self, directory: Path, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self._clock = clock
        self._cache: dict[str, tuple[float, tuple[int, int, int] | None, str | None]] = {}

    def token(self, policy: str) -> str | None:
        now = self._clock()
        cached = self._cache.get(policy)
        if cached is not None and now < cached[0]:
            return cached[2]
        path = self.directory / policy
        try:
            st = os.stat(path)  # follows the kubelet's ..data symlinks to the current file
            signature: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            signature = None
        if cached is not None and cached[1] == signature:
            value = cached[2]
        else:
            value = self._read(path) if signature is not None else None
        self._cache[policy] = (now + TOKEN_RELOAD_INTERVAL_SECONDS, signature, value)
        return value

    @staticmethod
    def _read(path: Path) -> str | None:
        try:
            with path.open("rb") as file:
                content = file.read(MAX_TOKEN_FILE_BYTES + 1)
        except FileNotFoundError:
            return None
        if len(content) > MAX_TOKEN_FILE_BYTES:
            return None
        lines = (line.strip() for line in content.decode("utf-8", "replace").splitlines())
        return next((line for line in lines if line), None)


class PolicyClient:
    """Asks DecisionPolicy runtimes for decisions (POST /v1/decide), one pooled async client for all of them.

    A policy's URL is `urls[name]` if given, else `template` formatted with the policy's name and namespace (in a
    cluster: its Service, `http://{name}.{namespace}.svc:8080`). With `tokens`, each request carries
    `Authorization: Bearer` with the policy's decide-scope token when one is mounted."""

    def __init__(
        self,
        *,
        template: str,
        namespace: str | None,
        urls: Mapping[str, str] | None = None,
        timeout: float = 0.5,
        tokens: PolicyTokens | None = None,
    ) -> None:
        self._tokens = tokens
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

    def headers(self, policy: str) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        token = self._tokens.token(policy) if self._tokens is not None else None
        if token is not None:
            headers["authorization"] = f"Bearer {token}"
        return headers

    async def decide(self, policy: str, unit_id: str, context: object | None, variant: str) -> PolicyDecision:
        assert self._client is not None, "PolicyClient.start() was not awaited"
        url = self.url(policy)
        body: dict[str, Any] = {"unitId": unit_id}
        if context is not None:
            body["context"] = context
        where = f"variant {variant!r}: DecisionPolicy {policy!r} at {url}"
        try:
            response = await self._client.post(url, content=orjson.dumps(body), headers=self.headers(policy))
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
