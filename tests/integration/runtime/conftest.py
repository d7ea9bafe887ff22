"""Fixtures for runtime integration tests: a real `redis-server`, runtime processes (`croupier-runtime`), and a runtime
started inside the test process (its SQLite writer thread included) behind an in-process ASGI client.

Everything binds 127.0.0.1 on free ports. `redis-server` comes from Debian (`apt-get install redis-server`; CI's
bootstrap installs it); without the binary the Redis tests are skipped with that reason.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policy_file import ServedPolicy
from croupier.runtime.settings import RuntimeSettings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_port() -> int:
    """A free port for a server that clients reconnect to (Redis), below the ephemeral range.

    A port from the ephemeral range can be taken while its server is down by a client's own reconnect attempt: Linux
    lets a connect() to a local port with no listener pick that very port as its source and connect to itself. The
    restarted server then cannot bind. Real deployments never hit this (Redis listens on 6379)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(max(1024, low - 12000), low), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def start_redis(port: int, workdir: Path) -> subprocess.Popen[bytes]:
    """A real redis-server on 127.0.0.1:port (no persistence); returns once it answers PING."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no", "--dir"]
    process = subprocess.Popen([*argv, str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                conn.sendall(b"PING\r\n")
                if conn.recv(16).startswith(b"+PONG"):
                    return process
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise
            time.sleep(0.05)


def write_policy(path: Path, name: str = "banner", **spec: Any) -> Path:
    body: dict[str, Any] = {
        "arms": [{"name": "blue"}, {"name": "green"}, {"name": "red"}],
        "algorithm": {"type": "ThompsonSampling"},
        "reward": {"type": "Binary", "attributionWindowSeconds": 3600},
    }
    body.update(spec)
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": "games", "generation": 1},
        "spec": body,
    }
    path.write_text(yaml.safe_dump(document))
    return path


class RuntimeProcess:
    """One `croupier-runtime` process serving a policy file on 127.0.0.1."""

    def __init__(
        self, policy: Path, state_dir: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None
    ):
        self.policy = policy
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "CROUPIER_RUNTIME_LOG_FORMAT": "json", **(env or {})}
        self.args = args or []
        self.process: subprocess.Popen[bytes] | None = None
        self.log = state_dir / f"runtime-{self.port}.log"

    def start(self, timeout: float = 30.0) -> RuntimeProcess:
        return self.launch().wait_ready(timeout)

    def launch(self) -> RuntimeProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "croupier.runtime.cli",
            "--policy", str(self.policy), "--host", "127.0.0.1", "--port", str(self.port),
            "--state-dir", str(self.state_dir), *self.args,
        ]  # fmt: skip
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    def wait_ready(self, timeout: float = 30.0) -> RuntimeProcess:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the runtime exited with {self.process.returncode}: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"the runtime was not ready within {timeout} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, nothing is flushed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def runtime_process(tmp_path: Path) -> Iterator[Callable[..., RuntimeProcess]]:
    started: list[RuntimeProcess] = []

    def make(policy: Path, state_dir: Path | None = None, **kwargs: Any) -> RuntimeProcess:
        process = RuntimeProcess(policy, state_dir or tmp_path / f"state-{len(started)}", **kwargs)
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = server_port()
    process = start_redis(port, tmp_path_factory.mktemp("redis"))
    yield f"redis://127.0.0.1:{port}/0"
    process.terminate()
    process.wait(timeout=10)


@asynccontextmanager
async def running(
    served: ServedPolicy, state_dir: Path, **settings: Any
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """A started runtime (real engine, real SQLite) and an HTTP client speaking to its ASGI app in process."""
    options: dict[str, Any] = {"state_dir": state_dir, "seed": 7, "sweep_interval_seconds": 0.05}
    options.update(settings)
    runtime = Runtime(RuntimeSettings(**options), served, metrics=RuntimeMetrics())
    await runtime.start()
    transport = httpx.ASGITransport(app=HttpApp(runtime))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
            yield runtime, client
    finally:
        await runtime.stop()


@pytest.fixture
def run() -> Callable[[Any], Any]:
    """Run a coroutine to completion (the suite has no asyncio plugin)."""
    return asyncio.run
