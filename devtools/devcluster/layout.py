"""Where a control plane keeps its files inside its work directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def kubeconfig(self) -> Path:
        """The admin kubeconfig, for people, tests, kubectl and kopf."""
        return self.root / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.root / "pki"

    @property
    def token_file(self) -> Path:
        return self.root / "pki" / "tokens.csv"

    @property
    def etcd_data(self) -> Path:
        return self.root / "etcd"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def kwok_workdir(self) -> Path:
        return self.root / "kwok"

    def component_kubeconfig(self, component: str) -> Path:
        return self.root / "kubeconfigs" / f"{component}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    @property
    def audit_log(self) -> Path:
        """The kube-apiserver's audit log (JSON lines), written only when the cluster has an audit policy."""
        return self.logs / "audit.log"

    def fresh_state_dirs(self) -> tuple[Path, ...]:
        """Directories that hold one cluster's state; cleared before a new cluster starts in the same root."""
        return (self.pki, self.etcd_data, self.kwok_workdir, self.root / "kubeconfigs")
