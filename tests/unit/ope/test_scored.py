"""Model-scored candidates are evaluated from the log's logged scores: their vector is their own exploration and floor
over the eligible arms' scores (the runtime's functions), rows without scores get their fallback, and the estimate moves
with the exploration's parameter the way the known true value does."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from croupier.ope.candidates import CandidateError, Mode, distributions, load_candidate
from croupier.ope.evaluate import Options, evaluate_one
from croupier.ope.log import read_log
from croupier.runtime.policies import build_policy
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.scoring.exploration import epsilon_greedy, inverse_gap, softmax

from .conftest import ARMS, write_lines

FLOOR = 0.05


def rate(score: float) -> float:
    """The reward rate of an arm with this model score: the model ranks the arms right."""
    return 1.0 / (1.0 + math.exp(-2.0 * score))


def scored_lines(
    n: int = 1500, seed: int = 5, *, fallback_every: int = 0, restricted_every: int = 0
) -> list[dict[str, Any]]:
    """A Softmax (temperature 1, floor 0.05) model-scored logging policy over three arms. Every `fallback_every`-th row
    the model did not answer and the uniform fallback decided (no scores); every `restricted_every`-th row the request
    allowed two arms only (the third arm's score is null, its probability 0)."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(n):
        scores = rng.normal(size=3) + np.array([0.4, 0.0, -0.4])
        allowed = [0, 1, 2]
        if restricted_every and i % restricted_every == 1:
            allowed = [0, 2]
        fallback = bool(fallback_every) and i % fallback_every == 0
        p = np.zeros(3)
        if fallback:
            p[allowed] = 1.0 / len(allowed)
        else:
            p[allowed] = apply_floor(softmax([float(scores[a]) for a in allowed], 1.0), FLOOR)
        arm = int(rng.choice(3, p=p))
        reward = float(rng.random() < rate(float(scores[arm])))
        lines.append(
            {
                "decisionId": f"d{i:05d}",
                "timestamp": 1_700_000_000.0 + i,
                "unitId": None,
                "context": {"level": float(scores[0])},
                "candidates": None if len(allowed) == 3 else [ARMS[a] for a in allowed],
                "arm": ARMS[arm],
                "probabilities": dict(zip(ARMS, p.tolist(), strict=True)),
                "propensity": float(p[arm]),
                "policyVersion": "g1-abc",
                "scores": None if fallback else [float(scores[a]) if a in allowed else None for a in range(3)],
                "modelVersion": None if fallback else 3,
                "scoringFallback": "timeout" if fallback else None,
                "reward": reward,
                "rewardTimestamp": 1_700_000_100.0 + i,
                "defaultReward": False,
            }
        )
    return lines


def scored_spec(exploration: dict[str, Any], *, fallback: str = "Uniform", floor: float = FLOOR) -> dict[str, Any]:
    return {
        "scoring": {"modelDeploymentRef": {"name": "ranker"}, "exploration": exploration, "fallback": fallback},
        "exploration": {"minProbability": floor},
        "context": {"features": ["level"]},
    }


def true_value(lines: list[dict[str, Any]], vector: Callable[[list[float]], list[float]]) -> float:
    """The candidate's value on these rows: its vector over the scored rows' scores against the known reward rates."""
    values = []
    for line in lines:
        scores = line["scores"]
        allowed = [a for a in range(3) if scores[a] is not None]
        p = apply_floor(vector([scores[a] for a in allowed]), FLOOR)
        values.append(sum(q * rate(scores[a]) for q, a in zip(p, allowed, strict=True)))
    return float(np.mean(values))


def test_scores_and_model_versions_are_read_from_json_lines_and_parquet(tmp_path: Path) -> None:
    lines = scored_lines(40, fallback_every=4, restricted_every=4)
    jsonl = read_log(write_lines(tmp_path / "scored.jsonl", lines))
    columns: dict[str, list[Any]] = {
        "decisionId": [], "timestamp": [], "arm": [], "arms": [], "probabilities": [], "candidates": [],
        "policyVersion": [], "scores": [], "modelVersion": [], "reward": [], "defaultReward": [],
    }  # fmt: skip
    for line in lines:
        for name in ("decisionId", "timestamp", "arm", "candidates", "policyVersion", "scores", "modelVersion"):
            columns[name].append(line[name])
        columns["arms"].append(list(line["probabilities"]))
        columns["probabilities"].append(list(line["probabilities"].values()))
        columns["reward"].append(line["reward"])
        columns["defaultReward"].append(False)
    pq.write_table(pa.table(columns), tmp_path / "scored.parquet")
    parquet = read_log(tmp_path / "scored.parquet")
    for log in (jsonl, parquet):
        assert log.scores.shape == (40, 3)
        assert np.isnan(log.scores[0]).all() and log.model_versions[0] is None  # the fallback decided
        assert np.isnan(log.scores[1, 1]) and not np.isnan(log.scores[1, [0, 2]]).any()  # green was not allowed
        assert log.scores[2].tolist() == pytest.approx(lines[2]["scores"])
        assert log.model_versions[2] == 3
        assert log.take(np.arange(2, 4)).model_versions == (3, 3)
    assert np.array_equal(jsonl.scores, parquet.scores, equal_nan=True)


def test_a_log_without_scores_reads_as_nan(log_file: Path) -> None:
    log = read_log(log_file)
    assert log.scores.shape == (log.size, 3) and np.isnan(log.scores).all()
    assert set(log.model_versions) == {None}


@pytest.mark.parametrize(
    ("exploration", "vector"),
    [
        ({"type": "Softmax", "softmax": {"temperature": 0.3}}, lambda s: softmax(s, 0.3)),
        ({"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.3}}, lambda s: epsilon_greedy(s, 0.3)),
        ({"type": "InverseGap", "inverseGap": {"gamma": 20.0}}, lambda s: inverse_gap(s, 20.0)),
    ],
)
def test_the_vector_is_the_candidates_exploration_and_floor_over_the_logged_scores(
    tmp_path: Path,
    make_policy: Callable[..., Path],
    exploration: dict[str, Any],
    vector: Callable[[list[float]], list[float]],
) -> None:
    lines = scored_lines(60, fallback_every=5, restricted_every=3)
    log = read_log(write_lines(tmp_path / "scored.jsonl", lines))
    candidate = load_candidate(make_policy(**scored_spec(exploration, floor=0.1)))
    dists = distributions(candidate, log, mode=Mode.ONLINE)
    assert dists.scored is not None
    for row, line in enumerate(lines):
        if line["scores"] is None:  # the Uniform fallback over the request's arms
            assert not dists.scored[row]
            allowed = [a for a in range(3) if line["probabilities"][ARMS[a]] > 0]
            expected = np.zeros(3)
            expected[allowed] = 1.0 / len(allowed)
        else:
            assert dists.scored[row]
            allowed = [a for a in range(3) if line["scores"][a] is not None]
            expected = np.zeros(3)
            expected[allowed] = apply_floor(vector([line["scores"][a] for a in allowed]), 0.1)
        assert dists.target[row] == pytest.approx(expected.tolist(), abs=1e-12), row
    assert int(dists.scored.sum()) == 48


def test_rows_without_scores_get_the_policy_fallback_which_learns(
    tmp_path: Path, make_policy: Callable[..., Path]
) -> None:
    lines = scored_lines(100, fallback_every=4)
    log = read_log(write_lines(tmp_path / "scored.jsonl", lines))
    spec = scored_spec({"type": "Softmax"}, fallback="Policy")
    spec["algorithm"] = {"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.2}}
    dists = distributions(load_candidate(make_policy(**spec)), log, mode=Mode.ONLINE)
    assert dists.learned == 100
    reference = build_policy("EpsilonGreedy", {"epsilon": 0.2}, ARMS, min_probability=FLOOR)
    assert dists.scored is not None
    for row in range(100):
        if row % 4 == 0:
            assert not dists.scored[row]
            assert dists.target[row] == pytest.approx(reference.probabilities().tolist()), row
        else:
            assert dists.scored[row]
        reference.update(int(log.actions[row]), float(log.rewards[row]))


def test_a_candidate_arm_the_logging_model_did_not_score_is_refused(
    tmp_path: Path, make_policy: Callable[..., Path]
) -> None:
    log = read_log(write_lines(tmp_path / "scored.jsonl", scored_lines(30)))
    spec = scored_spec({"type": "Softmax"})
    spec["arms"] = [{"name": arm} for arm in [*ARMS, "purple"]]
    with pytest.raises(CandidateError, match=r"did not score the candidate's arms \['purple'\]"):
        distributions(load_candidate(make_policy(**spec)), log, mode=Mode.FROZEN)


Exploring = tuple[dict[str, Any], Callable[[list[float]], list[float]]]


@pytest.mark.parametrize(
    ("greedy", "exploring"),
    [
        (
            ({"type": "Softmax", "softmax": {"temperature": 0.25}}, lambda s: softmax(s, 0.25)),
            ({"type": "Softmax", "softmax": {"temperature": 4.0}}, lambda s: softmax(s, 4.0)),
        ),
        (
            ({"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.05}}, lambda s: epsilon_greedy(s, 0.05)),
            ({"type": "EpsilonGreedy", "epsilonGreedy": {"epsilon": 0.8}}, lambda s: epsilon_greedy(s, 0.8)),
        ),
        (
            ({"type": "InverseGap", "inverseGap": {"gamma": 100.0}}, lambda s: inverse_gap(s, 100.0)),
            ({"type": "InverseGap", "inverseGap": {"gamma": 1.0}}, lambda s: inverse_gap(s, 1.0)),
        ),
    ],
    ids=["temperature", "epsilon", "gamma"],
)
def test_a_greedier_exploration_estimates_higher_as_its_true_value_is(
    tmp_path: Path, make_policy: Callable[..., Path], greedy: Exploring, exploring: Exploring
) -> None:
    lines = scored_lines()
    log = read_log(write_lines(tmp_path / "scored.jsonl", lines))
    options = Options(mode=Mode.ONLINE, resamples=100)
    evaluated = lines  # online mode evaluates every row
    estimates = {}
    for name, (exploration, vector) in (("greedy", greedy), ("exploring", exploring)):
        report = evaluate_one(log, load_candidate(make_policy(name, **scored_spec(exploration))), options)
        truth = true_value(evaluated, vector)
        by_name = {e.estimator: e for e in report.estimates}
        for estimator in ("IPS", "DR"):
            e = by_name[estimator]
            assert abs(e.value - truth) < 3 * e.std_error, (name, estimator, e.value, truth)
        estimates[name] = (by_name["DR"].value, truth)
        ips, dr = by_name["IPS"], by_name["DR"]  # the rows of docs/ope.md's table (pytest -s prints them)
        print(
            f"\n{exploration} true {truth:.4f} IPS {ips.value:.4f} ± {ips.std_error:.4f}",
            f"DR {dr.value:.4f} ± {dr.std_error:.4f}",
        )
        assert report.scoring is not None and report.scoring.scored_rows == len(lines)
    (greedy_estimate, greedy_truth), (exploring_estimate, exploring_truth) = estimates["greedy"], estimates["exploring"]
    assert greedy_truth > exploring_truth + 0.05
    assert greedy_estimate > exploring_estimate


def test_the_report_counts_scored_and_fallback_rows_and_names_the_model_version(
    tmp_path: Path, make_policy: Callable[..., Path], log_file: Path
) -> None:
    log = read_log(write_lines(tmp_path / "scored.jsonl", scored_lines(200, fallback_every=2)))
    candidate = load_candidate(make_policy(**scored_spec({"type": "Softmax"})))
    report = evaluate_one(log, candidate, Options(mode=Mode.ONLINE, resamples=50))
    assert report.scoring is not None
    assert report.to_json()["scoring"] == {
        "scoredRows": 100,
        "fallbackRows": 100,
        "fallback": "Uniform",
        "modelVersions": [3],
    }
    assert any("logged scores of model version 3, which stand in" in w for w in report.warnings)
    assert any("the fallback (Uniform) decides 50% of the rows" in w for w in report.warnings)

    few = read_log(write_lines(tmp_path / "few.jsonl", scored_lines(200, fallback_every=20)))
    report = evaluate_one(few, candidate, Options(mode=Mode.ONLINE, resamples=50))
    assert not any("the fallback (Uniform) decides" in w for w in report.warnings)

    report = evaluate_one(read_log(log_file), candidate, Options(resamples=50))
    assert report.scoring is not None and report.scoring.scored_rows == 0
    assert any(w.startswith("no row of the log has model scores") for w in report.warnings)


def test_a_candidate_without_scoring_reports_no_scoring(log_file: Path, make_policy: Callable[..., Path]) -> None:
    report = evaluate_one(read_log(log_file), load_candidate(make_policy()), Options(resamples=50))
    assert report.scoring is None and report.to_json()["scoring"] is None
