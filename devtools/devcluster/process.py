"""One long-running child process: started with its output in a log file, waited for with a bound until it answers,
stopped gracefully, then killed. The control plane's components, the local model server and the tests' Traefik all
run through :class:`Component`."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Self

from croupier.devcluster.waiting import WaitTimeoutError, wait_for


class ComponentFailedError(RuntimeError):
    """A component exited while the control plane needed it."""

    def __init__(self, name: str, returncode: int | None, log: Path) -> None:
        self.name = name
        self.returncode = returncode
        self.log = log
        self.log_tail = tail(log)
        super().__init__(f"{name} exited with code {returncode}; last lines of {log}:\n{self.log_tail}")


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class Component:
    """A named process whose stdout and stderr go to ``log`` (``env`` None: this process's environment); ``stop_signal``
    asks it to stop."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log: Path,
        cwd: Path | None = None,
        env: Mapping[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.stop_signal = stop_signal
        self.argv = list(argv)
        self.log = log
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self._process

    def start(self) -> Self:
        if self._process is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"# {' '.join(self.argv)}\n".encode())
            log.flush()
            self._process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.cwd,
                env=self.env,
                close_fds=True,
                # Its own process group: a Ctrl-C or a job-control kill aimed at the parent's group reaches only the
                # parent, which then stops the components in order (and the guardian covers a parent that dies).
                process_group=0,
            )
        return self

    def wait_ready(self, probe: Callable[[], object], *, timeout: float, what: str, max_interval: float = 1.0) -> None:
        """Poll ``probe`` until it returns something true (a probe that raises counts as not yet), failing fast with
        :class:`ComponentFailedError` if the process exits; on any failure the process is stopped and the error,
        with the log's last lines, raised."""
        try:
            wait_for(probe, timeout=timeout, what=what, max_interval=max_interval, on_tick=self.check)
        except WaitTimeoutError as error:
            self.stop()
            raise WaitTimeoutError(f"{error}; last lines of {self.log}:\n{tail(self.log)}") from error
        except BaseException:
            self.stop()
            raise

    def tail(self, lines: int = 25) -> str:
        return tail(self.log, lines)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def check(self) -> None:
        """Raise :class:`ComponentFailedError` if the process was started and has exited."""
        if self._process is not None and self._process.poll() is not None:
            raise ComponentFailedError(self.name, self._process.returncode, self.log)

    def terminate(self) -> None:
        """Ask the process to stop (``stop_signal``) without waiting."""
        if self.running():
            assert self._process is not None
            self._process.send_signal(self.stop_signal)

    def wait(self, grace: float) -> None:
        """Wait up to ``grace`` seconds for the process to exit, then kill it."""
        if self._process is None:
            return
        try:
            self._process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def stop(self, grace: float = 10.0) -> None:
        self.terminate()
        self.wait(grace)


def pid_alive(pid: int) -> bool:
    """True while ``pid`` names a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rpartition(")")[2].split()[0] != "Z"
