"""Export the decision log as JSON lines for off-policy evaluation: one line per decision, its reward joined.

Each line: decisionId, timestamp, unitId, context, candidates, arm, probabilities (every eligible arm), propensity (the
chosen arm's probability), policyVersion, and reward, rewardTimestamp, defaultReward when a reward was joined. In Redis
mode a line is also written for each reward this replica accepted for a decision another replica made (its decision
fields come from the shared decision record): concatenate the replicas' exports and keep one line per decisionId.
Reads through a read-only connection: safe while the runtime writes (WAL).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import orjson

from croupier.runtime.store.sqlite import connect

_QUERY = """
SELECT d.id, d.ts, d.request, d.response, r.reward, r.ts, r.is_default
FROM decisions d LEFT JOIN rewards r ON r.decision_id = d.id
WHERE d.id > ? ORDER BY d.id
"""
_FOREIGN = """
SELECT r.decision_id, r.decision, r.reward, r.ts, r.is_default FROM rewards r
WHERE r.decision IS NOT NULL AND r.decision_id > ? ORDER BY r.decision_id
"""


def decision_line(
    decision_id: str, ts: float, request: bytes, response: bytes, reward: tuple[float, float, int] | None
) -> dict[str, Any]:
    asked = orjson.loads(request)
    answered = orjson.loads(response)
    probabilities = answered["probabilities"]
    line: dict[str, Any] = {
        "decisionId": decision_id,
        "timestamp": ts,
        "unitId": asked.get("unitId"),
        "context": asked.get("context"),
        "candidates": asked.get("candidates"),
        "arm": answered["arm"],
        "probabilities": probabilities,
        "propensity": probabilities[answered["arm"]],
        "policyVersion": answered["policyVersion"],
        "reward": None,
        "rewardTimestamp": None,
        "defaultReward": False,
    }
    if reward is not None:
        line["reward"], line["rewardTimestamp"], line["defaultReward"] = reward[0], reward[1], bool(reward[2])
    return line


def export_jsonl(database: Path, out: IO[bytes], *, after: str | None = None) -> int:
    conn = connect(database, readonly=True)
    count = 0
    try:
        for decision_id, ts, request, response, reward, reward_ts, is_default in conn.execute(_QUERY, (after or "",)):
            joined = None if reward is None else (reward, reward_ts, is_default)
            out.write(orjson.dumps(decision_line(decision_id, ts, request, response, joined)) + b"\n")
            count += 1
        for decision_id, record, reward, reward_ts, is_default in conn.execute(_FOREIGN, (after or "",)):
            decision = orjson.loads(record)
            line = decision_line(
                decision_id,
                decision["ts"],
                decision["request"].encode(),
                decision["response"].encode(),
                (reward, reward_ts, is_default),
            )
            out.write(orjson.dumps(line) + b"\n")
            count += 1
    finally:
        conn.close()
    return count
