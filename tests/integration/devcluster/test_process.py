"""The development tools' process harness (`croupier.devcluster.process.Component`), which the control plane, the
local model server and the tests' Traefik run through: a bounded wait that fails fast on an exit, a timeout that
stops the process, and the stop signal each process asks for."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from croupier.devcluster.process import Component, ComponentFailedError
from croupier.devcluster.waiting import WaitTimeoutError

pytestmark = pytest.mark.integration


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_a_process_that_exits_while_awaited_fails_fast_with_its_log(tmp_path: Path) -> None:
    child = Component("quitter", python("print('bad flag'); raise SystemExit(3)"), log=tmp_path / "q.log").start()
    started = time.monotonic()
    with pytest.raises(ComponentFailedError) as failed:
        child.wait_ready(lambda: False, timeout=60, what="never")
    assert time.monotonic() - started < 30
    assert failed.value.returncode == 3
    assert "bad flag" in str(failed.value)


def test_a_process_that_never_gets_ready_is_stopped_and_its_log_shown(tmp_path: Path) -> None:
    code = "import time; print('still loading', flush=True); time.sleep(60)"
    child = Component("sleeper", python(code), log=tmp_path / "s.log").start()
    with pytest.raises(WaitTimeoutError) as timed_out:
        child.wait_ready(lambda: False, timeout=1, what="the sleeper to answer")
    assert "waiting for the sleeper to answer" in str(timed_out.value)
    assert "still loading" in str(timed_out.value)
    assert child.process is not None and child.process.poll() is not None
    assert not child.running()


def test_a_ready_process_is_asked_to_stop_with_its_signal(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    code = (
        "import pathlib, signal, sys, time\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(7))\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "time.sleep(60)\n"
    )
    child = Component("interruptible", python(code), log=tmp_path / "i.log", stop_signal=signal.SIGINT)
    try:
        child.start().wait_ready(marker.exists, timeout=60, what="the ready marker")
        assert child.running()
    finally:
        child.stop()
    assert child.process is not None and child.process.returncode == 7
