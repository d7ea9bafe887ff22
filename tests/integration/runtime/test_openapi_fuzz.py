"""Fuzz the decision API against the OpenAPI document it serves: no input may cause a 5xx or break the schema.

The runtime runs in a thread of the test process on 127.0.0.1 (uvicorn, as in production); schemathesis fetches its
/openapi.json and generates valid and invalid requests for every operation.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.settings import RuntimeSettings

from .conftest import CONTEXTUAL, served_policy

pytestmark = pytest.mark.unit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    state_dir: Path = tmp_path_factory.mktemp("fuzz-state")
    served = served_policy(**{**CONTEXTUAL, "reward": {"type": "Binary", "attributionWindowSeconds": 60}})
    runtime = Runtime(RuntimeSettings(state_dir=state_dir, seed=1), served, metrics=RuntimeMetrics())
    port = _free_port()
    config = uvicorn.Config(
        HttpApp(runtime), host="127.0.0.1", port=port, loop="asyncio", lifespan="on", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=0.5).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.05)
    yield base
    server.should_exit = True
    thread.join(timeout=10)


def _operations(base: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(live_runtime: str, mode: GenerationMode) -> None:
    # Driven by hand (not schemathesis' pytest plugin, which reaches into pytest internals that pytest 9 removed).
    operations = _operations(live_runtime)
    assert {op.path for op in operations} >= {"/v1/decide", "/v1/rewards", "/v1/stats"}
    for operation in operations:
        if operation.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
            continue  # no parameters to break

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=live_runtime, timeout=10)
            assert response.status_code < 500, response.text

        check()


def test_fuzzing_left_the_runtime_consistent(live_runtime: str) -> None:
    stats = httpx.get(f"{live_runtime}/v1/stats").json()
    assert stats["totals"]["decisions"] == sum(arm["pulls"] for arm in stats["arms"])
    assert httpx.get(f"{live_runtime}/readyz").status_code == 200
