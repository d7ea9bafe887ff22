"""The unit marker comes from tests/conftest.py (this module sets none of its own); servers, processes and
threads are refused."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading

import pytest


def test_tests_under_tests_unit_are_marked_unit(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("unit") is not None
    assert request.node.get_closest_marker("integration") is None


def test_a_unit_test_cannot_listen_on_a_socket() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        with pytest.raises(AssertionError, match="move it to tests/integration"):
            server.listen()


def test_a_unit_test_cannot_start_an_asyncio_server() -> None:
    async def serve() -> None:
        await asyncio.start_server(lambda reader, writer: None, "127.0.0.1", 0)

    with pytest.raises(AssertionError, match="move it to tests/integration"):
        asyncio.run(serve())


def test_a_unit_test_cannot_start_a_process() -> None:
    with pytest.raises(AssertionError, match="move it to tests/integration"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


def test_a_unit_test_cannot_start_a_thread() -> None:
    with pytest.raises(AssertionError, match="move it to tests/integration"):
        threading.Thread(target=lambda: None).start()
