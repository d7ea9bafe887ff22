"""The calls both clients run (`protocol.Call`): what is sent, whether it may be sent again, how the answer is read,
when a failed send is retried and when decide falls back."""

from __future__ import annotations

import random

import orjson
import pytest

from croupier.api import wire
from croupier.client import ApiError, Decision, RetryPolicy, RuntimeUnreachable, ServiceUnavailable, protocol


def test_decide_and_rank_are_sent_once_and_read_into_their_models() -> None:
    decide = protocol.decide_call("u1", {"age": 3.0}, ["a", "b"])
    assert (decide.method, decide.path, decide.idempotent) == ("POST", wire.DECIDE_PATH, False)
    assert orjson.loads(decide.body or b"") == {"unitId": "u1", "context": {"age": 3.0}, "candidates": ["a", "b"]}
    answer = b'{"decisionId":"d1","arm":"a","probabilities":{"a":1.0},"policyVersion":"g1-x"}'
    decision = decide.decode(answer)
    assert isinstance(decision, Decision) and decision.arm == "a" and not decision.fallback
    rank = protocol.rank_call("u1", 2, None, None)
    assert (rank.method, rank.path, rank.idempotent) == ("POST", wire.RANK_PATH, False)


def test_rewards_go_in_requests_of_at_most_the_batch_limit_and_are_retried() -> None:
    items = [
        protocol.build(wire.Reward, decisionId=f"d{i}", reward=1.0) for i in range(wire.MAX_REWARDS_PER_REQUEST + 1)
    ]
    calls = protocol.reward_calls(items)
    assert len(calls) == 2
    assert len(orjson.loads(calls[0].body or b"")["rewards"]) == wire.MAX_REWARDS_PER_REQUEST
    assert orjson.loads(calls[1].body or b"") == {"decisionId": f"d{wire.MAX_REWARDS_PER_REQUEST}", "reward": 1.0}
    assert all(c.idempotent and c.path == wire.REWARDS_PATH for c in calls)
    assert protocol.reward_calls([]) == []


def test_outcomes_are_retried_only_when_every_one_carries_an_event_id() -> None:
    keyed = protocol.outcome("u1", "clicks", 1.0, "e1")
    unkeyed = protocol.outcome("u1", "clicks", 1.0, None)
    assert protocol.outcomes_call([keyed]).idempotent
    assert not protocol.outcomes_call([keyed, unkeyed]).idempotent


def test_an_error_answer_becomes_its_typed_error_and_a_success_its_body() -> None:
    assert protocol.answer(200, b"{}") == b"{}"
    error = protocol.answer(503, b'{"status":503,"error":"Unavailable","message":"paused"}')
    assert isinstance(error, ServiceUnavailable) and error.error == "Unavailable"


@pytest.mark.parametrize(
    ("error", "idempotent", "retry", "retried"),
    [
        (RuntimeUnreachable("http://x", OSError("refused")), True, 0, True),
        (ServiceUnavailable(503, "Unavailable", "paused"), True, 2, True),
        (ServiceUnavailable(503, "Unavailable", "paused"), True, 3, False),  # the fourth send was the last
        (ServiceUnavailable(503, "Unavailable", "paused"), False, 0, False),
        (ApiError(422, "InvalidField", "no"), True, 0, False),
    ],
)
def test_only_idempotent_calls_are_sent_again_after_no_answer_or_a_5xx(
    error: ApiError | RuntimeUnreachable, idempotent: bool, retry: int, retried: bool
) -> None:
    policy = RetryPolicy(attempts=4, base_delay=0.05, rng=random.Random(7))
    delay = protocol.retry_delay(error, idempotent=idempotent, retry=retry, policy=policy)
    if retried:
        assert delay is not None and 0.0 <= delay <= 0.05 * 2**retry
    else:
        assert delay is None


def test_decide_falls_back_only_with_an_arm_and_only_after_no_answer_or_a_5xx() -> None:
    down = RuntimeUnreachable("http://x", OSError("refused"))
    decision = protocol.fallback(down, "blue")
    assert (decision.arm, decision.fallback, decision.decision_id) == ("blue", True, "")
    with pytest.raises(RuntimeUnreachable):
        protocol.fallback(down, None)
    refused = ApiError(422, "InvalidField", "no")
    with pytest.raises(ApiError):
        protocol.fallback(refused, "blue")
