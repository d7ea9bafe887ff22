"""A decision log as arrays: the rows of an export (JSON lines or Parquet) or of the runtime's SQLite log.

Every row keeps the logging policy's full probability vector. Arms are the union of the arm names of every policy
version in the log, in order of first appearance; an arm a version did not have, or that was not a candidate of a
request, has logged probability 0 in that row. Contexts are aligned by feature name (a log of a policy without feature
names keeps the values by position). A model-scored decision also keeps the model's score per arm and the model version
that gave them (`scores`, `modelVersion` of the export); NaN and None where a row has none.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


class LogError(ValueError):
    """The decision log cannot be read or evaluated as it is; the message names the row and the problem."""


@dataclass(frozen=True)
class DecisionLog:
    """The logged decisions in time order (n rows, K arms, d context features)."""

    arms: tuple[str, ...]
    feature_names: tuple[str, ...] | None
    """Context feature names; None for a log whose contexts are positional lists, or that has no context."""
    decision_ids: tuple[str, ...]
    timestamps: FloatArray
    actions: IntArray
    """The chosen arm's index into `arms`."""
    probabilities: FloatArray
    """(n, K): the logging policy's probability of every arm (0 where it could not choose the arm)."""
    candidates: BoolArray
    """(n, K): the arms the request allowed (every arm of the logging policy's version when it named none)."""
    contexts: FloatArray | None
    """(n, d), or None for a log without context."""
    rewards: FloatArray
    """The joined reward; NaN where none was joined."""
    default_rewards: BoolArray
    policy_versions: tuple[str, ...]
    scores: FloatArray
    """(n, K): the logging policy's model score of every arm it scored; NaN for arms it did not score (not a
    candidate, not its arm) and in rows it did not score (no spec.scoring, or its fallback decided)."""
    model_versions: tuple[int | None, ...]
    """The model version that scored each row; None for a row without scores or whose version was not logged."""

    @property
    def size(self) -> int:
        return len(self.decision_ids)

    @property
    def propensities(self) -> FloatArray:
        """The logged probability of the chosen arm, per row."""
        return self.probabilities[np.arange(self.size), self.actions]

    @property
    def rewarded(self) -> BoolArray:
        return ~np.isnan(self.rewards)

    def take(self, rows: IntArray | BoolArray) -> DecisionLog:
        """The log restricted to some rows (indexes or a mask), in their order."""
        ids = np.asarray(self.decision_ids, dtype=object)[rows]
        versions = np.asarray(self.policy_versions, dtype=object)[rows]
        models = np.asarray(self.model_versions, dtype=object)[rows]
        return DecisionLog(
            arms=self.arms,
            feature_names=self.feature_names,
            decision_ids=tuple(ids.tolist()),
            timestamps=self.timestamps[rows],
            actions=self.actions[rows],
            probabilities=self.probabilities[rows],
            candidates=self.candidates[rows],
            contexts=None if self.contexts is None else self.contexts[rows],
            rewards=self.rewards[rows],
            default_rewards=self.default_rewards[rows],
            policy_versions=tuple(versions.tolist()),
            scores=self.scores[rows],
            model_versions=tuple(models.tolist()),
        )


@dataclass(frozen=True, slots=True)
class _Row:
    decision_id: str
    timestamp: float
    arm: str
    arms: list[str]
    probabilities: list[float]
    candidates: list[str] | None
    feature_names: list[str] | None
    context: list[float] | None
    reward: float | None
    default_reward: bool
    policy_version: str
    scores: list[float | None] | None = None
    """Aligned with `arms`; None (or NaN) for an arm the model did not score."""
    model_version: int | None = None


