"""Build-once tools of the ops tests: Helm (hack/helm/build.sh) and promtool (hack/prometheus/install.sh), cached
under ~/.cache/croupier (CROUPIER_CACHE)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def cache_root() -> Path:
    return Path(os.environ.get("CROUPIER_CACHE", Path.home() / ".cache" / "croupier"))


def bin_dir(script: str, timeout: float = 1200) -> Path:
    """Run an install script that prints its bin folder (builds or unpacks once, then returns at once)."""
    done = subprocess.run(
        ["bash", str(ROOT / script)], capture_output=True, text=True, timeout=timeout, check=False, cwd=ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


def run(
    argv: list[str | Path], *, cwd: Path = ROOT, timeout: float = 120, **kwargs: object
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False, cwd=cwd, **kwargs
    )  # type: ignore[call-overload]


# The Prometheus Operator's CRDs (ServiceMonitor, PodMonitor, PrometheusRule) ship in its Go module, as
# example/prometheus-operator-crd/; the chart's monitoring objects are dry-run against them.
PROMETHEUS_OPERATOR = "github.com/prometheus-operator/prometheus-operator@v0.85.0"
MONITORING_CRDS = ("servicemonitors", "podmonitors", "prometheusrules")


def monitoring_crds() -> list[Path]:
    """Download (once, into the Go module cache under CROUPIER_CACHE) and list the three monitoring CRDs."""
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("Go is needed to fetch the Prometheus Operator's CRDs from its module")
    env = {**os.environ, "GOMODCACHE": str(cache_root() / "go" / "mod"), "GOFLAGS": "-mod=mod"}
    done = run([go, "mod", "download", "-json", PROMETHEUS_OPERATOR], cwd=cache_root(), timeout=600, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {PROMETHEUS_OPERATOR} failed:\n{done.stdout}{done.stderr}")
    folder = Path(json.loads(done.stdout)["Dir"]) / "example" / "prometheus-operator-crd"
    return [folder / f"monitoring.coreos.com_{name}.yaml" for name in MONITORING_CRDS]
