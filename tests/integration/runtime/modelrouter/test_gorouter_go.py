"""The Go tests of the compiled model router (runtime/gorouter): routing, table parsing and model_spec rewriting
against the Python router's vectors (tests/data/router-vectors.json), flag parsing, and the gRPC relay of HTTP/2
frames against grpc-go callers and model servers (flow control, deadlines, codes, keepalive, bad frames, shutdown).
Modules are cached under ~/.cache/croupier/go (CROUPIER_CACHE); go.sum pins them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support.modelrouting import router_command
from unit.runtime.modelrouter.test_router_cli import BAD_SETTINGS

ROOT = Path(__file__).resolve().parents[4]
MODULE = ROOT / "runtime" / "gorouter"


def _cache_root() -> Path:
    return Path(os.environ.get("CROUPIER_CACHE", Path.home() / ".cache" / "croupier"))


@pytest.mark.timeout(900)
def test_go_router_tests_pass() -> None:
    go = shutil.which("go")
    assert go, "Go is needed for runtime/gorouter (docs/development.md)"
    env = {
        **os.environ,
        "GOMODCACHE": str(_cache_root() / "go" / "mod"),
        "GOFLAGS": "-mod=readonly",
        "GOTOOLCHAIN": "local",
    }
    done = subprocess.run(
        [go, "test", "-count=1", "-v", "./..."],
        cwd=MODULE,
        capture_output=True,
        text=True,
        timeout=850,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-4000:]
    # The vectors ran (a silently empty run cannot pass).
    for name in (
        "TestUnitPointsMatchThePythonRouter",
        "TestRoutesMatchThePythonRouter",
        "TestModelSpecsReadAndWritten",
        "TestRelayRoutesARequestNamingOnlyTheModelAndKeepsItsOtherBytes",
        "TestRelayCarriesLargeMessagesBothWays",
        "TestRelayBlackholedModelServerDoesNotStallCallers",
    ):
        assert f"--- PASS: {name}" in done.stdout, name


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        *BAD_SETTINGS,  # the flags both routers take; the rest only the compiled one takes as flags
        (["--upstream-timeout-seconds=0"], "--upstream-timeout-seconds"),
        (["--max-body-bytes=100"], "--max-body-bytes"),
        (["--no-such-flag"], "--no-such-flag"),
    ],
)
def test_the_compiled_router_refuses_bad_settings_with_exit_2(argv: list[str], named: str) -> None:
    """As `croupier-runtime router` does (tests/unit/runtime/modelrouter/test_router_cli.py): exit 2, the flag named."""
    done = subprocess.run([*router_command("go"), *argv], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2 and named in done.stderr, (done.returncode, done.stderr)


def test_the_compiled_router_reads_its_environment() -> None:
    env = {**os.environ, "CROUPIER_ROUTER_REST_PORT": "70000"}
    done = subprocess.run(router_command("go"), capture_output=True, text=True, timeout=60, check=False, env=env)
    assert done.returncode == 2 and "CROUPIER_ROUTER_REST_PORT" in done.stderr, done.stderr