def from_rows(rows: Iterable[_Row]) -> DecisionLog:
    """The rows in time order, one per decision: when a decision appears more than once (the exports of several Redis
    replicas, one of which joined its reward for a decision another made), the record with a reward wins."""
    unique: dict[str, _Row] = {}
    for row in rows:
        seen = unique.get(row.decision_id)
        if seen is None or (seen.reward is None and row.reward is not None):
            unique[row.decision_id] = row
    ordered = sorted(unique.values(), key=lambda row: (row.timestamp, row.decision_id))
    if not ordered:
        raise LogError("the decision log is empty")
    arms: dict[str, int] = {}
    for row in ordered:
        for name in row.arms:
            arms.setdefault(name, len(arms))
    named = {row.feature_names is not None for row in ordered if row.context is not None}
    if len(named) > 1:
        raise LogError("the log mixes contexts by feature name and by position: export one policy's log at a time")
    features: dict[str, int] = {}
    width = 0
    for row in ordered:
        if row.feature_names is not None:
            for name in row.feature_names:
                features.setdefault(name, len(features))
        elif row.context is not None:
            width = max(width, len(row.context))
    n, k = len(ordered), len(arms)
    d = len(features) if features else width
    probabilities = np.zeros((n, k))
    candidates = np.zeros((n, k), dtype=bool)
    actions = np.empty(n, dtype=np.int64)
    contexts = np.full((n, d), np.nan) if d else None
    rewards = np.full(n, np.nan)
    defaults = np.zeros(n, dtype=bool)
    scores = np.full((n, k), np.nan)
    for i, row in enumerate(ordered):
        if len(row.arms) != len(row.probabilities):
            raise LogError(
                f"decision {row.decision_id}: {len(row.arms)} arms but {len(row.probabilities)} probabilities"
            )
        columns = [arms[name] for name in row.arms]
        probabilities[i, columns] = row.probabilities
        allowed = row.arms if row.candidates is None else row.candidates
        candidates[i, [arms[name] for name in allowed if name in arms]] = True
        if row.arm not in arms:
            raise LogError(f"decision {row.decision_id}: its arm {row.arm!r} is not in its probability vector")
        actions[i] = arms[row.arm]
        if not probabilities[i, actions[i]] > 0.0:
            raise LogError(f"decision {row.decision_id}: the chosen arm {row.arm!r} has logged probability 0")
        if contexts is not None:
            if row.context is None:
                raise LogError(f"decision {row.decision_id} has no context while others have one")
            if row.feature_names is not None:
                contexts[i, [features[name] for name in row.feature_names]] = row.context
            else:
                if len(row.context) != d:
                    raise LogError(f"decision {row.decision_id}: a context of {len(row.context)} values, others {d}")
                contexts[i] = row.context
            if np.isnan(contexts[i]).any():
                missing = [name for name, j in features.items() if np.isnan(contexts[i, j])]
                raise LogError(f"decision {row.decision_id}: its context lacks the features {missing}")
        if row.reward is not None:
            rewards[i] = row.reward
            defaults[i] = row.default_reward
        if row.scores is not None:
            if len(row.scores) != len(row.arms):
                raise LogError(f"decision {row.decision_id}: {len(row.arms)} arms but {len(row.scores)} scores")
            values = np.array([np.nan if v is None else v for v in row.scores], dtype=np.float64)
            if np.isinf(values).any():
                raise LogError(f"decision {row.decision_id}: an infinite model score {row.scores}")
            scores[i, columns] = values
    return DecisionLog(
        arms=tuple(arms),
        feature_names=tuple(features) if features else None,
        decision_ids=tuple(row.decision_id for row in ordered),
        timestamps=np.array([row.timestamp for row in ordered], dtype=np.float64),
        actions=actions,
        probabilities=probabilities,
        candidates=candidates,
        contexts=contexts,
        rewards=rewards,
        default_rewards=defaults,
        policy_versions=tuple(row.policy_version for row in ordered),
        scores=scores,
        model_versions=tuple(row.model_version if row.scores is not None else None for row in ordered),
    )


