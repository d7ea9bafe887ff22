"""A candidate DecisionPolicy's action distribution in every logged context, from the runtime's own policy code.

The candidate is built exactly as a runtime builds it (`croupier.runtime.decisions.engine.build_engine`: algorithm,
parameters, priors, context and intercept, `exploration.minProbability`), and its distribution is the floored vector
`Policy.probabilities` computes, the one a runtime samples from. Over the arms the request allowed: the logged
candidates that the candidate policy has (all its arms when the request named none).

A learning policy's distribution depends on what it learned. Two modes:

- `frozen` (default): the candidate learns the logged rewards of the first `warmup` fraction of the log (in time order,
  the chosen arm with its reward and context), then stops learning; the estimators use the remaining rows only. The
  estimate is the value of that one frozen policy, and its interval is the estimator's.
- `online`: the candidate learns every logged reward in time order, and row t is scored with what it learned from rows
  before t. Each row's distribution depends on earlier rows only, so the importance-weighted terms stay unbiased one
  by one; the estimate is the average value of the sequence of policies. They learn from the logging policy's choices,
  not from their own: this is the candidate as if it had been fed this traffic, not a simulation of its own
  exploration.

A paused candidate (`spec.paused`) never learns. Rewards of arms the candidate does not have are not learned.

A model-scored candidate (`spec.scoring`) is evaluated from the log's logged scores, which stand in for its model: in
a row the logging policy's model scored, its vector is its own exploration over the eligible arms' logged scores
(`croupier.runtime.scoring.exploration.exploration_of`), floored at its `exploration.minProbability`
(`apply_floor`), exactly what `Scorer.vector` serves for the same model answers. A row without scores (the logging
policy was not scored, or its fallback decided) gets the candidate's fallback vector: Uniform over the eligible arms,
or (Policy) its algorithm's own vector, which learns as any candidate's does. Valid for a candidate that scores with
the same model version (and arm features) as the log; another model would need the log re-scored, which is not built.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import numpy as np

from croupier.api.decisionpolicy import ScoringFallback
from croupier.runtime.decisions.engine import PolicyEngine, build_engine
from croupier.runtime.errors import PolicyConfigError, PolicyError
from croupier.runtime.policies.floor import apply_floor
from croupier.runtime.policy_file import ServedPolicy, load_policy
from croupier.runtime.scoring.exploration import Exploration, exploration_of

from .log import BoolArray, DecisionLog, FloatArray


class Mode(StrEnum):
    FROZEN = "frozen"
    ONLINE = "online"


class CandidateError(ValueError):
    """The candidate cannot be evaluated on this log; the message says why."""


@dataclass(frozen=True)
class Candidate:
    name: str
    source: str
    served: ServedPolicy

    @property
    def algorithm(self) -> str:
        return str(self.served.spec.algorithm.type)


def load_candidate(path: Path) -> Candidate:
    try:
        served = load_policy(path)
    except PolicyConfigError as exc:
        raise CandidateError(str(exc)) from exc
    return candidate_of(served, str(path))


def candidate_of(served: ServedPolicy, source: str) -> Candidate:
    return Candidate(served.name, source, served)


@dataclass(frozen=True)
class Distributions:
    """The candidate's vectors over the log's arms, for the rows it is evaluated on."""

    rows: np.ndarray
    """Indexes of the evaluated rows in the log."""
    target: FloatArray
    """(len(rows), K) over the log's arms."""
    unknown_mass: FloatArray
    """Per evaluated row, the candidate's probability on arms the log does not have (the estimators cannot see it)."""
    unknown_arms: tuple[str, ...]
    learned: int
    """How many logged rewards the candidate learned."""
    scored: BoolArray | None = None
    """A model-scored candidate: per evaluated row, whether its vector came from the logged scores (False: from its
    fallback). None for a candidate without spec.scoring."""


def _context_columns(candidate: Candidate, log: DecisionLog) -> list[int] | None:
    served = candidate.served
    if not served.contextual:
        return None
    size = served.context_size
    if log.contexts is None:
        raise CandidateError(f"{candidate.source}: {candidate.algorithm} needs a context; the log has none")
    names = served.feature_names
    if names is not None and log.feature_names is not None:
        missing = [name for name in names if name not in log.feature_names]
        if missing:
            raise CandidateError(
                f"{candidate.source}: the log's contexts lack the features {missing} (it has {list(log.feature_names)})"
            )
        return [log.feature_names.index(name) for name in names]
    if log.contexts.shape[1] != size:
        raise CandidateError(
            f"{candidate.source}: the candidate takes {size} context values by position, the log has "
            f"{log.contexts.shape[1]}"
        )
    return list(range(size))


