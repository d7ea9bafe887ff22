"""`croupier decide` / `croupier reward` against a real runtime: the URL from CROUPIER_URL, error answers named on
standard error with exit status 1, input refused before sending with exit status 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from croupier.client import Client

from ..runtime.conftest import RuntimeProcess, server_port, write_policy

CROUPIER = str(Path(sys.executable).parent / "croupier")


@pytest.fixture
def runtime(tmp_path: Path) -> object:
    process = RuntimeProcess(write_policy(tmp_path / "policy.yaml"), tmp_path / "state").start(120)
    yield process
    process.stop()


def run(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CROUPIER_URL": url}
    return subprocess.run([CROUPIER, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


def test_decide_and_reward_errors(runtime: RuntimeProcess) -> None:
    decided = run("decide", "-u", "player-1", "--context", "[1, 2]", url=runtime.url)
    assert decided.returncode == 0, decided.stderr
    decision = json.loads(decided.stdout)
    assert decision["arm"] in ("blue", "green", "red") and decision["fallback"] is False

    rewarded = run("reward", decision["decisionId"], "1", url=runtime.url)
    assert json.loads(rewarded.stdout)["accepted"] == 1

    unknown = run("reward", "no-such-decision", "1", url=runtime.url)
    assert unknown.returncode == 1
    assert "404 UnknownDecision" in unknown.stderr and "decisionId" in unknown.stderr

    bad_arm = run("decide", "-c", "purple", url=runtime.url)
    assert bad_arm.returncode == 1
    assert "UnknownArm" in bad_arm.stderr and "candidates[0]" in bad_arm.stderr

    not_a_number = run("reward", decision["decisionId"], "nan", url=runtime.url)
    assert not_a_number.returncode == 2
    assert "reward" in not_a_number.stderr

    bad_context = run("decide", "--context", "{oops", url=runtime.url)
    assert bad_context.returncode == 2
    assert "--context" in bad_context.stderr

    down = run("decide", url=f"http://127.0.0.1:{server_port()}")
    assert down.returncode == 1
    assert "did not answer" in down.stderr

    with Client(runtime.url) as client:  # what the commands changed, and no more
        totals = client.stats().totals
    assert (totals.decisions, totals.rewards) == (1, 1)
