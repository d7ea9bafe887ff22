"""The gradient-boosting reward model (scikit-learn runs it on joblib worker threads, hence not a unit test)."""

from __future__ import annotations

import numpy as np
import pytest

from croupier.ope.reward_model import cross_fitted_predictions

pytestmark = pytest.mark.integration


def test_gradient_boosting_is_cross_fitted_and_learns_the_signal() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 3))
    actions = rng.integers(0, 2, 300)
    rewards = np.where(actions == 0, x[:, 0], -x[:, 1]) + rng.normal(0, 0.1, 300)
    before = cross_fitted_predictions(x, actions, rewards, 2, kind="gradient-boosting", seed=3)
    changed = rewards.copy()
    changed[17] += 1000.0
    after = cross_fitted_predictions(x, actions, changed, 2, kind="gradient-boosting", seed=3)
    assert np.array_equal(before[17], after[17])
    assert not np.allclose(before, after)
    truth = np.column_stack([x[:, 0], -x[:, 1]])
    assert np.corrcoef(before.ravel(), truth.ravel())[0, 1] > 0.9
