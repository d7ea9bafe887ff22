"""Connection settings shared by the sync and async clients: base URL, bearer token, timeouts, pool limits."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from croupier.api.wire import DEFAULT_PORT


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
