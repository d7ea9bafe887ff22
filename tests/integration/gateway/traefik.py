"""Traefik (built by hack/traefik/build.sh) as a child process serving the Gateway API of the test cluster."""

from __future__ import annotations

import http.client
import subprocess
from pathlib import Path
from types import TracebackType

import httpx

from croupier.devcluster.ports import free_port
from croupier.devcluster.process import Component

CONTROLLER_NAME = "traefik.io/gateway-controller"


class TraefikProcess:
    """Traefik with the kubernetesgateway provider on the given namespaces; entrypoint ``web`` on 127.0.0.1.

    A Gateway's listener must use ``web_port`` (Traefik maps listeners to entrypoints by port). The ``traefik``
    entrypoint (``admin_port``) serves /ping for readiness.
    """

    def __init__(
        self, binary: Path, *, server: str, token_file: Path, ca_cert: Path, namespaces: list[str], log: Path
    ) -> None:
        self.binary = binary
        self.server = server
        self.token_file = token_file
        self.ca_cert = ca_cert
        self.namespaces = namespaces
        self.log = log
        self.web_port = free_port()
        self.admin_port = free_port()
        self.component: Component | None = None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.component.process if self.component is not None else None

    def command(self) -> list[str]:
        return [
            str(self.binary),
            f"--entrypoints.web.address=127.0.0.1:{self.web_port}",
            f"--entrypoints.traefik.address=127.0.0.1:{self.admin_port}",
            "--ping=true",
            "--api=true",
            "--api.insecure=true",  # the API on the traefik entrypoint, bound to 127.0.0.1
            "--log.level=INFO",
            "--global.checknewversion=false",
            "--global.sendanonymoususage=false",
            "--providers.kubernetesgateway=true",
            f"--providers.kubernetesgateway.endpoint={self.server}",
            f"--providers.kubernetesgateway.token={self.token_file}",  # a path: Traefik reads the file
            f"--providers.kubernetesgateway.certauthfilepath={self.ca_cert}",
            f"--providers.kubernetesgateway.namespaces={','.join(self.namespaces)}",
        ]

    def start(self, timeout: float = 60.0) -> TraefikProcess:
        self.component = Component("Traefik", self.command(), log=self.log).start()
        self.component.wait_ready(self._pinged, timeout=timeout, what="Traefik /ping")
        return self

    def _pinged(self) -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=2)
        try:
            connection.request("GET", "/ping")
            return connection.getresponse().status == 200
        finally:
            connection.close()

    def weights(self) -> list[dict[str, int]]:
        """The weights of every weighted (WRR) HTTP service Traefik runs now, from its API: [{service: weight}]."""
        response = httpx.get(f"http://127.0.0.1:{self.admin_port}/api/http/services", timeout=5)
        response.raise_for_status()
        return [
            {s["name"]: int(s.get("weight", 1)) for s in service["weighted"]["services"]}
            for service in response.json()
            if service.get("weighted")
        ]

    def check(self) -> None:
        if self.component is not None:
            self.component.check()

    def tail(self, lines: int = 25) -> str:
        return self.component.tail(lines) if self.component is not None else ""

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(grace=15)

    def __enter__(self) -> TraefikProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
