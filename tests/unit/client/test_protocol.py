"""The SDK's pure parts: request bodies checked before sending, error answers mapped to typed exceptions, the retry
schedule, and the batched sender's bookkeeping (what is kept, retried, set aside or refused)."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
import yaml

from croupier.api.wire import RewardResponse
from croupier.client import (
    ApiError,
    Conflict,
    Decision,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    LocalAssigner,
    NotFound,
    RetryPolicy,
    RewardQueueFull,
    RuntimeUnreachable,
    ServiceUnavailable,
    Unauthorized,
    protocol,
)
from croupier.client.batching import RewardQueue
from croupier.client.errors import api_error, item_index, retryable

ROOT = Path(__file__).resolve().parents[3]


def test_decide_body_is_camel_case_and_checked() -> None:
    body = orjson.loads(protocol.decide_body("u1", {"age": 3.0}, ["a", "b"]))
    assert body == {"unitId": "u1", "context": {"age": 3.0}, "candidates": ["a", "b"]}
    assert orjson.loads(protocol.decide_body(None, [1.0, 2.0], None)) == {"context": [1.0, 2.0]}
    with pytest.raises(InvalidArgument) as long_unit:
        protocol.decide_body("x" * 300, None, None)
    assert long_unit.value.field == "unitId"
    with pytest.raises(InvalidArgument) as infinite:
        protocol.decide_body(None, {"age": float("inf")}, None)
    assert infinite.value.field == "context.age"


def test_assign_body_leaves_out_a_missing_unit_id_and_never_sends_null() -> None:
    assert orjson.loads(protocol.assign_body("u1", None, None)) == {"unitId": "u1"}
    body = orjson.loads(protocol.assign_body(None, {"userId": "u7", "tier": "gold"}, None))
    assert body == {"attributes": {"userId": "u7", "tier": "gold"}}  # no "unitId": null
    for attributes in (None, {}):
        with pytest.raises(InvalidArgument) as missing:
            protocol.assign_body(None, attributes, [1.0])
        assert missing.value.field == "unitId"


def test_the_local_assigner_resolves_the_unit_as_the_runtime_does() -> None:
    document = yaml.safe_load((ROOT / "examples" / "experiment-abn.yaml").read_text())
    assigner = LocalAssigner.from_manifest(document)
    key = document["spec"]["assignment"]["unitKey"]
    assert assigner.unit_key == key
    assert assigner.unit(attributes={key: "u7", "tier": "gold"}) == "u7"
    assert assigner.unit("u1", attributes={key: "u7"}) == "u1"  # unitId, when given, wins
    exposure = assigner.exposure(attributes={key: "u7"})
    assert exposure.unit_id == "u7" and exposure.variant == assigner("u7") and exposure.epoch == assigner.epoch
    for attributes, field in (({"tier": "gold"}, "unitId"), (None, "unitId"), ({key: 7}, f"attributes.{key}"),
                              ({key: ""}, f"attributes.{key}")):  # fmt: skip
        with pytest.raises(InvalidArgument) as refused:
            assigner.unit(attributes=attributes)
        assert refused.value.field == field, attributes
    bare = LocalAssigner("salt", [("a", 50), ("b", 50)])  # the hash parameters alone: no unitKey known
    with pytest.raises(InvalidArgument) as unknown_key:
        bare.exposure(attributes={key: "u7"})
    assert unknown_key.value.field == "unitId" and "unitKey" in str(unknown_key.value)


def test_reward_bodies() -> None:
    assert orjson.loads(protocol.rewards_body(protocol.reward_items([("d1", 1)]))) == {"decisionId": "d1", "reward": 1}
    two = orjson.loads(protocol.rewards_body(protocol.reward_items([("d1", 1), ("d2", 0.5)])))
    assert two == {"rewards": [{"decisionId": "d1", "reward": 1}, {"decisionId": "d2", "reward": 0.5}]}
    with pytest.raises(InvalidArgument) as bad:
        protocol.reward_items([("d1", 1), ("", 1)])
    assert bad.value.field == "rewards[1].decisionId"
    assert len(protocol.chunks(list(range(2500)))) == 3


def test_fallback_decisions_are_never_rewarded() -> None:
    fallback = protocol.fallback_decision("blue", RuntimeUnreachable("http://x", OSError("refused")))
    assert isinstance(fallback, Decision)
    assert fallback.fallback and fallback.arm == "blue" and fallback.probabilities == {"blue": 1.0}
    assert protocol.reward_item(fallback, 1) is None
    assert protocol.reward_items([(fallback, 1), ("d2", 0)])[0].decision_id == "d2"
    parsed = protocol.parse(Decision, b'{"decisionId":"d","arm":"a","probabilities":{"a":1},"policyVersion":"g1-x"}')
    assert not parsed.fallback and parsed.decision_id == "d"


def test_outcomes_are_idempotent_only_with_event_ids() -> None:
    with_ids = [protocol.build(protocol.Outcome, unitId="u", metric="m", value=1, eventId=f"e{i}") for i in range(2)]
    without = protocol.build(protocol.Outcome, unitId="u", metric="m", value=1)
    assert protocol.outcomes_idempotent(with_ids)
    assert not protocol.outcomes_idempotent([*with_ids, without])
    with pytest.raises(InvalidArgument):
        protocol.outcomes_body([])


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidRequest),
        (401, Unauthorized),
        (403, Forbidden),
        (404, NotFound),
        (409, Conflict),
        (413, InvalidRequest),
        (422, InvalidRequest),
        (502, ServiceUnavailable),
        (503, ServiceUnavailable),
        (418, ApiError),
    ],
)
def test_error_answers_map_to_types(status: int, kind: type[ApiError]) -> None:
    body = orjson.dumps({"status": status, "error": "Code", "message": "why", "field": "rewards[2].reward"})
    error = api_error(status, body)
    assert type(error) is kind
    assert (error.status, error.error, error.message, error.field) == (status, "Code", "why", "rewards[2].reward")
    assert retryable(error) == (status >= 500)


def test_an_answer_that_is_not_the_runtime_error_shape() -> None:
    error = api_error(502, b"<html>Bad Gateway</html>")
    assert isinstance(error, ServiceUnavailable)
    assert error.error == "Http502" and "Bad Gateway" in error.message
    assert retryable(RuntimeUnreachable("http://x", TimeoutError()))
    assert item_index("rewards[12].reward") == 12
    assert item_index("decisionId") is None
    assert item_index(None) is None


def test_retry_delays_grow_and_stay_bounded() -> None:
    policy = RetryPolicy(attempts=6, base_delay=0.1, max_delay=1.0, rng=random.Random(3))
    for retry in range(10):
        ceiling = min(1.0, 0.1 * 2**retry)
        delays = [policy.delay(retry) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling / 2  # full jitter spreads over the whole range
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)


def answer(*outcomes: str) -> RewardResponse:
    return RewardResponse.model_validate(
        {
            "accepted": outcomes.count("accepted"),
            "duplicates": outcomes.count("duplicate"),
            "results": [{"decisionId": f"d{i}", "outcome": o} for i, o in enumerate(outcomes)],
        }
    )


def test_queue_bookkeeping() -> None:
    queue = RewardQueue(max_batch=3, flush_interval=10.0, max_queue=5, retry=RetryPolicy(base_delay=0.1))
    for i in range(5):
        assert queue.offer(f"d{i}", 1) is not None
    with pytest.raises(RewardQueueFull):
        queue.offer("d5", 1)
    assert queue.stats.queue_full == 1
    assert queue.due_in(0.0, draining=False) == 0.0  # a full batch waits: due now

    batch = [r.decision_id for r in queue.take()]
    assert batch == ["d0", "d1", "d2"]
    with pytest.raises(RewardQueueFull):  # in flight still counts against the bound
        queue.offer("d5", 1)
    assert queue.due_in(0.0, draining=True) is None  # one batch in flight at a time

    queue.settle(RuntimeUnreachable("http://x", OSError("reset")))
    assert [r.decision_id for r in queue.pending()] == ["d0", "d1", "d2", "d3", "d4"]  # back in front, in order
    assert queue.stats.failed_sends == 1 and queue.stats.queued == 5
    assert queue.not_before > 0

    queue.not_before = 0.0
    queue.take()
    rejected = queue.settle(
        api_error(404, orjson.dumps({"error": "UnknownDecision", "field": "rewards[1].decisionId"}))
    )
    assert [r.reward.decision_id for r in rejected] == ["d1"]
    assert [r.decision_id for r in queue.pending()] == ["d0", "d2", "d3", "d4"]
    assert queue.stats.rejected == 1 and queue.stats.queued == 4

    queue.take()
    assert queue.settle(answer("accepted", "duplicate", "accepted")) == []
    assert (queue.stats.accepted, queue.stats.duplicates, queue.stats.queued) == (2, 1, 1)
    assert [r.decision_id for r in queue.pending()] == ["d4"]

    # A 401 carries no item: nothing is set aside, the batch waits for a retry.
    queue.take()
    queue.settle(api_error(401, orjson.dumps({"error": "Unauthorized", "message": "no token"})))
    assert [r.decision_id for r in queue.pending()] == ["d4"] and queue.stats.rejected == 1

    fallback = protocol.fallback_decision("a", OSError())
    assert queue.offer(fallback, 1) is None and queue.stats.fallback_skipped == 1


def test_queue_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        RewardQueue(max_batch=1001, flush_interval=1, max_queue=5000, retry=RetryPolicy())
    with pytest.raises(ValueError, match="max_queue"):
        RewardQueue(max_batch=10, flush_interval=1, max_queue=5, retry=RetryPolicy())
