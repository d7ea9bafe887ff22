"""Model-scored decisions end to end on the local TF Serving: the scores move decisions, the propensities are exactly
the vectors answered (χ² of the sampled arms), the decision log keeps the scores and the model version, a stopped or
frozen (SIGSTOP) model server makes decisions fall back within the timeout and keep flowing, and a model whose
signature does not fit the layout stops the start with a message that names the difference."""

from __future__ import annotations

import io
import os
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from scipy.stats import chisquare
from support.savedmodels import RANKER, SCORER, SCORING

from croupier.modelserver.process import ModelServerProcess
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.store.export import export_jsonl
from croupier.runtime.store.sqlite import database_path

from .conftest import model_server, running, scored_policy

ARM_ROWS = {"north": [1.0, 0.0], "east": [0.0, 1.0], "south": [-1.0, 0.5], "west": [0.5, -1.0]}
TEMPERATURE = 0.5
FLOOR = 0.02


def softmax_floored(scores: np.ndarray) -> np.ndarray:
    weights = np.exp((scores.astype(np.float64) - scores.max()) / TEMPERATURE)
    return np.asarray(apply_floor(list(weights / weights.sum()), FLOOR))


def expected_vector(context: list[float], arms: list[str]) -> dict[str, float]:
    from support.savedmodels import scoring_scores  # noqa: PLC0415

    scores = scoring_scores(1, context, [ARM_ROWS[a] for a in arms])
    return dict(zip(arms, softmax_floored(scores).tolist(), strict=True))


def wait_stopped(pid: int) -> None:
    """Until every thread of ``pid`` is stopped: kill() only queues SIGSTOP, and a busy thread may answer one more
    request before it stops."""
    deadline = time.monotonic() + 10
    tasks = Path(f"/proc/{pid}/task")
    while time.monotonic() < deadline:
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
        if all(state in ("T", "t") for state in states):
            return
        time.sleep(0.01)
    raise TimeoutError(f"process {pid} did not stop")


SOFTMAX = {"modelDeploymentRef": {"name": "scoring"}, "timeoutMilliseconds": 500}
SOFTMAX["exploration"] = {"type": "Softmax", "softmax": {"temperature": TEMPERATURE}}


