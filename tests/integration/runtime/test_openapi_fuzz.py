"""Fuzz the decision API against the OpenAPI document it serves: no input may cause a 5xx or break the schema.

The runtime is a real `croupier-runtime` process on 127.0.0.1 (uvicorn with the runtime's connection handling, as in
production); schemathesis fetches its /openapi.json and generates valid and invalid requests for every operation.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .conftest import RuntimeProcess, write_policy

CONTEXTUAL = {
    "algorithm": {"type": "LinUCB"},
    "context": {"features": ["level", "spend"]},
    "reward": {"type": "Binary", "attributionWindowSeconds": 60},
}


@pytest.fixture(scope="module")
def live_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("fuzz")
    runtime = RuntimeProcess(write_policy(directory / "policy.yaml", **CONTEXTUAL), directory / "state")
    # start() raises (with the runtime's log) when the process exits or is not ready in time: no fuzzing of nothing.
    runtime.start(timeout=30)
    yield runtime.url
    runtime.stop()


def test_a_runtime_that_never_becomes_ready_fails_the_fixture_loudly(tmp_path: Path) -> None:
    broken = tmp_path / "policy.yaml"
    broken.write_text("kind: NotADecisionPolicy\n")
    runtime = RuntimeProcess(broken, tmp_path / "state")
    with pytest.raises(RuntimeError, match="the runtime exited with 2"):
        runtime.start(timeout=30)
    silent = RuntimeProcess(write_policy(tmp_path / "ok.yaml"), tmp_path / "state")
    silent.log.touch()
    silent.process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # alive, never listens
    try:
        with pytest.raises(TimeoutError, match="not ready within"):
            silent.wait_ready(timeout=0.5)
    finally:
        silent.kill()


def _operations(base: str) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(live_runtime: str, mode: GenerationMode) -> None:
    # Driven by hand (not schemathesis' pytest plugin, which reaches into pytest internals that pytest 9 removed).
    operations = _operations(live_runtime)
    assert {op.path for op in operations} >= {"/v1/decide", "/v1/rank", "/v1/rewards", "/v1/stats"}
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
