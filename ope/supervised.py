"""A bandit problem with a known answer: scikit-learn's digits turned into logged bandit feedback.

Each image is a context, the ten digits are the arms, the reward is 1 when the chosen arm is the image's label. Two
logistic regressions fit on a fixed training split (a small one for the logging policy, a larger one for the target
policy) give softmax policies mixed with uniform exploration, so every propensity is known exactly. The evaluation
split's contexts are fixed: the target policy's true value there is `mean_i pi(y_i | x_i)`, computable from the labels.
A seed draws the logging policy's actions (and nothing else), so estimates across seeds scatter around one truth.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from .estimators import Feedback
from .log import FloatArray, IntArray


@dataclass(frozen=True)
class SupervisedBandit:
    contexts: FloatArray
    labels: IntArray
    logging: FloatArray
    """(n, 10): the logging policy's probabilities."""
    target: FloatArray
    """(n, 10): the evaluated policy's probabilities."""

    @property
    def true_value(self) -> float:
        return float(self.target[np.arange(len(self.labels)), self.labels].mean())

    def logged(self, seed: int) -> tuple[IntArray, FloatArray]:
        """The logging policy's actions and their rewards for one seed."""
        rng = np.random.default_rng(seed)
        cumulative = self.logging.cumsum(axis=1)
        u = rng.random(len(self.labels))[:, None]
        actions = np.minimum((u >= cumulative).sum(axis=1), self.logging.shape[1] - 1)
        return actions, (actions == self.labels).astype(np.float64)

    def feedback(self, seed: int, predictions: FloatArray | None = None) -> Feedback:
        actions, rewards = self.logged(seed)
        return Feedback(actions, rewards, self.logging, self.target, predictions)


def _softmax(scores: FloatArray, temperature: float, uniform: float) -> FloatArray:
    z = scores / temperature
    z = np.exp(z - z.max(axis=1, keepdims=True))
    probabilities: FloatArray = (1.0 - uniform) * z / z.sum(axis=1, keepdims=True) + uniform / scores.shape[1]
    return probabilities


@cache
def digits_bandit(
    *, logging_temperature: float = 1.0, logging_uniform: float = 0.2, target_temperature: float = 0.25
) -> SupervisedBandit:
    """The digits problem (1797 images; 1078 evaluated). The logging policy is a logistic regression fit on 150 images,
    softmax at `logging_temperature` mixed with `logging_uniform` of uniform; the target one is fit on 569 images,
    softmax at `target_temperature` with 5 % uniform."""
    data = load_digits()
    x, y = data.data / 16.0, data.target.astype(np.int64)
    rest_x, test_x, rest_y, test_y = train_test_split(x, y, test_size=0.6, random_state=0, stratify=y)
    logging_model = LogisticRegression(max_iter=2000).fit(rest_x[:150], rest_y[:150])
    target_model = LogisticRegression(max_iter=2000).fit(rest_x[150:], rest_y[150:])
    return SupervisedBandit(
        contexts=test_x,
        labels=test_y,
        logging=_softmax(logging_model.decision_function(test_x), logging_temperature, logging_uniform),
        target=_softmax(target_model.decision_function(test_x), target_temperature, 0.05),
    )


@dataclass(frozen=True)
class SweepRow:
    estimator: str
    coverage: float
    """Share of seeds whose interval holds the true value."""
    bias: float
    """Mean estimate minus the truth."""
    bias_std_error: float
    """Standard error of that mean (the spread of the estimates over the square root of the number of seeds)."""
    mean_absolute_error: float
    mean_width: float


def sweep(seeds: int, *, level: float = 0.95, resamples: int = 1000) -> tuple[float, list[SweepRow]]:
    """Every estimator on `seeds` logs of the digits problem (ridge reward model, 5-fold cross-fitting):
    `(true value, one row per estimator)`."""
    from .estimators import estimate_all  # noqa: PLC0415
    from .reward_model import cross_fitted_predictions  # noqa: PLC0415

    bandit = digits_bandit()
    truth = bandit.true_value
    found: dict[str, list[tuple[float, float, float]]] = {}
    for seed in range(seeds):
        actions, rewards = bandit.logged(seed)
        predictions = cross_fitted_predictions(bandit.contexts, actions, rewards, 10, seed=seed)
        for e in estimate_all(bandit.feedback(seed, predictions), level, resamples=resamples, seed=seed):
            found.setdefault(e.estimator, []).append((e.value, e.low, e.high))
    rows = []
    for name, triples in found.items():
        values, lows, highs = (np.array(column) for column in zip(*triples, strict=True))
        rows.append(
            SweepRow(
                name,
                float(((lows <= truth) & (truth <= highs)).mean()),
                float(values.mean() - truth),
                float(values.std(ddof=1) / np.sqrt(len(values))),
                float(np.abs(values - truth).mean()),
                float((highs - lows).mean()),
            )
        )
    return truth, rows


def main() -> None:
    import argparse  # noqa: PLC0415

    parser = argparse.ArgumentParser(description="The estimators on the digits bandit problem across seeds.")
    parser.add_argument("--seeds", type=int, default=100)
    parser.add_argument("--level", type=float, default=0.95)
    args = parser.parse_args()
    truth, rows = sweep(args.seeds, level=args.level)
    print(f"true value {truth:.4f}; {args.seeds} seeds; {args.level:.0%} intervals")
    print("| estimator | coverage | bias (± s.e.) | mean abs. error | mean width |")
    print("|-----------|---------:|--------------:|----------------:|-----------:|")
    for r in rows:
        print(
            f"| {r.estimator} | {r.coverage:.2f} | {r.bias:+.4f} (± {r.bias_std_error:.4f}) | "
            f"{r.mean_absolute_error:.4f} | {r.mean_width:.4f} |"
        )


if __name__ == "__main__":
    main()
