"""The estimators: exact identities on constructed feedback, and the known answer of scikit-learn's digits turned into
bandit feedback (the target policy's true value is computed from the labels)."""

from __future__ import annotations

import numpy as np
import pytest

from croupier.ope.estimators import (
    BOOTSTRAP,
    NORMAL,
    Feedback,
    dm,
    dr,
    effective_sample_size,
    estimate_all,
    ips,
    sndr,
    snips,
    switch_dr,
    switch_threshold,
)
from croupier.ope.reward_model import cross_fitted_predictions
from croupier.ope.supervised import digits_bandit


def _feedback(n: int = 400, seed: int = 0, *, same_policy: bool = False) -> Feedback:
    rng = np.random.default_rng(seed)
    logged = rng.dirichlet(np.ones(4), size=n) * 0.8 + 0.05
    target = logged if same_policy else rng.dirichlet(np.ones(4) * 0.5, size=n)
    actions = np.array([rng.choice(4, p=p) for p in logged])
    means = np.array([0.1, 0.4, 0.6, 0.9])
    rewards = (rng.random(n) < means[actions]).astype(float)
    return Feedback(actions, rewards, logged, target, np.tile(means, (n, 1)))


def test_on_policy_every_weight_is_one_and_ips_is_the_mean_reward() -> None:
    feedback = _feedback(same_policy=True)
    mean = feedback.rewards.mean()
    assert ips(feedback).value == pytest.approx(mean)
    assert snips(feedback).value == pytest.approx(mean)
    assert ips(feedback).effective_sample_size == pytest.approx(feedback.size)
    assert sndr(feedback).value == pytest.approx(dr(feedback).value)


def test_normal_intervals_are_value_plus_minus_z_standard_errors() -> None:
    feedback = _feedback()
    estimate = ips(feedback, level=0.9)
    terms = feedback.weights * feedback.rewards
    assert estimate.std_error == pytest.approx(terms.std(ddof=1) / np.sqrt(feedback.size))
    assert estimate.high - estimate.value == pytest.approx(1.6448536 * estimate.std_error)
    assert estimate.interval == NORMAL


def test_with_the_true_reward_means_dm_is_exact_and_dr_only_adds_centred_noise() -> None:
    feedback = _feedback()
    assert feedback.predictions is not None
    truth = float((feedback.target * feedback.predictions).sum(axis=1).mean())
    assert dm(feedback).value == pytest.approx(truth)
    assert dm(feedback).interval == BOOTSTRAP
    assert abs(dr(feedback).value - truth) < 2.5 * dr(feedback).std_error


def test_switch_dr_is_dr_without_a_threshold_and_dm_with_a_zero_one() -> None:
    feedback = _feedback()
    assert switch_dr(feedback, tau=np.inf).value == pytest.approx(dr(feedback).value)
    assert switch_dr(feedback, tau=0.0).value == pytest.approx(dm(feedback).value)
    assert switch_dr(feedback).parameter == switch_threshold(feedback)


def test_switch_dr_drops_the_correction_of_huge_weights() -> None:
    feedback = _feedback()
    logged = feedback.logged.copy()
    logged[:, 0] = 1e-4  # the candidate likes arm 0, which the logger almost never plays
    logged /= logged.sum(axis=1, keepdims=True)
    target = np.zeros_like(logged)
    target[:, 0] = 1.0
    actions = np.where(feedback.actions == 0, 1, feedback.actions)
    actions[:2] = 0  # two rows with weights near 10^4
    skewed = Feedback(actions, feedback.rewards, logged, target, feedback.predictions)
    tau = switch_threshold(skewed)
    assert tau < skewed.weights.max()
    assert switch_dr(skewed).std_error < dr(skewed).std_error / 2
    assert effective_sample_size(skewed.weights) < 3


def test_bad_shapes_and_impossible_actions_are_refused() -> None:
    feedback = _feedback(n=10)
    with pytest.raises(ValueError, match="inconsistent shapes"):
        Feedback(feedback.actions, feedback.rewards, feedback.logged, feedback.target[:, :3])
    logged = feedback.logged.copy()
    logged[0, feedback.actions[0]] = 0.0
    with pytest.raises(ValueError, match="logged probability 0"):
        Feedback(feedback.actions, feedback.rewards, logged, feedback.target)
    with pytest.raises(ValueError, match="no rewarded rows"):
        Feedback(feedback.actions[:0], feedback.rewards[:0], feedback.logged[:0], feedback.target[:0])
    with pytest.raises(ValueError, match="needs reward model predictions"):
        dr(Feedback(feedback.actions, feedback.rewards, feedback.logged, feedback.target))


def test_on_digits_ips_covers_the_truth_at_about_its_nominal_rate_and_is_unbiased() -> None:
    bandit = digits_bandit()
    truth = bandit.true_value
    estimates = [ips(bandit.feedback(seed)) for seed in range(40)]
    values = np.array([e.value for e in estimates])
    covered = sum(e.low <= truth <= e.high for e in estimates)
    assert covered >= 34  # nominal 95 %: 38 of 40 expected; fewer than 34 has probability < 0.3 %
    # unbiased: the mean of 40 independent estimates is within 3 of its standard errors of the truth
    assert abs(values.mean() - truth) < 3 * values.std(ddof=1) / np.sqrt(len(values))


def test_on_digits_dr_errs_less_than_ips() -> None:
    bandit = digits_bandit()
    truth = bandit.true_value
    ips_errors, dr_errors = [], []
    for seed in range(6):
        actions, rewards = bandit.logged(seed)
        predictions = cross_fitted_predictions(bandit.contexts, actions, rewards, 10, seed=seed)
        feedback = bandit.feedback(seed, predictions)
        ips_errors.append(abs(ips(feedback).value - truth))
        dr_errors.append(abs(dr(feedback).value - truth))
        assert [e.estimator for e in estimate_all(feedback, resamples=100)] == [
            "IPS", "SNIPS", "DM", "DR", "SNDR", "SwitchDR",
        ]  # fmt: skip
    assert np.mean(dr_errors) < np.mean(ips_errors)
