"""Export the decision log for off-policy evaluation: one record per decision, its reward joined; JSON lines or Parquet.

Each JSON line: decisionId, timestamp, unitId, context, candidates, arm, probabilities (the full vector: every arm of
the policy that decided, 0 for arms that were not candidates), propensity (the chosen arm's probability), policyVersion,
scores (the model's score per arm for a model-scored decision, null for arms that were not candidates; null when the
fallback or a policy without spec.scoring decided), modelVersion (the model version that scored), scoringFallback (why
the fallback decided a model-scored decision: timeout, unavailable, ...), slateId and position (a position of a
ranking: its slate and its place from 1, with `probabilities` the conditional vector it was drawn from and
`candidates` the arms not placed above it; null for decide answers), and reward, rewardTimestamp,
defaultReward when a reward was joined. The context is the one the policy saw: an object by feature name (a list for a
policy without feature names; null for a non-contextual policy). In Redis mode a line is also written for each reward
this replica accepted for a decision another replica made (from the shared decision record): concatenate the replicas'
exports and keep one line per decisionId. Reads through a read-only connection: safe while the runtime writes (WAL).

Parquet (`export_parquet`, needs pyarrow: the `ope` extra) holds the same values in columns: the vector as two aligned
lists `arms` and `probabilities`, the context as `featureNames` (null without names) and `context` (list of floats).

`decision_records` reads the same log as typed `Decision`s (no JSON), for an evaluator in Python.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

import msgspec
import orjson

from croupier.runtime.decisions.records import Decision, SharedDecision, unpack_floats, unpack_indexes
from croupier.runtime.store.sqlite import connect

_QUERY = """
SELECT d.id, d.ts, d.arm, d.expires_at, d.unit_id, d.features, d.candidates, d.probabilities,
       v.version, v.arms, v.features, r.reward, r.ts, r.is_default, s.scores, s.model_version, s.fallback,
       d.slate_id, d.position
