"""The calls both clients run (`protocol.Call`): what is sent, whether it may be sent again, how the answer is read,
when a failed send is retried and when decide falls back."""

from __future__ import annotations

import random

import httpx
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


def attempts(*, idempotent: bool = True, attempts: int = 4) -> protocol.Attempts:
    policy = RetryPolicy(attempts=attempts, base_delay=0.05, rng=random.Random(7))
    return protocol.Attempts("http://runtime", idempotent=idempotent, policy=policy)


def answer(status: int, body: bytes) -> httpx.Response:
    return httpx.Response(status, content=body)


UNAVAILABLE = b'{"status":503,"error":"Unavailable","message":"paused"}'


def test_a_success_gives_its_body_and_an_error_answer_its_typed_error() -> None:
    assert attempts().after(answer(200, b"{}")) == b"{}"
    with pytest.raises(ServiceUnavailable) as raised:
        attempts(idempotent=False).after(answer(503, UNAVAILABLE))
    assert raised.value.error == "Unavailable"
    with pytest.raises(ApiError) as refused:
        attempts().after(answer(422, b'{"status":422,"error":"InvalidField","message":"no"}'))
    assert refused.value.status == 422  # not retried: the runtime said no


def test_an_idempotent_call_is_sent_again_after_no_answer_or_a_5xx_until_its_attempts_are_spent() -> None:
    sends = attempts(attempts=4)
    waits = [sends.after(httpx.ConnectError("refused")), sends.after(answer(503, UNAVAILABLE))]
    waits.append(sends.after(answer(502, b"bad gateway")))
    assert all(isinstance(w, float) and 0.0 <= w <= 0.05 * 2**i for i, w in enumerate(waits))
    with pytest.raises(ServiceUnavailable):  # the fourth send was the last
        sends.after(answer(503, UNAVAILABLE))


def test_a_call_that_is_not_idempotent_is_never_sent_again() -> None:
    with pytest.raises(RuntimeUnreachable) as raised:
        attempts(idempotent=False).after(httpx.ConnectError("refused"))
    assert raised.value.url == "http://runtime"


def test_decide_falls_back_only_with_an_arm_and_only_after_no_answer_or_a_5xx() -> None:
    down = RuntimeUnreachable("http://x", OSError("refused"))
    decision = protocol.fallback(down, "blue")
    assert (decision.arm, decision.fallback, decision.decision_id) == ("blue", True, "")
    with pytest.raises(RuntimeUnreachable):
        protocol.fallback(down, None)
    refused = ApiError(422, "InvalidField", "no")
    with pytest.raises(ApiError):
        protocol.fallback(refused, "blue")
