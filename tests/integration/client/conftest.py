"""Fixtures for the SDK's tests against real runtime processes: a policy runtime, an experiment runtime, and a small
HTTP relay in front of a runtime that can swallow answers (the runtime did the work, the client never hears back),
the one fault a real runtime cannot be asked to show."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from ..runtime.conftest import RuntimeProcess, runtime_process, server_port, write_policy
from ..runtime.experiments.conftest import ExperimentProcess, experiment_process, write_experiment

START_TIMEOUT = 120.0
"""Seconds a runtime process may take to become ready (generous: the shared test machines run loaded)."""

__all__ = [
    "START_TIMEOUT",
    "ExperimentProcess",
    "Relay",
    "RuntimeProcess",
    "experiment_process",
    "runtime_process",
    "server_port",
    "write_experiment",
    "write_policy",
]


class Relay:
    """Forwards every request to ``upstream``; while ``drop[path] > 0`` it forwards the request, waits for the
    runtime's answer, then closes the connection without answering (and decrements the count)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.drop: dict[str, int] = {}
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()
        relay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
                answer = httpx.request(self.command, relay.upstream + self.path, content=body, headers=headers)
                with relay.lock:
                    relay.seen[self.path] = relay.seen.get(self.path, 0) + 1
                    dropping = relay.drop.get(self.path, 0) > 0
                    if dropping:
                        relay.drop[self.path] -= 1
                if dropping:
                    self.close_connection = True
                    return
                self.send_response(answer.status_code)
                self.send_header("content-type", answer.headers.get("content-type", "application/json"))
                self.send_header("content-length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Relay:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def policy_runtime(tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]) -> RuntimeProcess:
    """A started `croupier-runtime` serving a 3-arm ThompsonSampling policy (arms blue, green, red)."""
    return runtime_process(write_policy(tmp_path / "policy.yaml")).start(START_TIMEOUT)


@pytest.fixture
def relay(policy_runtime: RuntimeProcess) -> Iterator[Relay]:
    with Relay(policy_runtime.url) as running:
        yield running


@pytest.fixture
def experiment_file(tmp_path: Path) -> Path:
    return write_experiment(tmp_path / "experiment.yaml")


@pytest.fixture
def experiment_runtime(
    experiment_file: Path, experiment_process: Callable[..., ExperimentProcess]
) -> ExperimentProcess:
    return experiment_process(experiment_file).start(START_TIMEOUT)
