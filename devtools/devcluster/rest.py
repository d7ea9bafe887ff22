"""A minimal, typed REST client for the few calls the control plane makes about itself (readiness, the fake node).

Tests and the operator use the official client; this one exists so that bring-up has no untyped dependency.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx


class Rest:
    def __init__(self, server: str, *, token: str, ca_cert: Path, timeout: float = 5.0) -> None:
        self._client = httpx.Client(
            base_url=server,
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(ca_cert)),
            timeout=timeout,
            trust_env=False,  # a proxy from the environment must never see loopback traffic or the token
        )

    def get(self, path: str) -> httpx.Response:
        return self._client.get(path)

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._client.post(path, json=body)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Rest:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
