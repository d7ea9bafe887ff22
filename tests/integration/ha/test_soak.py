"""The soak script's short mode (benchmarks/soak.py --short) against the session's control plane: policies, an
Experiment and a ModelDeployment on the local model server under traffic for under a minute; no failed request, no
child apply during traffic, no write once settled, no error line in any log. With `--auth`, as the install's
default has it: every runtime refuses a request without its token and one with another scope's, the traffic carries
tokens from each object's Secret, and no log contains a token. The ten-minute run and its results are in
docs/benchmarks/soak.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from croupier.devcluster.kubectl import Kubectl

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "soak.py"


def soak_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("croupier_soak", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(900)
def test_soak_short_mode_stays_quiet_and_clean(kubectl: Kubectl, kubeconfig: Path, tmp_path: Path) -> None:
    pytest.importorskip("croupier.modelserver", reason="the local model server (croupier-devtools) is not installed")
    soak = soak_module()
    args = soak.parse(["--short", "--auth"])
    results = soak.run(args, kubeconfig, kubectl, tmp_path)
    print("\n" + soak.table(results, args))
    assert soak.failed(results) == []
    assert results["auth"]["ok"] and set(results["auth"]["refused"]) == {"policy-0", "policy-1", "checkout"}
    assert results["auth"]["logs_with_a_token"] == []
    assert set(results["requests"]) == {"policy policy-0", "policy policy-1", "experiment", "model"}
    assert min(results["requests"].values()) > 50
    assert results["traffic_status_writes"] > 0, "the statistics under traffic never reached status"
