"""Reading an export into arrays: arms across policy versions, candidates, named contexts, rewards; bad logs refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from croupier.ope.log import LogError, read_log

from .conftest import simulated_lines, write_lines


def test_a_json_lines_export_reads_into_aligned_arrays(tmp_path: Path) -> None:
    lines = simulated_lines(n=10, unrewarded=2)
    lines[3]["probabilities"] = {"blue": 0.5, "green": 0.0, "red": 0.25, "purple": 0.25}  # a later version's arms
    lines[3]["candidates"] = ["blue", "red", "purple"]
    lines[3]["arm"] = "purple"
    lines.reverse()  # read back in time order
    log = read_log(write_lines(tmp_path / "log.jsonl", lines))
    assert log.arms == ("blue", "green", "red", "purple")
    assert log.decision_ids == tuple(f"d{i:05d}" for i in range(10))
    assert log.feature_names == ("level", "spend")
    assert log.contexts is not None and log.contexts.shape == (10, 2)
    assert log.probabilities[3].tolist() == [0.5, 0.0, 0.25, 0.25]
    assert log.probabilities[0, 3] == 0.0  # an arm the first version did not have
    assert log.candidates[3].tolist() == [True, False, True, True]
    assert log.candidates[0].tolist() == [True, True, True, False]
    assert log.actions[3] == 3 and log.propensities[3] == 0.25
    assert np.isnan(log.rewards[-2:]).all() and log.rewarded.sum() == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"arm": "green", "probabilities": {"blue": 1.0, "green": 0.0, "red": 0.0}}, "has logged probability 0"),
        ({"context": [1.0, 2.0]}, "mixes contexts by feature name and by position"),
        ({"context": {"level": 1.0}}, r"lacks the features \['spend'\]"),
        ({"probabilities": "blue"}, "not a decision record"),
    ],
)
def test_inconsistent_records_are_refused_naming_the_decision(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    lines = simulated_lines(n=5)
    lines[2].update(change)
    with pytest.raises(LogError, match=message):
        read_log(write_lines(tmp_path / "log.jsonl", lines))


def test_unreadable_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "log.jsonl").write_text("{not json\n")
    with pytest.raises(LogError, match=r"log.jsonl:1: not JSON"):
        read_log(tmp_path / "log.jsonl")
    (tmp_path / "log.csv").write_text("a,b\n")
    with pytest.raises(LogError, match=r"unknown log format '\.csv'"):
        read_log(tmp_path / "log.csv")
    with pytest.raises(LogError, match="no decision log at"):
        read_log(tmp_path / "missing.jsonl")
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(LogError, match="empty"):
        read_log(tmp_path / "empty.jsonl")


def test_several_files_merge_into_one_row_per_decision_the_rewarded_record_winning(tmp_path: Path) -> None:
    lines = simulated_lines(n=6)
    mine = [dict(line, reward=None, rewardTimestamp=None) if i == 4 else line for i, line in enumerate(lines[:5])]
    theirs = [lines[4], lines[5]]  # a replica that joined decision 4's reward, and its own decision 5
    log = read_log(write_lines(tmp_path / "a.jsonl", mine), write_lines(tmp_path / "b.jsonl", theirs))
    assert log.decision_ids == tuple(f"d{i:05d}" for i in range(6))
    assert log.rewards[4] == lines[4]["reward"]
    with pytest.raises(LogError, match="no decision log at"):
        read_log(tmp_path / "a.jsonl", tmp_path / "missing.parquet")
