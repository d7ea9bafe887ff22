"""Command lines of the control-plane components: pure functions of binaries, paths and ports.

Everything listens on 127.0.0.1 or nowhere: kube-controller-manager and kube-scheduler get ``--secure-port=0`` (their
health is proven through the API instead), kwok serves no kubelet API (no ``--server-address``/``--node-port``), etcd
has no metrics listener.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .binaries import Binaries
from .layout import Layout
from .pki import Pki

SERVICE_CIDR = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"
POD_CIDR = "10.244.0.1/16"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
KWOK_NODE_ANNOTATION_VALUE = "fake"

# Everything kube-controller-manager runs by default except what needs a cloud provider or node CIDR allocation;
# those are no-ops here anyway, and naming them keeps their warnings out of the log.
CONTROLLERS = ",".join(
    [
        "*",
        "-node-ipam-controller",
        "-service-lb-controller",
        "-node-route-controller",
        "-cloud-node-lifecycle-controller",
    ]
)


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client}"

    @property
    def apiserver_url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver}"


def etcd(binaries: Binaries, layout: Layout, ports: Ports) -> list[str]:
    peer = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binaries.path("etcd")),
        "--name=default",
        f"--data-dir={layout.etcd_data}",
        f"--listen-client-urls={ports.etcd_url}",
        f"--advertise-client-urls={ports.etcd_url}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=default={peer}",
        "--initial-cluster-state=new",
        # A test cluster is thrown away: skipping fsync makes every write (and the apiserver) several times faster.
        "--unsafe-no-fsync",
        "--quota-backend-bytes=2147483648",
        "--log-level=warn",
    ]


def kube_apiserver(
    binaries: Binaries, layout: Layout, ports: Ports, pki: Pki, audit_policy: Path | None = None
) -> list[str]:
    """With ``audit_policy``, the API server also writes an audit log (``layout.audit_log``, one JSON event a line,
    written before the request is answered); without, no audit flags (the default)."""
    audit = [] if audit_policy is None else [
        f"--audit-policy-file={audit_policy}",
        f"--audit-log-path={layout.audit_log}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
    ]  # fmt: skip
    return [
        str(binaries.path("kube-apiserver")),
        f"--etcd-servers={ports.etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={ports.apiserver}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--service-account-issuer={ports.apiserver_url}",
        f"--service-account-key-file={pki.service_account_key}",
        f"--service-account-signing-key-file={pki.service_account_key}",
        f"--token-auth-file={layout.token_file}",
        "--authorization-mode=RBAC",
        "--allow-privileged=true",
        "--profiling=false",
        *audit,
    ]


def kube_controller_manager(binaries: Binaries, layout: Layout, pki: Pki) -> list[str]:
    return [
        str(binaries.path("kube-controller-manager")),
        f"--kubeconfig={layout.component_kubeconfig('kube-controller-manager')}",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
        f"--controllers={CONTROLLERS}",
        f"--service-account-private-key-file={pki.service_account_key}",
        f"--root-ca-file={pki.ca_cert}",
        "--cluster-name=croupier-dev",
        "--profiling=false",
    ]


def kube_scheduler(binaries: Binaries, layout: Layout) -> list[str]:
    return [
        str(binaries.path("kube-scheduler")),
        f"--kubeconfig={layout.component_kubeconfig('kube-scheduler')}",
        "--bind-address=127.0.0.1",
        "--secure-port=0",
        "--leader-elect=false",
        "--profiling=false",
    ]


def kwok(binaries: Binaries, layout: Layout) -> list[str]:
    return [
        str(binaries.path("kwok")),
        f"--kubeconfig={layout.component_kubeconfig('kwok')}",
        "--manage-all-nodes=false",
        f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}={KWOK_NODE_ANNOTATION_VALUE}",
        f"--cidr={POD_CIDR}",
        "--node-lease-duration-seconds=40",
    ]