FROM decisions d JOIN policy_versions v ON v.id = d.version LEFT JOIN rewards r ON r.decision_id = d.id
LEFT JOIN decision_scores s ON s.id = d.id
WHERE d.id > ? ORDER BY d.id
"""
_FOREIGN = """
SELECT r.decision_id, r.decision, r.reward, r.ts, r.is_default FROM rewards r
WHERE r.decision IS NOT NULL AND r.decision_id > ? ORDER BY r.decision_id
"""
_decode_shared = msgspec.json.Decoder(SharedDecision).decode


class LoggedDecision(NamedTuple):
    """A decision of the log with the names its indexes refer to, and its reward when one was joined."""

    shared: SharedDecision
    reward: tuple[float, float, bool] | None
    """(reward, when it was stored, whether it is the default reward)."""


def decision_records(database: Path, *, after: str | None = None) -> Iterator[LoggedDecision]:
    conn = connect(database, readonly=True)
    versions: dict[str, tuple[list[str], list[str] | None]] = {}
    try:
        for (
            decision_id,
            ts,
            arm,
            expires_at,
            unit_id,
            features,
            candidates,
            probabilities,
            version,
            arms_json,
            features_json,
            reward,
            reward_ts,
            is_default,
            scores,
            model_version,
            fallback,
            slate_id,
            position,
        ) in conn.execute(_QUERY, (after or "",)):
            names = versions.get(version)
            if names is None:
                names = (orjson.loads(arms_json), None if features_json is None else orjson.loads(features_json))
                versions[version] = names
            arms, feature_names = names
            vector = unpack_floats(probabilities)
            assert vector is not None
            decision = Decision(
                decision_id,
                ts,
                arm,
                arms.index(arm),
                tuple(vector),
                unpack_indexes(candidates),
                unpack_floats(features),
                unit_id,
                version,
                expires_at,
                None if scores is None else tuple(unpack_floats(scores) or ()),
                model_version,
                fallback,
                slate_id=slate_id,
                position=position,
            )
            joined = None if reward is None else (reward, reward_ts, bool(is_default))
            yield LoggedDecision(SharedDecision(decision, arms, feature_names), joined)
        for decision_id, record, reward, reward_ts, is_default in conn.execute(_FOREIGN, (after or "",)):
            shared = _legacy(decision_id, record) if record[:1] == b"{" else _decode_shared(record)
            yield LoggedDecision(shared, (reward, reward_ts, bool(is_default)))
    finally:
        conn.close()


def _legacy(decision_id: str, record: bytes) -> SharedDecision:
    """A shared record of a runtime that logged request and response JSON (a rolling upgrade in Redis mode): the arms
    it names are those its response showed; its context is the values the policy saw, by position."""
    legacy = orjson.loads(record)
    asked, answered = (v if isinstance(v, dict) else orjson.loads(v) for v in (legacy["request"], legacy["response"]))
    shown: dict[str, float] = answered["probabilities"]
    arms = list(shown)
    decision = Decision(
        decision_id,
        legacy["ts"],
        answered["arm"],
        arms.index(answered["arm"]),
        tuple(shown.values()),
        None,
        legacy.get("features"),
        asked.get("unitId"),
        answered["policyVersion"],
        legacy["expires"],
    )
    return SharedDecision(decision, arms, None)


def decision_scores(decision: Decision) -> list[float] | None:
    """The model's score per arm of a model-scored decision (NaN, null in JSON, for arms that were not candidates;
    None for a decision the policy or the fallback made alone)."""
    scores = decision.scores
    return None if scores is None else [float(v) for v in scores]


def decision_line(logged: LoggedDecision) -> dict[str, Any]:
    shared, reward = logged
    decision, arms = shared.decision, shared.arms
    probabilities = dict(zip(arms, decision.probabilities, strict=True))
    values = decision.features
    context: dict[str, float] | list[float] | None = values
    if values is not None and shared.feature_names is not None:
        context = dict(zip(shared.feature_names, values, strict=True))
    line: dict[str, Any] = {
        "decisionId": decision.decision_id,
        "timestamp": decision.timestamp,
        "unitId": decision.unit_id,
        "context": context,
        "candidates": None if decision.eligible is None else [arms[i] for i in decision.eligible],
        "arm": decision.arm,
        "probabilities": probabilities,
        "propensity": probabilities[decision.arm],
        "policyVersion": decision.policy_version,
        "scores": decision_scores(decision),
        "modelVersion": decision.model_version,
        "scoringFallback": decision.fallback,
        "slateId": decision.slate_id,
        "position": decision.position,
        "reward": None,
        "rewardTimestamp": None,
        "defaultReward": False,
    }
    if reward is not None:
        line["reward"], line["rewardTimestamp"], line["defaultReward"] = reward
    return line


def export_jsonl(database: Path, out: IO[bytes], *, after: str | None = None) -> int:
    count = 0
    for logged in decision_records(database, after=after):
        out.write(orjson.dumps(decision_line(logged)) + b"\n")
        count += 1
    return count


PARQUET_BATCH_ROWS = 65_536


def export_parquet(database: Path, path: Path, *, after: str | None = None) -> int:
    """Write the log as one Parquet file (row groups of `PARQUET_BATCH_ROWS`); returns the number of decisions."""
    try:
        import pyarrow as pa  # noqa: PLC0415 - an optional dependency (the `ope` extra)
        import pyarrow.parquet as pq  # noqa: PLC0415
    except ImportError as exc:
        raise ExportError("Parquet export needs pyarrow: install croupier with the `ope` extra") from exc
    floats, strings = pa.list_(pa.float64()), pa.list_(pa.string())
    schema = pa.schema(
        [
            ("decisionId", pa.string()),
            ("timestamp", pa.float64()),
            ("unitId", pa.string()),
            ("arm", pa.string()),
            ("propensity", pa.float64()),
            ("policyVersion", pa.string()),
            ("arms", strings),
            ("probabilities", floats),
            ("candidates", strings),
            ("featureNames", strings),
            ("context", floats),
            ("scores", floats),
            ("modelVersion", pa.int64()),
            ("scoringFallback", pa.string()),
            ("slateId", pa.string()),
            ("position", pa.int32()),
            ("reward", pa.float64()),
            ("rewardTimestamp", pa.float64()),
            ("defaultReward", pa.bool_()),
        ]
    )
    columns: dict[str, list[Any]] = {name: [] for name in schema.names}
    count = 0
    with pq.ParquetWriter(path, schema) as writer:

        def flush() -> None:
            writer.write_table(pa.table(columns, schema=schema))
            for values in columns.values():
                values.clear()

        for shared, reward in decision_records(database, after=after):
            decision, arms = shared.decision, shared.arms
            row = (
                decision.decision_id,
                decision.timestamp,
                decision.unit_id,
                decision.arm,
                decision.probabilities[decision.arm_index],
                decision.policy_version,
                arms,
                list(decision.probabilities),
                None if decision.eligible is None else [arms[i] for i in decision.eligible],
                shared.feature_names,
                decision.features,
                decision_scores(decision),
                decision.model_version,
                decision.fallback,
                decision.slate_id,
                decision.position,
                *(reward if reward is not None else (None, None, False)),
            )
            for values, value in zip(columns.values(), row, strict=True):
                values.append(value)
            count += 1
            if count % PARQUET_BATCH_ROWS == 0:
                flush()
        if count == 0 or count % PARQUET_BATCH_ROWS:
            flush()
    return count


class ExportError(Exception):
    """The export cannot run as asked (a missing optional dependency)."""