def distributions(candidate: Candidate, log: DecisionLog, *, mode: Mode, warmup: float = 0.5) -> Distributions:
    """The candidate's distribution per row (all rows in `online` mode, those after the warm-up in `frozen` mode)."""
    if not 0.0 <= warmup < 1.0:
        raise CandidateError(f"warmup must be a fraction in [0, 1), got {warmup}")
    engine = build_engine(candidate.served, seed=0)
    assert isinstance(engine, PolicyEngine)
    policy = engine.policy
    columns = _context_columns(candidate, log)
    own = list(policy.arms)
    in_log = {name: log.arms.index(name) for name in own if name in log.arms}
    unknown = tuple(name for name in own if name not in in_log)
    to_log = np.array([in_log.get(name, -1) for name in own])
    own_of_log = {int(index): i for i, index in enumerate(to_log) if index >= 0}
    learns = not candidate.served.spec.paused
    scoring = candidate.served.spec.scoring
    explore: Exploration | None = None if scoring is None else exploration_of(scoring.exploration)
    uniform_fallback = scoring is not None and scoring.fallback == ScoringFallback.UNIFORM
    floor = candidate.served.spec.exploration.min_probability
    start = int(warmup * log.size) if mode is Mode.FROZEN else 0
    learned = 0

    def context(row: int) -> np.ndarray | None:
        if columns is None or log.contexts is None:
            return None
        values: np.ndarray = log.contexts[row, columns]
        return values

    def learn(row: int) -> None:
        nonlocal learned
        reward = log.rewards[row]
        arm = own_of_log.get(int(log.actions[row]))
        if not learns or arm is None or np.isnan(reward):
            return
        try:
            engine.learn(arm, float(reward), context(row))
        except PolicyError as exc:
            raise CandidateError(
                f"{candidate.source}: cannot learn decision {log.decision_ids[row]}'s reward {reward}: {exc}"
            ) from exc
        learned += 1

    for row in range(start):
        learn(row)
    rows = np.arange(start, log.size)
    target = np.zeros((len(rows), len(log.arms)))
    unknown_mass = np.zeros(len(rows))
    every_arm = list(range(len(own)))
    scored = np.zeros(len(rows), dtype=bool)
    for i, position in enumerate(rows.tolist()):
        allowed = log.candidates[position]
        eligible = [a for a in every_arm if to_log[a] < 0 or allowed[to_log[a]]]
        if not eligible:
            raise CandidateError(
                f"decision {log.decision_ids[position]}: none of its candidate arms is an arm of {candidate.name}"
            )
        if explore is not None and not np.isnan(log.scores[position]).all():
            vector = _scored_vector(candidate, log, position, eligible, to_log, explore, floor)
            scored[i] = True
        elif uniform_fallback:
            vector = np.zeros(len(own))
            vector[eligible] = 1.0 / len(eligible)
        else:
            x = context(position)
            vector = policy.probabilities(None if x is None else engine.vector(x), eligible)
        known = to_log >= 0
        target[i, to_log[known]] = vector[known]
        unknown_mass[i] = float(vector[~known].sum())
        if mode is Mode.ONLINE:
            learn(position)
    return Distributions(rows, target, unknown_mass, unknown, learned, None if scoring is None else scored)


def _scored_vector(  # noqa: PLR0917 - one row's inputs, private
    candidate: Candidate,
    log: DecisionLog,
    position: int,
    eligible: list[int],
    to_log: np.ndarray,
    explore: Exploration,
    floor: float,
) -> FloatArray:
    """The candidate's exploration over the eligible arms' logged scores, floored: `Scorer.vector`'s computation."""
    columns = to_log[eligible]
    logged_scores = log.scores[position]
    names = candidate.served.spec.arm_names
    unscored = [names[a] for a, c in zip(eligible, columns, strict=True) if c < 0 or np.isnan(logged_scores[c])]
    if unscored:
        raise CandidateError(
            f"{candidate.source}: decision {log.decision_ids[position]}: the logging policy's model did not score the "
            f"candidate's arms {unscored}, so the logged scores cannot stand in for the candidate's model (re-scoring "
            "the log with a model is not built)"
        )
    probabilities = apply_floor(explore([float(logged_scores[c]) for c in columns]), floor)
    vector = np.zeros(len(to_log))
    vector[eligible] = probabilities
    return vector
