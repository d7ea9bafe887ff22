"""A candidate's distributions come from the runtime's policy code; frozen and online learning replay the log in time
order; logs the candidate cannot read are refused with a reason (model-scored candidates: test_scored.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from croupier.ope.candidates import CandidateError, Mode, distributions, load_candidate
from croupier.ope.evaluate import Options, evaluate
from croupier.ope.log import read_log
from croupier.runtime.policies import build_policy


def test_frozen_mode_learns_the_warm_up_rows_then_scores_the_rest(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    log = read_log(log_file)
    candidate = load_candidate(make_policy())
    dists = distributions(candidate, log, mode=Mode.FROZEN, warmup=0.25)
    start = int(0.25 * log.size)
    assert dists.rows.tolist() == list(range(start, log.size))
    reference = build_policy("EpsilonGreedy", {"epsilon": 0.2}, ["blue", "green", "red"])
    for row in range(start):
        reference.update(int(log.actions[row]), float(log.rewards[row]))
    assert dists.learned == start
    assert np.allclose(dists.target, reference.probabilities())  # frozen: every evaluated row has the same vector
    assert dists.target.max() == pytest.approx(0.8 + 0.2 / 3)


def test_online_mode_scores_each_row_with_what_the_rows_before_it_taught(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    log = read_log(log_file)
    spec = {
        "algorithm": {"type": "LinUCB", "linUCB": {"alpha": 0.5}},
        "context": {"features": ["spend", "level"], "intercept": True},  # another order than the log's
        "reward": {"type": "Continuous"},
        "exploration": {"minProbability": 0.05},
    }
    dists = distributions(load_candidate(make_policy(**spec)), log, mode=Mode.ONLINE)
    assert len(dists.rows) == log.size
    assert dists.learned == int(log.rewarded.sum())
    reference = build_policy("LinUCB", {"alpha": 0.5}, ["blue", "green", "red"], dimension=3, min_probability=0.05)
    assert log.contexts is not None and log.feature_names == ("level", "spend")
    for row in range(200):
        x = np.array([log.contexts[row, 1], log.contexts[row, 0], 1.0])
        assert np.allclose(dists.target[row], reference.probabilities(x)), row
        reference.update(int(log.actions[row]), float(log.rewards[row]), x)
    assert dists.target.min() >= 0.05 - 1e-12


def test_a_paused_candidate_learns_nothing(log_file: Path, make_policy: Callable[..., Path]) -> None:
    dists = distributions(load_candidate(make_policy(paused=True)), read_log(log_file), mode=Mode.ONLINE)
    assert dists.learned == 0
    assert np.allclose(dists.target, 1 / 3)


def test_a_candidate_needing_features_the_log_lacks_is_refused(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    spec = {
        "algorithm": {"type": "LinUCB"},
        "context": {"features": ["level", "country"]},
        "reward": {"type": "Continuous"},
    }
    with pytest.raises(CandidateError, match=r"lack the features \['country'\]"):
        distributions(load_candidate(make_policy(**spec)), read_log(log_file), mode=Mode.FROZEN)


def test_an_invalid_manifest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("kind: Deployment\n")
    with pytest.raises(CandidateError, match="expected 'DecisionPolicy'"):
        load_candidate(path)


def test_mass_on_arms_the_log_never_had_is_reported_as_missing_support(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    arms = [{"name": name} for name in ("blue", "green", "red", "purple")]
    candidate = load_candidate(make_policy(arms=arms))
    log = read_log(log_file)
    dists = distributions(candidate, log, mode=Mode.FROZEN, warmup=0.5)
    assert dists.unknown_arms == ("purple",)
    assert (dists.unknown_mass > 0).all()
    (report,) = evaluate(log, [candidate], Options(resamples=100))
    assert any("missing support" in w and "purple" in w for w in report.warnings)
    assert any("no joined reward" in w for w in report.warnings)


def test_a_close_candidate_has_no_support_warning_and_its_estimates_agree(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    (report,) = evaluate(read_log(log_file), [load_candidate(make_policy())], Options(resamples=200))
    assert not any("missing support" in w or "below" in w for w in report.warnings)
    assert [e.estimator for e in report.estimates] == ["IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR"]
    for estimate in report.estimates:
        assert estimate.low <= estimate.value <= estimate.high
        assert 0.0 < estimate.value < 1.0
    ips, dr = report.estimates[0], report.estimates[3]
    assert abs(ips.value - dr.value) < 2 * ips.std_error
    assert report.rows == 300 - 20


def test_a_candidate_that_never_plays_a_logged_arm_gets_undefined_self_normalised_estimates(
    log_file: Path, make_policy: Callable[..., Path]
) -> None:
    arms = [{"name": name} for name in ("blue", "purple")]
    candidate = load_candidate(make_policy(arms=arms, algorithm={"type": "UCB1"}))  # plays the untried purple
    log = read_log(log_file)
    (report,) = evaluate(log, [candidate], Options(resamples=100, warmup=0.2))
    by_name = {e.estimator: e for e in report.estimates}
    assert by_name["IPS"].value == 0.0
    assert np.isnan(by_name["SNIPS"].value)
    assert report.to_json()["estimates"][1]["value"] is None
    assert any("SNIPS, SNDR undefined" in w for w in report.warnings)
