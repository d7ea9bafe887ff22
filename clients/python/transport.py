"""What the sync and async clients share about their connection: base URL, bearer token, timeouts, pool limits, and
the constructor both take (`ClientBase`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

import httpx

from croupier.api.wire import DEFAULT_PORT

from .retry import RetryPolicy

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


@dataclass(frozen=True, slots=True)
class Connection:
    """Where the runtime is and how to talk to it.

    ``timeout`` bounds each phase of a request (connect, write, read, pool wait) in seconds; ``connect_timeout``
    overrides the connect phase (a runtime that is down should fail fast so the fallback arm is served quickly)."""

    url: str
    token: str | None = None
    timeout: float = 2.0
    connect_timeout: float | None = 0.5
    max_connections: int = 100
    max_keepalive_connections: int = 20
    keepalive_expiry: float = 30.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the runtime URL must start with http:// or https://, got {self.url!r}")
        if self.timeout <= 0 or (self.connect_timeout is not None and self.connect_timeout <= 0):
            raise ValueError("timeouts must be positive")

    def options(self) -> dict[str, object]:
        """Keyword arguments of httpx.Client / httpx.AsyncClient."""
        headers = {"content-type": "application/json", "accept": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        timeout = httpx.Timeout(self.timeout, connect=self.connect_timeout or self.timeout)
        limits = httpx.Limits(
            max_connections=self.max_connections,
            max_keepalive_connections=self.max_keepalive_connections,
            keepalive_expiry=self.keepalive_expiry,
        )
        return {"base_url": self.url.rstrip("/"), "headers": headers, "timeout": timeout, "limits": limits}


DEFAULT_URL = f"http://127.0.0.1:{DEFAULT_PORT}"


class ClientBase(ABC, Generic[H]):
    """The settings of a client (its connection, retry policy and fallback arm) and its pooled httpx client."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        *,
        token: str | None = None,
        timeout: float = 2.0,
        connect_timeout: float | None = 0.5,
        retry: RetryPolicy | None = None,
        fallback_arm: str | None = None,
        max_connections: int = 100,
        max_keepalive_connections: int = 20,
    ) -> None:
        self.connection = Connection(
            url,
            token=token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_connections=max_connections,
            max_keepalive_connections=max_keepalive_connections,
        )
        self.retry = retry or RetryPolicy()
        self.fallback_arm = fallback_arm
        self._http: H = self._open(self.connection.options())

    @abstractmethod
    def _open(self, options: dict[str, object]) -> H:
        """The pooled httpx client (``options``: `Connection.options`)."""
