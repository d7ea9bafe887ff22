"""The sync client against a real `croupier-runtime`: decide and reward round trip, typed errors, bearer tokens,
retries for idempotent calls only (a relay swallows answers the runtime did send), and the fallback arm."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from croupier.client import (
    Client,
    Forbidden,
    InvalidArgument,
    InvalidRequest,
    NotFound,
    RetryPolicy,
    RuntimeUnreachable,
    Unauthorized,
)
from croupier.client.errors import Conflict

from ..runtime.test_auth import TOKENS, write_tokens
from .conftest import START_TIMEOUT, Relay, RuntimeProcess, server_port, write_policy

FAST_RETRY = RetryPolicy(attempts=4, base_delay=0.01, max_delay=0.05)


def test_decide_and_reward_round_trip(policy_runtime: RuntimeProcess) -> None:
    with Client(policy_runtime.url) as client:
        decision = client.decide("player-1", candidates=["blue", "green"])
        assert decision.arm in ("blue", "green")
        assert not decision.fallback
        assert set(decision.probabilities) == {"blue", "green"}
        assert sum(decision.probabilities.values()) == pytest.approx(1.0)
        assert decision.policy_version.startswith("g1-")

        first = client.reward(decision, 1)
        assert first is not None
        assert (first.accepted, first.duplicates) == (1, 0)
        again = client.reward(decision.decision_id, 1)
        assert again is not None
        assert (again.accepted, again.duplicates) == (0, 1)
        assert again.results[0].outcome == "duplicate"

        more = [client.decide(f"player-{i}") for i in range(5)]
        batch = client.rewards((d, i % 2) for i, d in enumerate(more))
        assert batch is not None
        assert batch.accepted == 5
        assert [r.decision_id for r in batch.results] == [d.decision_id for d in more]

        stats = client.stats()
        assert stats.totals.decisions == 6
        assert stats.totals.rewards == 6
        assert stats.policy.name == "banner"
        assert sum(arm.pulls for arm in stats.arms) == 6


def test_errors_are_typed_with_the_runtime_code_and_field(policy_runtime: RuntimeProcess) -> None:
    with Client(policy_runtime.url) as client:
        with pytest.raises(InvalidRequest) as bad_arm:
            client.decide(candidates=["blue", "purple"])
        assert (bad_arm.value.status, bad_arm.value.error, bad_arm.value.field) == (422, "UnknownArm", "candidates[1]")

        with pytest.raises(NotFound) as unknown:
            client.reward("no-such-decision", 1)
        assert unknown.value.error == "UnknownDecision"
        assert unknown.value.field == "decisionId"

        decision = client.decide()
        with pytest.raises(InvalidRequest) as not_binary:
            client.reward(decision, 0.5)
        assert not_binary.value.error == "InvalidReward"

        # Checked before sending: the runtime never sees these.
        with pytest.raises(InvalidArgument) as nan:
            client.reward(decision, float("nan"))
        assert nan.value.field == "reward"
        with pytest.raises(InvalidArgument) as empty:
            client.decide(candidates=[])
        assert empty.value.field == "candidates"
        assert client.stats().totals.decisions == 1


def test_a_late_reward_is_a_conflict(tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]) -> None:
    policy = write_policy(tmp_path / "short.yaml", reward={"type": "Binary", "attributionWindowSeconds": 1})
    runtime = runtime_process(policy).start(START_TIMEOUT)
    with Client(runtime.url) as client:
        decision = client.decide()
        time.sleep(2.2)
        with pytest.raises(Conflict) as late:
            client.reward(decision, 1)
        assert late.value.error == "AttributionWindowExpired"


def test_bearer_token(tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]) -> None:
    secret = tmp_path / "auth"
    secret.mkdir()
    write_tokens(secret, TOKENS, 1)
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml"), args=["--auth-dir", str(secret)]).start(
        START_TIMEOUT
    )
    with Client(runtime.url) as anonymous, pytest.raises(Unauthorized) as missing:
        anonymous.decide()
    assert missing.value.error == "Unauthorized"
    with Client(runtime.url, token=TOKENS["decide"]) as deciding:
        decision = deciding.decide()
        with pytest.raises(Forbidden):
            deciding.reward(decision, 1)
    with Client(runtime.url, token=TOKENS["rewards"]) as rewarding:
        answer = rewarding.reward(decision, 1)
        assert answer is not None and answer.accepted == 1
    with Client(runtime.url, token=TOKENS["admin"]) as admin:
        assert admin.stats().totals.rewards == 1


def test_rewards_are_retried_and_decide_is_not(relay: Relay, policy_runtime: RuntimeProcess) -> None:
    """The relay forwards each call to the runtime and swallows the first answer: the runtime did the work."""
    with Client(relay.url, retry=FAST_RETRY) as client, Client(policy_runtime.url) as direct:
        relay.drop["/v1/decide"] = 1
        with pytest.raises(RuntimeUnreachable):
            client.decide("player-1")
        assert relay.seen["/v1/decide"] == 1  # sent once
        assert direct.stats().totals.decisions == 1  # and the runtime logged that one decision

        decision = direct.decide("player-2")
        relay.drop["/v1/rewards"] = 2
        answer = client.reward(decision, 1)
        assert relay.seen["/v1/rewards"] == 3
        assert answer is not None
        assert (answer.accepted, answer.duplicates) == (0, 1)  # stored by the first attempt
        assert direct.stats().totals.rewards == 1

        relay.drop["/v1/stats"] = 1
        assert client.stats().totals.decisions == 2
        assert relay.seen["/v1/stats"] == 2

        relay.drop["/v1/rewards"] = 10
        other = direct.decide("player-3")
        with pytest.raises(RuntimeUnreachable):
            client.reward(other, 0)
        assert relay.seen["/v1/rewards"] == 3 + FAST_RETRY.attempts


def test_fallback_arm_when_nothing_listens() -> None:
    url = f"http://127.0.0.1:{server_port()}"
    with Client(url, fallback_arm="blue", retry=FAST_RETRY) as client:
        started = time.monotonic()
        decision = client.decide("player-1")
        assert time.monotonic() - started < 1.0
        assert decision.fallback
        assert decision.arm == "blue"
        assert decision.decision_id == ""
        assert decision.probabilities == {"blue": 1.0}
        assert decision.fallback_reason is not None and "did not answer" in decision.fallback_reason
        assert client.reward(decision, 1) is None  # never sent: the runtime logged no decision
        assert client.decide(fallback_arm="red").arm == "red"
        with pytest.raises(RuntimeUnreachable):
            client.stats()
    with Client(url) as plain, pytest.raises(RuntimeUnreachable):
        plain.decide()


def test_fallback_is_not_used_for_bad_requests(policy_runtime: RuntimeProcess) -> None:
    with Client(policy_runtime.url, fallback_arm="blue") as client, pytest.raises(InvalidRequest):
        client.decide(candidates=["nope"])
