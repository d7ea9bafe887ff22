"""Every test under tests/unit is marked ``unit`` here (a ``pytestmark`` in a conftest is ignored by pytest), and a
unit test that starts a server, a process or a thread fails: those belong in tests/integration."""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A conftest's collection hook sees the whole session's items: mark only ours.
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.unit)


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
