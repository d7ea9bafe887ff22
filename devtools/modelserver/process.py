"""Run ``croupier-modelserver`` as a child process (tests, the demo, the router's tests): free ports, a log file,
a bounded wait until GetModelStatus answers, SIGTERM then SIGKILL on stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import grpc
from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class ModelServerProcess:
    """One model server on ``host`` with fresh gRPC and REST ports; ``args`` are TF Serving flags."""

    def __init__(self, args: list[str], log: Path, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.grpc_port = free_port(host)
        self.rest_port = free_port(host)
        self.args = args
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

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
        self.log.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command(), stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            request = get_model_status_pb2.GetModelStatusRequest()
            request.model_spec.name = ready_model
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"the model server exited with {self.process.returncode}: {self.tail()}")
                try:
                    stub.GetModelStatus(request, timeout=2)
                    return self
                except grpc.RpcError:
                    time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the model server did not answer within {timeout} s: {self.tail()}")

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def __enter__(self) -> ModelServerProcess:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