def _json_row(line: Mapping[str, Any], where: str) -> _Row:
    try:
        shown: Mapping[str, float] = line["probabilities"]
        context = line.get("context")
        names: list[str] | None = None
        values: list[float] | None = None
        if isinstance(context, Mapping):
            names, values = list(context), [float(v) for v in context.values()]
        elif context is not None:
            values = [float(v) for v in context]
        reward = line.get("reward")
        return _Row(
            decision_id=str(line["decisionId"]),
            timestamp=float(line["timestamp"]),
            arm=str(line["arm"]),
            arms=list(shown),
            probabilities=[float(p) for p in shown.values()],
            candidates=line.get("candidates"),
            feature_names=names,
            context=values,
            reward=None if reward is None else float(reward),
            default_reward=bool(line.get("defaultReward", False)),
            policy_version=str(line["policyVersion"]),
            scores=_scores(line.get("scores")),
            model_version=_model_version(line.get("modelVersion")),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise LogError(f"{where}: not a decision record of `croupier export` ({type(exc).__name__}: {exc})") from exc


def _scores(values: Any) -> list[float | None] | None:
    if values is None:
        return None
    return [None if v is None else float(v) for v in values]


def _model_version(value: Any) -> int | None:
    return None if value is None else int(value)


def _jsonl_rows(path: Path) -> Iterator[_Row]:
    with path.open("rb") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise LogError(f"{path}:{number}: not JSON: {exc}") from exc
            if not isinstance(record, dict):
                raise LogError(f"{path}:{number}: expected a JSON object per line")
            yield _json_row(record, f"{path}:{number}")


def _parquet_rows(path: Path) -> Iterator[_Row]:
    import pyarrow.parquet as pq  # noqa: PLC0415 - optional dependency

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for an unreadable file
        raise LogError(f"{path}: not a readable Parquet file: {exc}") from exc
    needed = {"decisionId", "timestamp", "arm", "arms", "probabilities", "policyVersion", "reward"}
    missing = sorted(needed - set(table.column_names))
    if missing:
        raise LogError(f"{path}: not a decision log export (columns {missing} are missing)")
    for record in table.to_pylist():
        yield _Row(
            decision_id=record["decisionId"],
            timestamp=record["timestamp"],
            arm=record["arm"],
            arms=record["arms"],
            probabilities=record["probabilities"],
            candidates=record.get("candidates"),
            feature_names=record.get("featureNames"),
            context=record.get("context"),
            reward=record["reward"],
            default_reward=bool(record.get("defaultReward")),
            policy_version=record["policyVersion"],
            scores=_scores(record.get("scores")),
            model_version=_model_version(record.get("modelVersion")),
        )


def _sqlite_rows(path: Path) -> Iterator[_Row]:
    from croupier.runtime.store.export import decision_records  # noqa: PLC0415

    for shared, reward in decision_records(path):
        decision = shared.decision
        yield _Row(
            decision_id=decision.decision_id,
            timestamp=decision.timestamp,
            arm=decision.arm,
            arms=shared.arms,
            probabilities=list(decision.probabilities),
            candidates=None if decision.eligible is None else [shared.arms[i] for i in decision.eligible],
            feature_names=shared.feature_names,
            context=decision.features,
            reward=None if reward is None else reward[0],
            default_reward=reward is not None and reward[2],
            policy_version=decision.policy_version,
            scores=None if decision.scores is None else list(decision.scores),
            model_version=decision.model_version,
        )


def _rows(path: Path) -> Iterator[_Row]:
    if not path.is_file():
        raise LogError(f"no decision log at {path}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return _jsonl_rows(path)
    if suffix in (".parquet", ".pq"):
        return _parquet_rows(path)
    if suffix in (".sqlite3", ".sqlite", ".db"):
        return _sqlite_rows(path)
    raise LogError(f"{path}: unknown log format {suffix!r}; expected .jsonl, .parquet or .sqlite3")


def read_log(*paths: Path) -> DecisionLog:
    """Read a decision log from one or more files (e.g. each Redis replica's export): `.jsonl`/`.json` (JSON lines),
    `.parquet`, or `.sqlite3`/`.db` (the runtime's own log); one row per decision, in time order."""
    sources = [_rows(path) for path in paths]  # every path checked before any is read
    return from_rows(row for source in sources for row in source)
