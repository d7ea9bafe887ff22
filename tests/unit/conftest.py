"""Every test under tests/unit is marked ``unit`` (by tests/conftest.py), and a
unit test that starts a server, a process or a thread fails: those belong in tests/integration."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from typing import Any

import pytest


class ServerInUnitTest(AssertionError):
    pass


class ProcessInUnitTest(AssertionError):
    pass


class ThreadInUnitTest(AssertionError):
    pass


@pytest.fixture(autouse=True)
def no_servers_processes_or_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail a unit test that listens on a socket (uvicorn, asyncio servers), spawns a process or starts a thread."""

    def listen(self: socket.socket, *args: Any) -> None:
        raise ServerInUnitTest("a unit test started a server; move it to tests/integration")

    def spawn(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> None:
        raise ProcessInUnitTest(f"a unit test started a process ({self.args!r}); move it to tests/integration")

    def start(self: threading.Thread) -> None:
        raise ThreadInUnitTest(f"a unit test started a thread ({self.name}); move it to tests/integration")

    monkeypatch.setattr(socket.socket, "listen", listen)
    monkeypatch.setattr(threading.Thread, "start", start)
    monkeypatch.setattr(subprocess.Popen, "_execute_child", spawn)
    yield
