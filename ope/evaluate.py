"""Evaluate candidate policies on a decision log: their distributions, the reward model, every estimator, warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .candidates import Candidate, Mode, distributions
from .estimators import Estimate, Feedback, estimate_all
from .log import DecisionLog
from .reward_model import RewardModel, cross_fitted_predictions


@dataclass(frozen=True)
class Options:
    mode: Mode = Mode.FROZEN
    warmup: float = 0.5
    level: float = 0.95
    reward_model: RewardModel = "ridge"
    folds: int = 5
    resamples: int = 1000
    seed: int = 0
    tiny_propensity: float = 1e-3
    """Logged propensities below this are reported: their weights can dominate an estimate."""
    large_fallback_share: float = 0.2
    """A model-scored candidate whose fallback decides more than this share of the rows is warned about."""
    switch_tau: float | None = None
    """Switch-DR's threshold; None chooses it from the data."""


@dataclass(frozen=True)
class CandidateReport:
    name: str
    source: str
    algorithm: str
    rows: int
    """Rewarded rows the estimates use."""
    logged_value: float
    """Mean logged reward on those rows: the logging policy's own value, for comparison."""
    learned: int
    estimates: list[Estimate]
    warnings: list[str] = field(default_factory=list)
    scoring: ScoringUse | None = None
    """A model-scored candidate: how many rows its logged scores and its fallback decided."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "algorithm": self.algorithm,
            "rows": self.rows,
            "loggedValue": self.logged_value,
            "learnedRewards": self.learned,
            "estimates": [
                {
                    "estimator": e.estimator,
                    "value": _number(e.value),
                    "low": _number(e.low),
                    "high": _number(e.high),
                    "stdError": _number(e.std_error),
                    "interval": e.interval,
                    "effectiveSampleSize": e.effective_sample_size,
                    **({"tau": e.parameter} if e.parameter is not None else {}),
                }
                for e in self.estimates
            ],
            "scoring": None if self.scoring is None else self.scoring.to_json(),
            "warnings": self.warnings,
        }


@dataclass(frozen=True)
class ScoringUse:
    """Which of a model-scored candidate's rewarded rows were evaluated from the log's scores, which by its fallback."""

    scored_rows: int
    """Rows whose logged scores the candidate's exploration and floor turned into its vector."""
    fallback_rows: int
    """Rows without logged scores, given the candidate's fallback vector."""
    fallback: str
    """The candidate's spec.scoring.fallback (Policy or Uniform)."""
    model_versions: list[int]
    """The model versions that gave the scores of the scored rows (empty when the log does not name them)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "scoredRows": self.scored_rows,
            "fallbackRows": self.fallback_rows,
            "fallback": self.fallback,
            "modelVersions": self.model_versions,
        }


def _number(value: float) -> float | None:
    """JSON has no NaN: an undefined estimate is null."""
    return None if math.isnan(value) else value


def evaluate(log: DecisionLog, candidates: list[Candidate], options: Options | None = None) -> list[CandidateReport]:
    options = options or Options()
    return [evaluate_one(log, candidate, options) for candidate in candidates]


def evaluate_one(log: DecisionLog, candidate: Candidate, options: Options) -> CandidateReport:
    dists = distributions(candidate, log, mode=options.mode, warmup=options.warmup)
    rewarded = log.rewarded[dists.rows]
    rows = dists.rows[rewarded]
    warnings: list[str] = []
    skipped = int((~rewarded).sum())
    if skipped:
        warnings.append(f"{skipped} decisions have no joined reward (yet) and are left out")
    if len(rows) < max(2 * options.folds, 10):
        raise ValueError(
            f"{candidate.name}: only {len(rows)} rewarded decisions to evaluate on; need at least "
            f"{max(2 * options.folds, 10)}"
        )
    target = dists.target[rewarded]
    actions, rewards_, logged = log.actions[rows], log.rewards[rows], log.probabilities[rows]
    contexts = None if log.contexts is None else log.contexts[rows]
    predictions = cross_fitted_predictions(
        contexts, actions, rewards_, len(log.arms), kind=options.reward_model, folds=options.folds, seed=options.seed
    )
    feedback = Feedback(actions, rewards_, logged, target, predictions)
    estimates = estimate_all(
        feedback, options.level, resamples=options.resamples, seed=options.seed, tau=options.switch_tau
    )
    warnings += _support_warnings(feedback, dists.unknown_mass[rewarded], dists.unknown_arms, options)
    undefined = [e.estimator for e in estimates if math.isnan(e.value)]
    if undefined:
        warnings.append(
            f"{', '.join(undefined)} undefined: the candidate gives probability 0 to every action the log took"
        )
    ess = estimates[0].effective_sample_size
    if ess < 0.1 * len(rows):
        warnings.append(
            f"the importance weights leave an effective sample size of {ess:.0f} of {len(rows)} rows: the candidate "
            "is far from the logging policy, IPS-type intervals are wide and DM leans on the reward model"
        )
    scoring: ScoringUse | None = None
    if dists.scored is not None:
        scoring = _scoring_use(log, candidate, rows, dists.scored[rewarded])
        warnings += _scoring_warnings(scoring, options)
    return CandidateReport(
        name=candidate.name,
        source=candidate.source,
        algorithm=candidate.algorithm,
        rows=len(rows),
        logged_value=float(rewards_.mean()),
        learned=dists.learned,
        estimates=estimates,
        warnings=warnings,
        scoring=scoring,
    )


def _scoring_use(log: DecisionLog, candidate: Candidate, rows: np.ndarray, scored: np.ndarray) -> ScoringUse:
    spec = candidate.served.spec.scoring
    assert spec is not None
    chosen = rows[scored]
    versions = {v for v in (log.model_versions[row] for row in chosen.tolist()) if v is not None}
    return ScoringUse(
        scored_rows=int(scored.sum()),
        fallback_rows=int((~scored).sum()),
        fallback=str(spec.fallback),
        model_versions=sorted(versions),
    )


def _scoring_warnings(use: ScoringUse, options: Options) -> list[str]:
    total = use.scored_rows + use.fallback_rows
    if use.scored_rows == 0:
        return [
            f"no row of the log has model scores: the candidate's model is not evaluated at all, every one of the "
            f"{total} rows gets its fallback ({use.fallback}) vector"
        ]
    models = (
        f"model version{'s' if len(use.model_versions) > 1 else ''} {', '.join(map(str, use.model_versions))}"
        if use.model_versions
        else "the log's model (its version not logged)"
    )
    warnings = [
        f"{use.scored_rows} of {total} rows are evaluated from the logged scores of {models}, which stand in for the "
        f"candidate's model: the estimate holds for a candidate scoring with the same model version; "
        f"{use.fallback_rows} rows without scores get its fallback ({use.fallback}) vector"
    ]
    if use.fallback_rows > options.large_fallback_share * total:
        warnings.append(
            f"the fallback ({use.fallback}) decides {use.fallback_rows / total:.0%} of the rows: the estimate is "
            "largely the fallback's value, not the model-scored exploration's"
        )
    return warnings


def _support_warnings(
    feedback: Feedback, unknown_mass: np.ndarray, unknown_arms: tuple[str, ...], options: Options
) -> list[str]:
    warnings: list[str] = []
    propensities = feedback.propensities
    tiny = propensities < options.tiny_propensity
    if tiny.any():
        warnings.append(
            f"{int(tiny.sum())} rows have a logged propensity below {options.tiny_propensity:g} (smallest "
            f"{propensities.min():.3g}): their weights can dominate IPS, SNIPS and DR; set "
            "spec.exploration.minProbability on the logging policy"
        )
    unsupported = (feedback.target * (feedback.logged <= 0.0)).sum(axis=1) + unknown_mass
    missing = unsupported > 1e-12
    if missing.any():
        arms = f" (arms the log never has: {list(unknown_arms)})" if unknown_arms else ""
        warnings.append(
            f"missing support: in {int(missing.sum())} of {feedback.size} rows the candidate puts probability on arms "
            f"the logging policy could not choose{arms}, {unsupported.mean():.3g} of its mass on average; IPS and "
            "SNIPS cannot see it (biased low), DM/DR/Switch-DR extrapolate the reward model to arms the log has"
        )
    return warnings
