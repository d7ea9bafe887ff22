"""Where the control-plane binaries come from.

Either a directory named by ``CROUPIER_CONTROLPLANE_BIN`` (a CI cache, a shared install), or the cached build of the
Go wrapper module in ``hack/controlplane``: ``build.sh`` returns at once when the pinned versions are already built.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

BIN_DIR_ENV = "CROUPIER_CONTROLPLANE_BIN"
TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kwok")
_BUILD_SCRIPT = Path("hack") / "controlplane" / "build.sh"


class BinariesNotFoundError(RuntimeError):
    """The control-plane binaries are missing and could not be built."""


@dataclass(frozen=True)
class Binaries:
    """A directory holding every tool of the control plane."""

    directory: Path

    def path(self, tool: str) -> Path:
        if tool not in TOOLS:
            raise KeyError(f"unknown control-plane tool {tool!r}; known: {', '.join(TOOLS)}")
        return self.directory / tool

    def missing(self) -> list[str]:
        return [tool for tool in TOOLS if not os.access(self.directory / tool, os.X_OK)]


def repo_root() -> Path:
    """The checkout holding ``hack/controlplane``: above this package first, then the working directory upwards."""
    here = Path(__file__).resolve().parent
    for candidate in (*here.parents, Path.cwd(), *Path.cwd().parents):
        if (candidate / _BUILD_SCRIPT).is_file():
            return candidate
    raise BinariesNotFoundError(
        f"cannot find {_BUILD_SCRIPT} above {here} or {Path.cwd()}; set {BIN_DIR_ENV} to a directory "
        f"holding {', '.join(TOOLS)}"
    )


def pinned_kubernetes_version() -> str:
    """The Kubernetes release pinned in ``hack/controlplane/go.mod`` (what the built apiserver reports)."""
    go_mod = (repo_root() / _BUILD_SCRIPT).with_name("go.mod").read_text()
    match = re.search(r"^\s*k8s\.io/kubernetes\s+(v\S+)", go_mod, re.MULTILINE)
    if match is None:
        raise BinariesNotFoundError("hack/controlplane/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def build_binaries() -> Binaries:
    """Run ``build.sh`` (seconds when cached, 10-25 minutes cold) and return the directory it prints.

    The script's progress goes to our stderr so a cold build is visibly busy rather than hung.
    """
    script = repo_root() / _BUILD_SCRIPT
    try:
        result = subprocess.run(["bash", str(script)], stdout=subprocess.PIPE, text=True, check=True)
    except subprocess.CalledProcessError as error:
        raise BinariesNotFoundError(f"{script} failed with exit code {error.returncode}") from error
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise BinariesNotFoundError(f"{script} printed no bin directory")
    binaries = Binaries(Path(lines[-1]))
    if missing := binaries.missing():
        raise BinariesNotFoundError(f"{script} reported {binaries.directory} but it lacks {', '.join(missing)}")
    return binaries


def locate_binaries() -> Binaries:
    """``$CROUPIER_CONTROLPLANE_BIN`` when set (it must be complete), else the cached build."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        binaries = Binaries(Path(override).expanduser().resolve())
        if missing := binaries.missing():
            raise BinariesNotFoundError(f"{BIN_DIR_ENV}={override} lacks executables: {', '.join(missing)}")
        return binaries
    return build_binaries()