def test_scores_move_decisions_and_propensities_are_exact(
    server: ModelServerProcess, tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    served = scored_policy(server.grpc_target, scoring=SOFTMAX)
    contexts = {"first": [1.0, -0.5, 0.25], "second": [-1.0, 0.75, -0.5]}
    draws = 1500

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with running(served, tmp_path) as (_runtime, client):
            for key, context in contexts.items():
                vectors, arms = [], Counter[str]()
                for _ in range(draws):
                    answer = await client.post("/v1/decide", json={"context": context})
                    assert answer.status_code == 200, answer.text
                    body = answer.json()
                    vectors.append(body["probabilities"])
                    arms[body["arm"]] += 1
                out[key] = (vectors, arms)
            ask = {"context": contexts["first"], "candidates": ["east", "west"]}
            subset = await client.post("/v1/decide", json=ask)
            out["subset"] = subset.json()
            out["stats"] = (await client.get("/v1/stats")).json()
            out["metrics"] = (await client.get("/metrics")).text
        return out

    out = run(scenario())
    names = list(ARM_ROWS)
    modes = {}
    for key, context in contexts.items():
        vectors, arms = out[key]
        expected = expected_vector(context, names)
        assert all(v == vectors[0] for v in vectors)  # one context, one model version: one vector
        for name in names:
            assert vectors[0][name] == pytest.approx(expected[name], abs=1e-6)
        observed = [arms[n] for n in names]
        result = chisquare(observed, [draws * expected[n] for n in names])
        assert result.pvalue > 1e-3, (key, observed, expected)
        modes[key] = max(expected, key=expected.__getitem__)
    assert modes["first"] != modes["second"]  # the model's scores, not the policy's state, decide
    assert set(out["subset"]["probabilities"]) == {"east", "west"}
    expected_subset = expected_vector(contexts["first"], ["east", "west"])
    for name, p in out["subset"]["probabilities"].items():
        assert p == pytest.approx(expected_subset[name], abs=1e-6)
    scoring = out["stats"]["scoring"]
    assert scoring["decisions"] == 2 * draws + 1 and scoring["fallbacks"] == {} and scoring["modelVersion"] == 1
    assert "croupier_scoring_decisions_total 3001.0" in out["metrics"]

    buffer = io.BytesIO()
    assert export_jsonl(database_path(tmp_path, "games", "scored"), buffer) == 2 * draws + 1
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    first = lines[0]
    assert first["modelVersion"] == 1 and first["scoringFallback"] is None
    from support.savedmodels import scoring_scores  # noqa: PLC0415

    model = scoring_scores(1, contexts["first"], [ARM_ROWS[n] for n in names])
    assert first["scores"] == pytest.approx(model.tolist(), abs=1e-6)
    last = lines[-1]
    assert last["scores"][0] is None and last["scores"][2] is None  # north and south were not candidates
    assert last["propensity"] == pytest.approx(expected_subset[last["arm"]], abs=1e-6)


def test_a_frozen_or_stopped_model_server_falls_back_within_the_timeout(
    model_repository: Path, tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    server = model_server(model_repository, tmp_path / "server.log").start(ready_model=SCORING, timeout=600)
    timeout_ms = 250  # well above a Predict's time on a host loaded by parallel test runs (about 2 ms idle)
    scoring = {**SOFTMAX, "timeoutMilliseconds": timeout_ms, "fallback": "Uniform"}
    served = scored_policy(server.grpc_target, scoring=scoring)
    context = {"context": [1.0, -0.5, 0.25]}
    uniform = {n: 0.25 for n in ARM_ROWS}
    assert server.process is not None
    pid = server.process.pid

    async def decide(client: Any) -> tuple[dict[str, Any], float]:
        started = time.perf_counter()
        answer = await client.post("/v1/decide", json=context)
        assert answer.status_code == 200, answer.text
        return answer.json(), time.perf_counter() - started

    async def warm_up(client: Any) -> None:
        # A model's first calls trace its graph and can take longer than 50 ms: wait until one is scored.
        deadline = time.monotonic() + 60
        while (await decide(client))[0]["probabilities"] == uniform and time.monotonic() < deadline:
            pass

    async def scenario() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with running(served, tmp_path / "state") as (_runtime, client):
            await warm_up(client)
            out["before"] = [await decide(client) for _ in range(10)]
            out["warm_stats"] = (await client.get("/v1/stats")).json()["scoring"]
            os.kill(pid, signal.SIGSTOP)
            wait_stopped(pid)
            try:
                out["frozen"] = [await decide(client) for _ in range(20)]
                out["frozen_stats"] = (await client.get("/v1/stats")).json()["scoring"]
            finally:
                os.kill(pid, signal.SIGCONT)
            deadline = time.monotonic() + 30
            while True:  # the server answers again once it runs: scored decisions come back
                body, _ = await decide(client)
                if body["probabilities"] != {n: 0.25 for n in ARM_ROWS} or time.monotonic() > deadline:
                    break
            out["thawed"] = body
            server.stop()
            out["stopped"] = [await decide(client) for _ in range(20)]
            out["stats"] = (await client.get("/v1/stats")).json()["scoring"]
            out["metrics"] = (await client.get("/metrics")).text
        return out

    try:
        out = run(scenario())
    finally:
        server.stop()
    uniform = {n: 0.25 for n in ARM_ROWS}
    expected = expected_vector(context["context"], list(ARM_ROWS))
    scored_before = [b for b, _ in out["before"] if b["probabilities"] != uniform]
    assert scored_before  # a loaded host may time out a call here too: each decision is scored or falls back
    for body in scored_before:
        assert body["probabilities"] == pytest.approx(expected, abs=1e-6)
    for body, seconds in out["frozen"]:
        assert body["probabilities"] == uniform
        assert seconds < timeout_ms / 1000 + 0.5, seconds  # the timeout, plus the in-process stack on a busy host
    warm = out["warm_stats"]["fallbacks"]
    assert set(warm) <= {"timeout"}  # the first calls, while the model traced its graph (or a busy host)
    assert out["frozen_stats"]["fallbacks"] == {"timeout": warm.get("timeout", 0) + 20}
    assert out["thawed"]["probabilities"] == pytest.approx(expected, abs=1e-6)
    for body, seconds in out["stopped"]:
        assert body["probabilities"] == uniform
        assert seconds < timeout_ms / 1000 + 0.5, seconds
    fallbacks = out["stats"]["fallbacks"]
    assert fallbacks["timeout"] >= 20 and sum(fallbacks.values()) >= 40
    assert set(fallbacks) <= {"timeout", "unavailable"} and fallbacks.get("unavailable", 0) >= 1
    assert out["stats"]["fallbackRate"] == pytest.approx(sum(fallbacks.values()) / out["stats"]["decisions"])
    assert 'croupier_scoring_fallbacks_total{reason="timeout"}' in out["metrics"]


def test_an_unreachable_model_falls_back_to_the_policy_and_the_log_says_why(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{s.getsockname()[1]}"
    served = scored_policy(address, scoring={**SOFTMAX, "timeoutMilliseconds": 100})

    async def scenario() -> tuple[list[dict[str, Any]], list[float], dict[str, Any]]:
        async with running(served, tmp_path) as (runtime, client):
            bodies = [(await client.post("/v1/decide", json={"context": [0.0, 1.0, 2.0]})).json() for _ in range(30)]
            policy = [float(p) for p in runtime.engine.probabilities() or ()]
            return bodies, policy, (await client.get("/v1/stats")).json()["scoring"]

    bodies, policy, stats = run(scenario())
    for body in bodies:
        assert list(body["probabilities"].values()) == pytest.approx(policy)
    assert stats["fallbacks"] == {"unavailable": 30} and stats["fallbackRate"] == 1.0
    buffer = io.BytesIO()
    export_jsonl(database_path(tmp_path, "games", "scored"), buffer)
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 30
    assert all(line["scoringFallback"] == "unavailable" and line["scores"] is None for line in lines)


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (RANKER, "input 'context' has shape [-1, 4]; Croupier's layout is [n, 3]"),
        (SCORER, "the signature has no input 'arms' (its inputs: ['inputs'])"),
    ],
)
def test_a_model_whose_signature_does_not_fit_stops_the_start(
    server: ModelServerProcess, tmp_path: Path, run: Callable[[Any], Any], model: str, message: str
) -> None:
    served = scored_policy(server.grpc_target, model=model, scoring=SOFTMAX)

    async def scenario() -> None:
        async with running(served, tmp_path):
            pass

    with pytest.raises(PolicyConfigError) as raised:
        run(scenario())
    assert message in str(raised.value)
    assert f"model {model!r} (stable, signature 'serving_default')" in str(raised.value)
