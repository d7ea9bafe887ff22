"""The cross-fitted reward model: no row is scored by a model that saw its reward; both regressors learn the signal."""

from __future__ import annotations

import numpy as np
import pytest

from croupier.ope.reward_model import cross_fitted_predictions


def _data(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    actions = rng.integers(0, 2, n)
    rewards = np.where(actions == 0, x[:, 0], -x[:, 1]) + rng.normal(0, 0.1, n)
    return x, actions, rewards


def test_a_rows_prediction_does_not_depend_on_its_own_reward(kind: str = "ridge") -> None:
    """Ridge here; gradient boosting runs joblib worker threads: tests/integration/ope/test_gradient_boosting.py."""
    x, actions, rewards = _data()
    before = cross_fitted_predictions(x, actions, rewards, 2, kind=kind, seed=3)  # type: ignore[arg-type]
    changed = rewards.copy()
    changed[17] += 1000.0
    after = cross_fitted_predictions(x, actions, changed, 2, kind=kind, seed=3)  # type: ignore[arg-type]
    assert np.array_equal(before[17], after[17])
    assert not np.allclose(before, after)  # the other folds' models did see it
    truth = np.column_stack([x[:, 0], -x[:, 1]])
    assert np.corrcoef(before.ravel(), truth.ravel())[0, 1] > 0.9


def test_without_context_each_arm_predicts_its_training_mean_and_bad_settings_are_refused() -> None:
    _, actions, rewards = _data()
    predictions = cross_fitted_predictions(None, actions, rewards, 3, folds=2)
    assert np.allclose(predictions[:, 0], rewards[actions == 0].mean(), atol=0.2)
    assert len(np.unique(predictions[:, 2])) == 2  # an arm never played: each fold's overall training mean
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_fitted_predictions(None, actions, rewards, 2, folds=1)
    with pytest.raises(ValueError, match="too few for 5 folds"):
        cross_fitted_predictions(None, actions[:3], rewards[:3], 2)
    with pytest.raises(ValueError, match="unknown reward model 'forest'"):
        cross_fitted_predictions(None, actions, rewards, 2, kind="forest")  # type: ignore[arg-type]
