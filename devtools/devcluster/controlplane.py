"""A real, local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok.

No containers and no mocks: the same binaries a cluster runs, on loopback ports, with one fake Node that kwok keeps
Ready, so Deployments roll out, garbage collection follows ownerReferences and namespaces finish terminating.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

from . import flags
from .binaries import Binaries, locate_binaries
from .guardian import Guardian
from .kubeconfig import write_kubeconfig
from .layout import Layout
from .node import FakeNode
from .pki import Pki, new_token, write_pki
from .ports import free_ports
from .process import Component, ComponentFailedError
from .rest import Rest
from .waiting import wait_for

log = logging.getLogger(__name__)

ADMIN_USER = "croupier-admin"
# Every identity is in system:masters: the components' least-privilege roles need per-controller service-account
# credentials, which would add moving parts without making the operator's tests any more real.
COMPONENT_USERS = {
    "kube-controller-manager": "system:kube-controller-manager",
    "kube-scheduler": "system:kube-scheduler",
    "kwok": "system:kwok-controller",
}
_PORT_ATTEMPTS = 3
_STOP_GRACE = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane did not come up; the message names the work directory that keeps the logs."""


@dataclass(frozen=True)
class _Identity:
    user: str
    token: str


class ControlPlane:
    """Start with :meth:`start` (or ``with ControlPlane() as cp:``), stop with :meth:`stop`.

    ``work_dir``: where state, logs and the kubeconfig go. Default: a new temporary directory, removed on stop unless
    ``keep``. A given directory is never removed: state from an earlier cluster is cleared on start, logs are appended
    to, and on stop everything but the logs is removed unless ``keep``. ``audit_policy``: an audit policy file for the
    kube-apiserver, which then writes ``audit_log`` (off by default).
    """

    def __init__(
        self,
        *,
        binaries: Binaries | None = None,
        work_dir: Path | None = None,
        keep: bool = False,
        node: FakeNode | None = None,
        start_timeout: float = 180.0,
        audit_policy: Path | None = None,
    ) -> None:
        self._binaries = binaries
        self._given_work_dir = work_dir
        self.keep = keep
        self.node = node or FakeNode()
        self.start_timeout = start_timeout
        self.audit_policy = audit_policy
        self._layout: Layout | None = None
        self._ports: flags.Ports | None = None
        self._pki: Pki | None = None
        self._admin: _Identity | None = None
        self._components: list[Component] = []
        self._guardian: Guardian | None = None
        self.startup_seconds: float | None = None

    # -- what callers use -------------------------------------------------------------------------------------------

    @property
    def binaries(self) -> Binaries:
        if self._binaries is None:
            raise ControlPlaneError("control plane not started")
        return self._binaries

    @property
    def layout(self) -> Layout:
        if self._layout is None:
            raise ControlPlaneError("control plane not started")
        return self._layout

    @property
    def work_dir(self) -> Path:
        return self.layout.root

    @property
    def audit_log(self) -> Path | None:
        """The API server's audit log (JSON lines) when started with ``audit_policy``, else None."""
        return None if self.audit_policy is None else self.layout.audit_log

    @property
    def kubeconfig(self) -> Path:
        return self.layout.kubeconfig

    @property
    def server(self) -> str:
        if self._ports is None:
            raise ControlPlaneError("control plane not started")
        return self._ports.apiserver_url

    @property
    def token(self) -> str:
        if self._admin is None:
            raise ControlPlaneError("control plane not started")
        return self._admin.token

    @property
    def ca_cert(self) -> Path:
        if self._pki is None:
            raise ControlPlaneError("control plane not started")
        return self._pki.ca_cert

    @property
    def running(self) -> bool:
        return bool(self._components) and all(component.running() for component in self._components)

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for subprocesses (kubectl, kopf): ``KUBECONFIG`` set, the built kubectl first on ``PATH``."""
        env = dict(os.environ if base is None else base)
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["PATH"] = os.pathsep.join([str(self.binaries.directory), env.get("PATH", "")])
        return env

    def check(self) -> None:
        """Raise :class:`ComponentFailedError` if any component has exited."""
        for component in self._components:
            component.check()

    def pids(self) -> dict[str, int]:
        return {c.name: c.pid for c in self._components if c.pid is not None}

    # -- lifecycle --------------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._components:
            raise ControlPlaneError("control plane already started")
        began = time.monotonic()
        if self._binaries is None:
            self._binaries = locate_binaries()
        if self._given_work_dir is not None:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            root = self._given_work_dir.resolve()
        else:
            root = Path(tempfile.mkdtemp(prefix="croupier-cp-"))
        self._layout = Layout(root)
        booted = time.monotonic()
        for attempt in range(1, _PORT_ATTEMPTS + 1):
            try:
                self._start_once(deadline=time.monotonic() + self.start_timeout)
                break
            except ComponentFailedError as error:
                self._stop_components()
                if attempt < _PORT_ATTEMPTS and "address already in use" in error.log_tail:
                    log.warning("%s lost its port to another process; retrying with new ports", error.name)
                    continue
                raise ControlPlaneError(f"control plane failed to start; logs in {self.layout.logs}\n{error}") from None
            except Exception as error:
                self._stop_components()
                raise ControlPlaneError(
                    f"control plane failed to start: {error}; logs in {self.layout.logs}"
                ) from error
            except BaseException:  # KeyboardInterrupt, a signal handler's exception: no half-started cluster left
                self._stop_components()
                raise
        self.startup_seconds = time.monotonic() - booted
        log.info(
            "control plane ready in %.1fs (binaries located in %.1fs): %s, kubeconfig %s",
            self.startup_seconds,
            booted - began,
            self.server,
            self.kubeconfig,
        )

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL after a grace period) and remove what ``keep`` does not keep.

        A temporary work dir goes entirely; in a given work dir only the logs stay (the kubeconfig goes too, so that
        nothing points at a server that is gone).
        """
        self._stop_components()
        if self._layout is None or self.keep:
            return
        if self._given_work_dir is None:
            shutil.rmtree(self._layout.root, ignore_errors=True)
            return
        for directory in self._layout.fresh_state_dirs():
            shutil.rmtree(directory, ignore_errors=True)
        self._layout.kubeconfig.unlink(missing_ok=True)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- outages (tests of what survives a control-plane restart) ----------------------------------------------------

    RESTARTABLE = ("etcd", "kube-apiserver")

    def stop_component(self, name: str, *, kill: bool = False) -> None:
        """Stop etcd or the kube-apiserver of a running cluster (SIGTERM, or SIGKILL with ``kill``) and wait for it.

        The rest keeps running and sees the outage as clients do; :meth:`start_component` brings it back on the same
        ports, flags and data dir.
        """
        component = self._component(name)
        if kill and component.running():
            assert component.pid is not None
            os.kill(component.pid, signal.SIGKILL)
        component.stop(_STOP_GRACE)

    def start_component(self, name: str, timeout: float = 120.0) -> None:
        """Start a component stopped by :meth:`stop_component` again and wait until it is healthy (etcd ``/health``,
        the API server ``/readyz``)."""
        stopped = self._component(name)
        if stopped.running():
            raise ControlPlaneError(f"{name} is running")
        again = Component(name, stopped.argv, log=stopped.log, cwd=stopped.cwd, env=stopped.env)
        again.start()
        self._components[self._components.index(stopped)] = again
        assert again.pid is not None
        if self._guardian is not None:
            self._guardian.watch(again.pid)
        if self._ports is None or self._admin is None or self._pki is None:
            raise ControlPlaneError("control plane not started")
        if name == "etcd":
            url = self._ports.etcd_url
            wait_for(lambda: _etcd_healthy(url), timeout=timeout, what="etcd /health", on_tick=again.check)
            return
        with Rest(self._ports.apiserver_url, token=self._admin.token, ca_cert=self._pki.ca_cert) as rest:
            wait_for(
                lambda: rest.get("/readyz").status_code == 200,
                timeout=timeout,
                what="kube-apiserver /readyz",
                on_tick=again.check,
            )

    def restart_component(self, name: str, *, kill: bool = False, timeout: float = 120.0) -> None:
        self.stop_component(name, kill=kill)
        self.start_component(name, timeout=timeout)

    def _component(self, name: str) -> Component:
        if name not in self.RESTARTABLE:
            raise ControlPlaneError(f"only {', '.join(self.RESTARTABLE)} can be restarted, not {name!r}")
        for component in self._components:
            if component.name == name:
                return component
        raise ControlPlaneError("control plane not started")

    # -- internals --------------------------------------------------------------------------------------------------

    def _start_once(self, deadline: float) -> None:
        layout = self.layout
        binaries = self.binaries
        for directory in layout.fresh_state_dirs():
            shutil.rmtree(directory, ignore_errors=True)
        layout.logs.mkdir(parents=True, exist_ok=True)
        layout.kwok_workdir.mkdir(parents=True, exist_ok=True)
        # etcd needs its data dir private or it warns and fixes the mode itself.
        layout.etcd_data.mkdir(mode=0o700, parents=True)

        ports = self._ports = flags.Ports(*free_ports(3))
        pki = self._pki = write_pki(layout.pki, [flags.KUBERNETES_SERVICE_IP])
        self._admin = _Identity(ADMIN_USER, new_token())
        identities = {name: _Identity(user, new_token()) for name, user in COMPONENT_USERS.items()}
        lines = [f'{i.token},{i.user},{i.user},"system:masters"' for i in (self._admin, *identities.values())]
        layout.token_file.write_text("\n".join(lines) + "\n")
        layout.token_file.chmod(0o600)
        write_kubeconfig(
            layout.kubeconfig, server=ports.apiserver_url, ca_cert=pki.ca_cert, user=ADMIN_USER, token=self._admin.token
        )
        for name, identity in identities.items():
            write_kubeconfig(
                layout.component_kubeconfig(name),
                server=ports.apiserver_url,
                ca_cert=pki.ca_cert,
                user=identity.user,
                token=identity.token,
            )

        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        guardian = self._guardian = Guardian(layout.log("guardian"))

        def component(name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> Component:
            started = Component(name, argv, log=layout.log(name), cwd=layout.root, env={**env, **(extra_env or {})})
            started.start()
            self._components.append(started)
            assert started.pid is not None
            guardian.watch(started.pid)
            return started

        def remaining() -> float:
            return max(deadline - time.monotonic(), 1.0)

        t0 = time.monotonic()
        component("etcd", flags.etcd(binaries, layout, ports))
        wait_for(lambda: _etcd_healthy(ports.etcd_url), timeout=remaining(), what="etcd /health", on_tick=self.check)
        t_etcd = time.monotonic()
        component("kube-apiserver", flags.kube_apiserver(binaries, layout, ports, pki, self.audit_policy))
        with Rest(ports.apiserver_url, token=self._admin.token, ca_cert=pki.ca_cert) as rest:
            wait_for(
                lambda: rest.get("/readyz").status_code == 200,
                timeout=remaining(),
                what="kube-apiserver /readyz",
                on_tick=self.check,
            )
            t_api = time.monotonic()
            # kube-controller-manager gives the apiserver only seconds to be healthy, so it starts after /readyz.
            component("kube-controller-manager", flags.kube_controller_manager(binaries, layout, pki))
            component("kube-scheduler", flags.kube_scheduler(binaries, layout))
            component("kwok", flags.kwok(binaries, layout), {"KWOK_WORKDIR": str(layout.kwok_workdir)})
            version = str(rest.get("/version").json()["gitVersion"])
            created = rest.post("/api/v1/nodes", self.node.manifest(kubelet_version=version))
            if created.status_code not in (201, 409):
                raise ControlPlaneError(f"creating node {self.node.name} failed: {created.status_code} {created.text}")
            wait_for(
                lambda: rest.get("/api/v1/namespaces/default/serviceaccounts/default").status_code == 200,
                timeout=remaining(),
                what="the default ServiceAccount (kube-controller-manager)",
                on_tick=self.check,
            )
            wait_for(
                lambda: _node_ready(rest, self.node.name),
                timeout=remaining(),
                what=f"node {self.node.name} Ready (kwok)",
                on_tick=self.check,
            )
        log.debug(
            "etcd %.1fs, apiserver %.1fs, controllers and node %.1fs",
            t_etcd - t0,
            t_api - t_etcd,
            time.monotonic() - t_api,
        )

    def _stop_components(self) -> None:
        components, self._components = self._components, []
        # The apiserver's clients first, all at once; etcd last so the apiserver can shut down cleanly.
        clients = [c for c in reversed(components) if c.name != "etcd"]
        for component in clients:
            component.terminate()
        for component in clients:
            component.wait(_STOP_GRACE)
        for component in components:
            if component.name == "etcd":
                component.stop(_STOP_GRACE)
        guardian, self._guardian = self._guardian, None
        if guardian is not None:
            guardian.release()


def _etcd_healthy(url: str) -> bool:
    response = httpx.get(f"{url}/health", timeout=2.0, trust_env=False)
    return response.status_code == 200 and response.json().get("health") == "true"


def _node_ready(rest: Rest, name: str) -> bool:
    response = rest.get(f"/api/v1/nodes/{name}")
    if response.status_code != 200:
        return False
    conditions = response.json().get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
