"""A watchdog that stops the components when the process that started them dies without stopping them.

A test run killed by a CI timeout, ``kill -9`` or a crash never reaches its teardown; without this, etcd and the
apiserver would outlive it. The parent holds the write end of a pipe and sends each component's pid through it;
the kernel closes the pipe however the parent dies. On end-of-file the guardian terminates every pid it was given,
unless the parent first wrote ``done`` (a normal stop, which has already stopped them in order).

Run as ``python -m croupier.devcluster.guardian FD``. It ignores SIGINT, SIGTERM and SIGHUP: it must outlive signals
sent to its parent's process group, and it always ends once the pipe closes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .process import pid_alive

DONE = "done"
_GRACE = 10.0


class Guardian:
    """The parent's handle: :meth:`watch` each component pid, :meth:`release` after a normal stop."""

    def __init__(self, log: Path) -> None:
        read_fd, self._write_fd = os.pipe()
        try:
            with log.open("ab") as out:
                self._process = subprocess.Popen(
                    [sys.executable, "-m", "croupier.devcluster.guardian", str(read_fd)],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    pass_fds=(read_fd,),
                    process_group=0,
                )
        finally:
            os.close(read_fd)

    def watch(self, pid: int) -> None:
        os.write(self._write_fd, f"{pid}\n".encode())

    def release(self) -> None:
        """Tell the guardian that the components were stopped normally, and let it exit."""
        if self._write_fd < 0:
            return
        with contextlib.suppress(BrokenPipeError):
            os.write(self._write_fd, f"{DONE}\n".encode())
        os.close(self._write_fd)
        self._write_fd = -1
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def _terminate(pids: list[int]) -> None:
    """SIGTERM, wait up to the grace period, SIGKILL what is left."""
    alive = [pid for pid in pids if pid_alive(pid)]
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE
    while (alive := [pid for pid in alive if pid_alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def main(argv: list[str]) -> int:
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    pids: list[int] = []
    with os.fdopen(int(argv[1]), "r") as pipe:
        for line in pipe:
            word = line.strip()
            if word == DONE:
                return 0
            if word.isdigit():
                pids.append(int(word))
    # End of file without "done": the parent died. The first pid is etcd; it goes last, so the apiserver shuts down
    # while its storage is still there.
    print(f"guardian: parent gone; stopping pids {pids}", flush=True)
    _terminate(pids[1:])
    _terminate(pids[:1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
