"""Build-once tools of the ops tests: Helm (hack/helm/build.sh) and promtool (hack/prometheus/install.sh), cached
under ~/.cache/croupier (CROUPIER_CACHE)."""

from __future__ import annotations

import os
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
