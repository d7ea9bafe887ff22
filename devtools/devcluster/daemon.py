"""A control plane that outlives the command starting it: ``up`` (foreground or detached), ``down``, ``status``.

The cluster directory holds, besides the control plane's own files (see :class:`~.layout.Layout`):
``pid`` (the supervising process, written first), ``ready`` (JSON, written once the cluster is usable, removed on
stop) and, when detached, ``devcluster.log`` (the supervisor's output).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .binaries import Binaries
from .controlplane import ControlPlane
from .layout import Layout
from .process import ComponentFailedError, pid_alive, tail

log = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class _StopRequestedError(BaseException):
    """Raised by the signal handler while the cluster is still starting, to abort the start."""


@dataclass(frozen=True)
class ClusterDir:
    root: Path

    @property
    def pid_file(self) -> Path:
        return self.root / "pid"

    @property
    def ready_file(self) -> Path:
        return self.root / "ready"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "devcluster.log"

    @property
    def kubeconfig(self) -> Path:
        return Layout(self.root).kubeconfig

    def supervisor_pid(self) -> int | None:
        """The pid in ``pid`` if that process is alive and is a devcluster supervisor, else None."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return pid  # no procfs: trust the pid file
        return pid if b"devcluster" in cmdline else None

    def ready_info(self) -> dict[str, Any] | None:
        try:
            info = json.loads(self.ready_file.read_text())
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None

    def write_ready(self, info: dict[str, Any]) -> None:
        partial = self.ready_file.with_suffix(".partial")
        partial.write_text(json.dumps(info, indent=2) + "\n")
        partial.replace(self.ready_file)  # atomic: a reader sees no file or a whole one


def serve(directory: Path, binaries: Binaries, start_timeout: float) -> int:
    """Run a control plane in the foreground until SIGTERM, SIGINT or SIGHUP; exit code 1 if a component dies."""
    cluster = ClusterDir(directory.resolve())
    cluster.root.mkdir(parents=True, exist_ok=True)
    other = cluster.supervisor_pid()
    if other is not None and other != os.getpid():
        log.error("a control plane is already running in %s (pid %d); stop it with `down`", cluster.root, other)
        return 1
    cluster.ready_file.unlink(missing_ok=True)
    cluster.pid_file.write_text(f"{os.getpid()}\n")

    stop_requested = threading.Event()
    starting = True

    def on_signal(signum: int, frame: FrameType | None) -> None:
        first = not stop_requested.is_set()
        stop_requested.set()
        if starting and first:  # only once: a second signal must not interrupt the cleanup of the first
            raise _StopRequestedError(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, on_signal) for sig in _STOP_SIGNALS}
    control_plane = ControlPlane(binaries=binaries, work_dir=cluster.root, start_timeout=start_timeout)
    try:
        try:
            control_plane.start()
        except _StopRequestedError as stop:
            log.info("stop requested (%s) while starting", stop)
            return 0
        finally:
            starting = False
        cluster.write_ready(
            {
                "pid": os.getpid(),
                "server": control_plane.server,
                "kubeconfig": str(control_plane.kubeconfig),
                "binDir": str(binaries.directory),
                "logs": str(control_plane.layout.logs),
                "startupSeconds": round(control_plane.startup_seconds or 0.0, 2),
                "components": control_plane.pids(),
            }
        )
        log.info("control plane ready; export KUBECONFIG=%s", control_plane.kubeconfig)
        while not stop_requested.wait(1.0):
            try:
                control_plane.check()
            except ComponentFailedError as error:
                log.error("%s", error)
                return 1
        log.info("stopping the control plane")
        return 0
    finally:
        starting = False
        cluster.ready_file.unlink(missing_ok=True)
        control_plane.stop()
        cluster.pid_file.unlink(missing_ok=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def start_detached(directory: Path, binaries: Binaries, start_timeout: float) -> int:
    """Start ``serve`` in a new session, return once it is ready (0) or has failed (1). Idempotent."""
    cluster = ClusterDir(directory.resolve())
    cluster.root.mkdir(parents=True, exist_ok=True)
    running = cluster.supervisor_pid()
    if running is None:
        cluster.ready_file.unlink(missing_ok=True)
        argv = [
            sys.executable,
            "-m",
            "croupier.devcluster",
            "up",
            "--dir",
            str(cluster.root),
            "--bin-dir",
            str(binaries.directory),
            "--timeout",
            str(start_timeout),
        ]
        with cluster.supervisor_log.open("ab") as out:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=cluster.root,
                start_new_session=True,  # no terminal signals, its own process group for `down` to clean up
            )
        running = child.pid
    else:
        log.info("a control plane is already running in %s (pid %d)", cluster.root, running)

    deadline = time.monotonic() + start_timeout + 30.0
    while time.monotonic() < deadline:
        info = cluster.ready_info()
        if info is not None and info.get("pid") == running:
            print(cluster.kubeconfig)
            log.info("control plane ready in %s; export KUBECONFIG=%s", cluster.root, cluster.kubeconfig)
            return 0
        if not pid_alive(running):
            log.error(
                "the control plane exited during start; last lines of %s:\n%s",
                cluster.supervisor_log,
                tail(cluster.supervisor_log),
            )
            return 1
        time.sleep(0.2)
    log.error("the control plane was not ready after %.0fs; see %s", start_timeout + 30.0, cluster.supervisor_log)
    return 1


def stop(directory: Path, timeout: float = 60.0) -> int:
    """Stop the supervisor in ``directory`` (SIGTERM, then SIGKILL of its process group) and any orphaned component."""
    cluster = ClusterDir(directory.resolve())
    info = cluster.ready_info() or {}
    pid = cluster.supervisor_pid()
    if pid is None:
        log.info("no control plane running in %s", cluster.root)
    else:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            log.warning("pid %d ignored SIGTERM for %.0fs; killing its process group", pid, timeout)
            _kill_group_or_pid(pid)
        log.info("control plane in %s stopped", cluster.root)
    _kill_orphans(info)
    cluster.ready_file.unlink(missing_ok=True)
    cluster.pid_file.unlink(missing_ok=True)
    cluster.kubeconfig.unlink(missing_ok=True)  # a supervisor killed outright could not remove it itself
    return 0


def status(directory: Path) -> int:
    """Print the ready file; exit 0 when ready, 1 while starting, 3 when not running."""
    cluster = ClusterDir(directory.resolve())
    pid = cluster.supervisor_pid()
    if pid is None:
        print(f"not running ({cluster.root})")
        return 3
    info = cluster.ready_info()
    if info is None or info.get("pid") != pid:
        print(f"starting (pid {pid})")
        return 1
    print(json.dumps(info, indent=2))
    return 0


def _kill_group_or_pid(pid: int) -> None:
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_orphans(info: dict[str, Any]) -> None:
    """Kill components a dead supervisor left behind, recognised by their executable living in the bin dir."""
    bin_dir = info.get("binDir")
    components = info.get("components")
    if not isinstance(bin_dir, str) or not isinstance(components, dict):
        return
    for name, pid in components.items():
        if not isinstance(pid, int) or not pid_alive(pid):
            continue
        try:
            executable = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:
            continue
        if executable.startswith(bin_dir.rstrip("/") + "/"):
            log.warning("killing orphaned %s (pid %d)", name, pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
