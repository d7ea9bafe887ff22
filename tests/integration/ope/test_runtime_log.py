"""From a real runtime process to an evaluation: decide and reward over HTTP, export the log as JSON lines and Parquet
(`croupier-runtime export`, `croupier export`), read it back with pyarrow, evaluate candidates with `croupier ope`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

pytestmark = pytest.mark.integration

ARMS = ["grid", "list", "hero"]
BIN = Path(sys.executable).parent


def _manifest(path: Path, name: str, **spec: Any) -> Path:
    body: dict[str, Any] = {
        "arms": [{"name": arm} for arm in ARMS],
        "algorithm": {"type": "LinUCB", "linUCB": {"alpha": 1.0}},
        "context": {"features": ["level", "spend"], "intercept": True},
        "reward": {"type": "Continuous", "attributionWindowSeconds": 3600},
        "exploration": {"minProbability": 0.1},
    }
    body.update(spec)
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": name, "namespace": "shop", "generation": 1},
        "spec": body,
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _serve(policy: Path, state: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable, "-m", "croupier.runtime.cli", "--policy", str(policy), "--host", "127.0.0.1",
        "--port", str(port), "--state-dir", str(state), "--seed", "5",
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise TimeoutError(log.read_text())


def _traffic(url: str, n: int, unrewarded: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(11)
    sent = []
    with httpx.Client(base_url=url, timeout=10) as client:
        for i in range(n):
            context = {"level": float(rng.normal()), "spend": float(rng.exponential())}
            body: dict[str, Any] = {"unitId": f"u{i}", "context": context}
            if i % 10 == 0:
                body["candidates"] = ["grid", "hero"]
            answer = client.post("/v1/decide", json=body)
            assert answer.status_code == 200, answer.text
            decision = answer.json()
            mean = {"grid": 0.2, "list": 0.5 + 0.3 * context["level"], "hero": 0.1 * context["spend"]}[decision["arm"]]
            reward = round(mean + float(rng.normal(0, 0.1)), 6)
            sent.append({**decision, "context": context, "reward": None if i >= n - unrewarded else reward})
        rewards = [{"decisionId": d["decisionId"], "reward": d["reward"]} for d in sent if d["reward"] is not None]
        for start in range(0, len(rewards), 100):
            answer = client.post("/v1/rewards", json={"rewards": rewards[start : start + 100]})
            assert answer.status_code == 200 and answer.json()["accepted"] == len(rewards[start : start + 100])
    return sent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=300, check=False, env=os.environ.copy())


def test_a_runtime_log_exports_and_evaluates(tmp_path: Path) -> None:
    policy = _manifest(tmp_path / "served.yaml", "layout")
    state, port = tmp_path / "state", _free_port()
    process = _serve(policy, state, port, tmp_path / "runtime.log")
    try:
        sent = _traffic(f"http://127.0.0.1:{port}", 400, unrewarded=15)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)  # a graceful stop: the last decision records and rewards are on disk

    jsonl, parquet = tmp_path / "log.jsonl", tmp_path / "log.parquet"
    exported = _run(str(BIN / "croupier-runtime"), "export", "--policy", str(policy), "--state-dir", str(state),
                    "--format", "parquet", "--output", str(parquet))  # fmt: skip
    assert exported.returncode == 0 and "exported 400 decisions" in exported.stderr, exported.stderr
    exported = _run(
        str(BIN / "croupier"), "export", "--policy", str(policy), "--state-dir", str(state), "-o", str(jsonl)
    )
    assert exported.returncode == 0 and "exported 400 decisions" in exported.stderr, exported.stderr

    refused = _run(str(BIN / "croupier-runtime"), "export", "--policy", str(policy), "--state-dir", str(state),
                   "--format", "parquet")  # fmt: skip
    assert refused.returncode == 2 and "--format parquet needs --output" in refused.stderr

    table = pq.read_table(parquet)
    assert table.num_rows == 400
    assert set(table.column_names) >= {"arms", "probabilities", "featureNames", "context", "scores", "reward"}
    rows = {row["decisionId"]: row for row in table.to_pylist()}
    lines = {line["decisionId"]: line for line in map(json.loads, jsonl.read_text().splitlines())}
    for decision in sent:
        row, line = rows[decision["decisionId"]], lines[decision["decisionId"]]
        assert row["arms"] == ARMS and row["featureNames"] == ["level", "spend"]
        assert row["context"] == [decision["context"]["level"], decision["context"]["spend"]]
        assert line["context"] == decision["context"]
        assert sum(row["probabilities"]) == pytest.approx(1.0)
        assert dict(zip(row["arms"], row["probabilities"], strict=True)) == line["probabilities"]
        for arm, p in decision["probabilities"].items():  # what the client saw is what the log keeps
            assert line["probabilities"][arm] == pytest.approx(p)
        assert row["propensity"] == row["probabilities"][ARMS.index(row["arm"])] == line["propensity"]
        assert row["reward"] == decision["reward"] == line["reward"]
        assert row["scores"] is None and line["scores"] is None
        if decision["decisionId"] in {d["decisionId"] for d in sent[::10]}:
            assert row["candidates"] == ["grid", "hero"] and row["probabilities"][1] == 0.0

    candidates = [
        _manifest(tmp_path / "linucb.yaml", "linucb-sharper", algorithm={"type": "LinUCB", "linUCB": {"alpha": 0.2}}),
        _manifest(tmp_path / "greedy.yaml", "greedy", algorithm={"type": "EpsilonGreedy"}, context=None),
    ]
    flags = [arg for path in candidates for arg in ("-p", str(path))]
    results = []
    for log in (parquet, jsonl):
        evaluated = _run(str(BIN / "croupier"), "ope", str(log), *flags, "--output", "json", "--resamples", "200")
        assert evaluated.returncode == 0, evaluated.stderr
        results.append(json.loads(evaluated.stdout))
    document = results[0]
    assert document["log"]["decisions"] == 400 and document["log"]["rewarded"] == 385
    assert document["log"]["arms"] == ARMS and document["log"]["features"] == ["level", "spend"]
    assert [c["name"] for c in document["candidates"]] == ["linucb-sharper", "greedy"]
    for candidate in document["candidates"]:
        assert candidate["learnedRewards"] == 200
        assert [e["estimator"] for e in candidate["estimates"]] == ["IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR"]
        for estimate in candidate["estimates"]:
            assert set(estimate) >= {"value", "low", "high", "stdError", "interval", "effectiveSampleSize"}
            assert estimate["low"] <= estimate["value"] <= estimate["high"]
    # both files hold the same log: the same numbers (up to the log paths)
    assert results[0]["candidates"] == results[1]["candidates"]

    shown = _run(str(BIN / "croupier"), "ope", str(parquet), *flags, "--resamples", "200")
    assert shown.returncode == 0, shown.stderr
    for text in ("linucb-sharper (LinUCB)", "greedy (EpsilonGreedy)", "SwitchDR", "normal", "bootstrap"):
        assert text in shown.stdout
