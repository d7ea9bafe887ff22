"""A `croupier-runtime` process serving a model-scored policy from its policy file, against the local TF Serving on a
real SavedModel: decide and rank use the model's scores (model version 1 in /v1/stats, scores in the decision log's
export), and when the model server stops the process keeps answering through its fallback, counted by reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from integration.runtime.conftest import RuntimeProcess
from support.savedmodels import SCORING

from .conftest import model_server

CONTEXT = {"x": 1.0, "y": -0.5, "z": 0.25}


def policy_document(address: str) -> dict[str, Any]:
    """What the operator renders into the runtime's ConfigMap for a scored policy (the `scoring` block beside spec)."""
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "DecisionPolicy",
        "metadata": {"name": "scored", "namespace": "games", "generation": 1},
        "spec": {
            "arms": [
                {"name": "north", "features": {"a": 1.0, "b": 0.0}},
                {"name": "east", "features": {"a": 0.0, "b": 1.0}},
                {"name": "south", "features": {"a": -1.0, "b": 0.5}},
                {"name": "west", "features": {"a": 0.5, "b": -1.0}},
            ],
            "algorithm": {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}},
            "context": {"features": ["x", "y", "z"]},
            "exploration": {"minProbability": 0.02},
            "auth": {"mode": "Disabled"},
            "scoring": {"modelDeploymentRef": {"name": "scoring"}, "timeoutMilliseconds": 500},
        },
        "scoring": {"address": address, "modelName": SCORING},
    }


def test_a_runtime_process_scores_decides_ranks_and_falls_back_when_the_model_stops(
    model_repository: Path, tmp_path: Path
) -> None:
    server = model_server(model_repository, tmp_path / "server.log").start(ready_model=SCORING, timeout=600)
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(policy_document(server.grpc_target)))
    runtime = RuntimeProcess(policy, tmp_path / "state")
    try:
        runtime.start(timeout=120)
        with httpx.Client(base_url=runtime.url, timeout=10, trust_env=False) as http:
            for _ in range(50):
                answer = http.post("/v1/decide", json={"unitId": "u", "context": CONTEXT})
                assert answer.status_code == 200, answer.text
            slate = http.post("/v1/rank", json={"context": CONTEXT, "k": 3})
            assert slate.status_code == 200, slate.text
            assert [p["position"] for p in slate.json()["slate"]] == [1, 2, 3]
            scoring = http.get("/v1/stats").json()["scoring"]
            assert scoring["modelVersion"] == 1 and scoring["fallbacks"] == {}, scoring
            assert scoring["decisions"] == 51  # 50 decisions and one Predict for the slate

            server.stop()  # the model goes away: decisions keep flowing, through the fallback
            for _ in range(20):
                answer = http.post("/v1/decide", json={"unitId": "u", "context": CONTEXT})
                assert answer.status_code == 200, answer.text
            fallbacks = http.get("/v1/stats").json()["scoring"]["fallbacks"]
            assert sum(fallbacks.values()) == 20 and set(fallbacks) <= {"unavailable", "timeout", "model_error"}
    finally:
        runtime.stop()
        server.stop()

    # The decision log as the export reads it: the scored rows carry the model's scores and version.
    exported = tmp_path / "decisions.jsonl"
    command = [sys.executable, "-m", "croupier.runtime.cli", "export", "--policy", str(policy),
               "--state-dir", str(tmp_path / "state"), "--output", str(exported)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    rows = [json.loads(line) for line in exported.read_text().splitlines()]
    assert len(rows) == 50 + 3 + 20
    scored = [r for r in rows if r["modelVersion"] == 1]
    assert len(scored) == 53 and all(r["scores"] and r["scoringFallback"] is None for r in scored)
    fell_back = [r for r in rows if r["scoringFallback"] is not None]
    assert len(fell_back) == 20 and all(r["scores"] is None for r in fell_back)
