"""The kind cluster the e2e tests run against, and the tools it needs (see conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = os.environ.get("KIND_CLUSTER", "croupier")


def missing_tools() -> list[str]:
    """What keeps the e2e tests from running here, in words (empty when everything is there)."""
    missing = [f"`{tool}` on PATH" for tool in ("docker", "kind", "kubectl", "make") if shutil.which(tool) is None]
    if shutil.which("docker") is not None:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=60, check=False)
        if info.returncode != 0:
            missing.append("a reachable Docker daemon (`docker info` failed)")
    return missing


@dataclass(frozen=True)
class KindCluster:
    name: str
    kubeconfig: Path

    def kubectl(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=True,
        )


def make(*targets: str, kubeconfig: Path | None = None, timeout: float = 1800) -> None:
    env = {**os.environ, "KIND_CLUSTER": CLUSTER}
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)  # hack/kind.sh deploys into this cluster, whatever the current context
    subprocess.run(["make", "-C", str(ROOT), *targets, f"KIND_CLUSTER={CLUSTER}"], env=env, check=True, timeout=timeout)
