"""The Go tests of the compiled model router (runtime/gorouter): routing, table parsing and model_spec rewriting
against the Python router's vectors (tests/data/router-vectors.json), flag parsing. Modules are cached under
~/.cache/croupier/go (CROUPIER_CACHE); go.sum pins them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    ):
        assert f"--- PASS: {name}" in done.stdout, name
