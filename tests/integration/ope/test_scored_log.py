"""A model-scored runtime's log evaluated for a candidate of another exploration: a runtime scored by the local TF
Serving (a real bilinear SavedModel) decides and learns clicks whose rate is known from the model's scores; its export
is evaluated by `croupier ope` with an EpsilonGreedy-scored candidate, whose vector is its exploration and floor over
the exported scores and whose estimate covers its true value."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
import yaml
from support.savedmodels import SCORING, model_config, scoring_scores, write_scoring_model
from typer.testing import CliRunner

from croupier.cli.app import app
from croupier.modelserver.process import ModelServerProcess
from croupier.ope.candidates import Mode, distributions, load_candidate
from croupier.ope.log import read_log
from croupier.runtime.assembly import Runtime
from croupier.runtime.http.app import HttpApp
from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.policy_file import parse_policy
from croupier.runtime.scoring.exploration import epsilon_greedy
from croupier.runtime.settings import RuntimeSettings
from croupier.runtime.store.export import export_jsonl
from croupier.runtime.store.sqlite import database_path

pytestmark = pytest.mark.integration

ARMS = {"north": [1.0, 0.0], "east": [0.0, 1.0], "south": [-1.0, 0.5], "west": [0.5, -1.0]}
FLOOR = 0.02
EPSILON = 0.1
DECISIONS = 600


def click_rate(score: float) -> float:
    return float(1.0 / (1.0 + np.exp(-score)))


def spec(exploration: dict[str, Any]) -> dict[str, Any]:
    return {
        "arms": [{"name": name, "features": {"a": row[0], "b": row[1]}} for name, row in ARMS.items()],
        "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}},
        "context": {"features": ["x", "y", "z"]},
        "reward": {"type": "Binary"},
        "exploration": {"minProbability": FLOOR},
        "auth": {"mode": "Disabled"},
        "scoring": {"modelDeploymentRef": {"name": "scoring"}, "timeoutMilliseconds": 2000, "exploration": exploration},
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    root = tmp_path_factory.mktemp("models")
    write_scoring_model(root / SCORING, 1)
    (root / "models.config").write_text(model_config([(SCORING, root / SCORING, [1], {"stable": 1})]))
    process = ModelServerProcess([f"--model_config_file={root / 'models.config'}"], root / "server.log")
    try:
        yield process.start(ready_model=SCORING, timeout=600)
    finally:
        process.stop()


async def decide_and_reward(address: str, state_dir: Path, rng: np.random.Generator) -> None:
    import httpx  # noqa: PLC0415

    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "scored", "namespace": "games", "generation": 1},
        "spec": spec({"type": "Softmax", "softmax": {"temperature": 1.0}}),
        "scoring": {"address": address, "modelName": SCORING},
    }
    runtime = Runtime(RuntimeSettings(state_dir=state_dir, seed=7), parse_policy(document), metrics=RuntimeMetrics())
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=HttpApp(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://runtime") as client:
            for _ in range(DECISIONS):
                context = rng.normal(size=3).tolist()
                answer = await client.post("/v1/decide", json={"context": context})
                assert answer.status_code == 200, answer.text
                body = answer.json()
                score = float(scoring_scores(1, context, [ARMS[body["arm"]]])[0])
                click = int(rng.random() < click_rate(score))
                reward = await client.post("/v1/rewards", json={"decisionId": body["decisionId"], "reward": click})
                assert reward.status_code in (200, 202), reward.text
    finally:
        await runtime.stop()


def test_a_scored_runtime_log_evaluates_a_candidate_of_another_exploration(
    server: ModelServerProcess, tmp_path: Path
) -> None:
    asyncio.run(decide_and_reward(server.grpc_target, tmp_path, np.random.default_rng(11)))
    buffer = io.BytesIO()
    assert export_jsonl(database_path(tmp_path, "games", "scored"), buffer) == DECISIONS
    exported = tmp_path / "decisions.jsonl"
    exported.write_bytes(buffer.getvalue())
    lines = [orjson.loads(line) for line in buffer.getvalue().splitlines()]
    assert all(line["modelVersion"] == 1 and line["scoringFallback"] is None for line in lines)

    candidate = tmp_path / "greedy.yaml"
    document = {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "greedy", "namespace": "games", "generation": 1},
        "spec": spec({"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": EPSILON}}),
    }
    candidate.write_text(yaml.safe_dump(document))

    log = read_log(exported)
    from_sqlite = read_log(database_path(tmp_path, "games", "scored"))  # the runtime's own log reads the same
    assert np.array_equal(from_sqlite.scores, log.scores, equal_nan=True)
    assert from_sqlite.model_versions == log.model_versions == (1,) * DECISIONS
    dists = distributions(load_candidate(candidate), log, mode=Mode.ONLINE)
    names = list(log.arms)
    truths = []
    for row, line in enumerate(sorted(lines, key=lambda ln: (ln["timestamp"], ln["decisionId"]))):
        scores = [float(s) for s in line["scores"]]
        context = [line["context"][f] for f in ("x", "y", "z")]
        model = scoring_scores(1, context, [ARMS[n] for n in line["probabilities"]])
        assert scores == pytest.approx(model.tolist(), rel=1e-6, abs=1e-5)  # what the model answered (float32)
        expected = apply_floor(epsilon_greedy(scores, EPSILON), FLOOR)
        by_name = dict(zip(line["probabilities"], expected, strict=True))
        assert dists.target[row] == pytest.approx([by_name[n] for n in names], abs=1e-12)
        truths.append(sum(p * click_rate(s) for p, s in zip(expected, scores, strict=True)))
    truth = float(np.mean(truths))

    runner = CliRunner()
    args = ["ope", str(exported), "-p", str(candidate), "--mode", "online", "--output", "json", "--resamples", "200"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (report,) = json.loads(result.stdout)["candidates"]
    assert report["scoring"] == {"scoredRows": DECISIONS, "fallbackRows": 0, "fallback": "Policy", "modelVersions": [1]}
    assert any("logged scores of model version 1, which stand in" in w for w in report["warnings"])
    estimates = {e["estimator"]: e for e in report["estimates"]}
    for estimator in ("IPS", "DR"):
        e = estimates[estimator]
        assert abs(e["value"] - truth) < 3 * e["stdError"], (estimator, e, truth)
