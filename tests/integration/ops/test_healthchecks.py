"""The Go tests of hack/healthchecks: Argo CD's Lua harness (gopher-lua v1.1.2, layeh.com/gopher-json) over
config/argocd's checks, kstatus Compute and Flux's CEL health checks over the same objects. Modules are cached under
~/.cache/croupier/go (CROUPIER_CACHE); go.sum pins them."""

from __future__ import annotations

import os
import shutil

import pytest
from integration.ops.tools import ROOT, cache_root, run

MODULE = ROOT / "hack" / "healthchecks"


@pytest.mark.timeout(1500)
def test_go_health_check_tests_pass() -> None:
    go = shutil.which("go")
    assert go, "Go is needed for hack/healthchecks (docs/development.md)"
    env = {
        **os.environ,
        "GOMODCACHE": str(cache_root() / "go" / "mod"),
        "GOFLAGS": "-mod=readonly",
        "GOTOOLCHAIN": "local",
    }
    done = run([go, "test", "-count=1", "-v", "./..."], cwd=MODULE, timeout=1400, env=env)
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-4000:]
    # Both harnesses ran cases (a silently empty run cannot pass).
    assert "--- PASS: TestArgoCDHealthChecks/" in done.stdout
    assert "--- PASS: TestKstatusCompute/" in done.stdout
    assert "--- PASS: TestHarnessLikeArgoCD" in done.stdout
    assert "--- PASS: TestFluxHealthCheckExprs/" in done.stdout
