"""Run ``croupier-modelserver`` as a child process (tests, the demo, the router's tests): free ports, a log file,
a bounded wait until GetModelStatus answers, SIGTERM then SIGKILL on stop (the devcluster's process harness)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import TracebackType

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

from croupier.devcluster.ports import free_port, free_ports
from croupier.devcluster.process import Component

__all__ = ["ModelServerProcess", "free_port"]


class ModelServerProcess:
    """One model server on ``host`` with fresh gRPC and REST ports; ``args`` are TF Serving flags."""

    def __init__(self, args: list[str], log: Path, *, host: str = "127.0.0.1") -> None:
        self.host = host
        # Picked together: two separate picks can return the same port (it was free both times).
        self.grpc_port, self.rest_port = free_ports(2, host)
        self.args = args
        self.log = log
        self.component: Component | None = None  # built at start: a subclass may change the ports or the command

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.component.process if self.component is not None else None

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "croupier.modelserver",
            f"--port={self.grpc_port}", f"--rest_api_port={self.rest_port}", f"--host={self.host}", *self.args,
        ]  # fmt: skip

    def start(self, *, ready_model: str, timeout: float = 180.0) -> ModelServerProcess:
        """Start and wait until GetModelStatus answers for ``ready_model`` (TF import and loads take seconds)."""
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        component = self.component = Component("the model server", self.command(), log=self.log, env=env).start()
        with grpc.insecure_channel(self.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = ready_model

            def answered() -> bool:
                stub.GetModelStatus(request, timeout=2)
                return True

            component.wait_ready(
                answered,
                timeout=timeout,
                what=f"the model server to answer GetModelStatus for {ready_model}",
                max_interval=0.2,
            )
        return self

    def tail(self, lines: int = 25) -> str:
        return self.component.tail(lines) if self.component is not None else ""

    def stop(self) -> None:
        if self.component is not None:
            self.component.stop(grace=20)

    def __enter__(self) -> ModelServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
