"""The reward model of DM and the doubly robust estimators: one scikit-learn regressor per arm on the context,
cross-fitted so that no row is scored by a model that saw its reward.

The rows are split into `folds` folds (shuffled, seeded); the predictions for the rows of fold k come from models fit on
the other folds, one per arm on the rows where that arm was chosen. An arm with fewer than two training rows in a fold
predicts the mean reward of its training rows (the mean of all training rows when it has none). Without a context
every arm's model is its mean reward.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from sklearn.base import RegressorMixin, clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import Ridge
from sklearn.model_selection import KFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .log import FloatArray, IntArray

RewardModel = Literal["ridge", "gradient-boosting"]
REWARD_MODELS: tuple[RewardModel, ...] = ("ridge", "gradient-boosting")


def regressor(kind: RewardModel) -> Any:
    """The scikit-learn estimator fit per arm: standardised ridge regression, or histogram gradient boosting."""
    if kind == "ridge":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0))
    if kind == "gradient-boosting":
        return HistGradientBoostingRegressor(max_iter=100, random_state=0)
    raise ValueError(f"unknown reward model {kind!r}; expected one of {', '.join(REWARD_MODELS)}")


def cross_fitted_predictions(
    contexts: FloatArray | None,
    actions: IntArray,
    rewards: FloatArray,
    n_arms: int,
    *,
    kind: RewardModel = "ridge",
    folds: int = 5,
    seed: int = 0,
) -> FloatArray:
    """(n, n_arms) predicted rewards: row i's come from models that did not see row i."""
    n = len(actions)
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if n < folds:
        raise ValueError(f"{n} rewarded rows are too few for {folds} folds of cross-fitting")
    template = regressor(kind)
    predictions = np.empty((n, n_arms))
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(np.arange(n)):
        fallback = float(rewards[train].mean())
        for arm in range(n_arms):
            rows = train[actions[train] == arm]
            if contexts is None or len(rows) < 2:
                predictions[test, arm] = float(rewards[rows].mean()) if len(rows) else fallback
                continue
            model: RegressorMixin = clone(template)
            model.fit(contexts[rows], rewards[rows])
            predictions[test, arm] = model.predict(contexts[test])
    return predictions
