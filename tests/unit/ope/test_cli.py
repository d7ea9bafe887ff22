"""`croupier ope` and `croupier export` as a user runs them (typer's runner, in process): table, JSON, errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from croupier.cli.app import app

runner = CliRunner()


def test_ope_prints_json_with_one_entry_per_candidate(log_file: Path, make_policy: Callable[..., Path]) -> None:
    greedy, softmax = make_policy("greedy"), make_policy("soft", algorithm={"type": "Softmax"})
    args = ["ope", str(log_file), "-p", str(greedy), "-p", str(softmax), "--output", "json", "--resamples", "200"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["log"] == {
        "paths": [str(log_file)],
        "decisions": 600,
        "rewarded": 580,
        "arms": ["blue", "green", "red"],
        "features": ["level", "spend"],
    }
    assert document["options"]["mode"] == "frozen" and document["options"]["warmup"] == 0.5
    assert [c["name"] for c in document["candidates"]] == ["greedy", "soft"]
    for candidate in document["candidates"]:
        assert candidate["rows"] == 280
        assert [e["estimator"] for e in candidate["estimates"]] == ["IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR"]
        assert {e["interval"] for e in candidate["estimates"]} == {"normal", "bootstrap"}
        assert all(e["low"] <= e["value"] <= e["high"] for e in candidate["estimates"])
        assert "tau" in candidate["estimates"][-1]


def test_ope_prints_a_table_and_the_warnings(log_file: Path, make_policy: Callable[..., Path]) -> None:
    result = runner.invoke(
        app, ["ope", str(log_file), "-p", str(make_policy()), "--mode", "online"], terminal_width=160
    )
    assert result.exit_code == 0, result.output
    for text in ("candidate (EpsilonGreedy) on 580 rewarded decisions", "SNDR", "SwitchDR (tau", "95% interval"):
        assert text in result.stdout
    assert "warning: 20 decisions have no joined reward" in result.stdout


def test_ope_refuses_bad_input_with_a_message(log_file: Path, make_policy: Callable[..., Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["ope", str(tmp_path / "none.jsonl"), "-p", str(make_policy())])
    assert result.exit_code == 2 and "no decision log at" in result.stderr
    result = runner.invoke(app, ["ope", str(log_file), "-p", str(make_policy()), "--mode", "replay"])
    assert result.exit_code == 2 and "expected frozen or online" in result.stderr
    result = runner.invoke(app, ["ope", str(log_file)])
    assert result.exit_code == 2 and "--policy" in result.stderr


def test_a_scored_candidate_on_a_log_without_scores_is_evaluated_by_its_fallback_with_a_warning(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    scoring = {"modelDeploymentRef": {"name": "ranker"}, "fallback": "Uniform"}
    scored = make_policy("scored", scoring=scoring, context={"features": ["level", "spend"]})
    result = runner.invoke(app, ["ope", str(log_file), "-p", str(scored), "--output", "json", "--resamples", "100"])
    assert result.exit_code == 0, result.output
    (candidate,) = json.loads(result.stdout)["candidates"]
    assert candidate["scoring"] == {"scoredRows": 0, "fallbackRows": 280, "fallback": "Uniform", "modelVersions": []}
    assert any(w.startswith("no row of the log has model scores") for w in candidate["warnings"])


def test_export_refuses_a_missing_log(tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", "--database", str(tmp_path / "none.sqlite3")])
    assert result.exit_code == 2 and "no decision log at" in result.stderr
    result = runner.invoke(app, ["export"])
    assert result.exit_code == 2 and "give --policy" in result.stderr
