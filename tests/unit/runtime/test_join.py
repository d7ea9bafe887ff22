"""The reward join's rules as pure functions: one answer per outcome, the same messages for every store, pause."""

from __future__ import annotations

import pytest
from support.policies import served_policy

from croupier.runtime.decisions.join import DecisionState, Joinable, JoinRules, join, learned, settle
from croupier.runtime.decisions.records import Learned, RewardItem
from croupier.runtime.errors import AttributionWindowExpired, UnknownDecision


def _joinable(state: DecisionState = DecisionState.WAITING, expires_at: float = 110.0) -> Joinable:
    return Joinable("blue", 100.0, expires_at, state, None)


def test_the_join_answers_each_outcome_once_for_every_store() -> None:
    items = [RewardItem("a", 1.0, "rewards[0]."), RewardItem("b", 0.0, "rewards[1]."), RewardItem("a", 1.0, "x.")]
    joined = join(items, [_joinable(), _joinable(DecisionState.REWARDED), _joinable()], received_at=105.0)
    assert [item.decision_id for item, _ in joined.accepted] == ["a"]
    assert [(o.decision_id, o.accepted) for o in joined.outcomes] == [("a", True), ("b", False), ("a", False)]

    with pytest.raises(UnknownDecision) as unknown:
        join(items[:2], [_joinable(), None], received_at=105.0)
    assert unknown.value.field == "rewards[1].decisionId"
    assert "never made" in unknown.value.message

    for state, default in ((DecisionState.WAITING, ""), (DecisionState.EXPIRED, ""), (DecisionState.DEFAULTED, "; it")):
        with pytest.raises(AttributionWindowExpired) as late:
            join(items[:1], [_joinable(state, expires_at=104.0)], received_at=105.5)
        assert late.value.field == "rewards[0].decisionId"
        assert late.value.message == (
            "the attribution window of decision 'a' closed 1.500 s before this reward arrived (window 4 s"
            + ("; it got the default reward)" if default else ")")
        )


def test_pause_is_decided_by_the_join_rules_and_carried_by_every_stored_reward() -> None:
    paused = JoinRules.of(served_policy(paused=True).spec)
    running_rules = JoinRules.of(served_policy(reward={"defaultReward": 0}).spec)
    assert not learned(paused, "blue", 1.0, None, default=False).learn
    assert learned(running_rules, "blue", 1.0, None, default=True) == Learned("blue", 1.0, None, True, True)
    assert settle(paused) == (DecisionState.EXPIRED, None)
    assert settle(running_rules) == (DecisionState.DEFAULTED, 0.0)
