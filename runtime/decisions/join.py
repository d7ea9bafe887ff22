"""The reward join, written once for every store: attribution window, duplicates, default and late rewards, pause.

Pure functions over typed values. A store looks up the decisions a request names (SQLite rows, Redis records), calls
`join`, writes what it accepted, and builds each `Learned` with `learned`; its background sweep asks `window_closed`
and `settle` for decisions that never got a reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from croupier.api.decisionpolicy import DecisionPolicySpec
from croupier.runtime.decisions.records import Learned, RewardItem, RewardOutcome
from croupier.runtime.errors import AttributionWindowExpired, UnknownDecision


class DecisionState(IntEnum):
    """Where a logged decision stands (stored as an integer by the SQLite log)."""

    WAITING = 0
    REWARDED = 1
    DEFAULTED = 2
    """Its window closed without a reward; it got the default reward."""
    EXPIRED = 3
    """Its window closed without a reward, and the policy has no default reward."""


@dataclass(frozen=True, slots=True)
class JoinRules:
    """The rules of one served policy, from its spec."""

    window: float
    """Attribution window, seconds: a reward must arrive within this time after its decision."""
    default_reward: float | None
    """Given to a decision whose window closed without a reward (None: the decision just expires)."""
    learn: bool
    """False while the policy is paused: rewards are joined and stored, and the policy does not learn them (now, at a
    restart or after the pause). The one place pause is decided; everything else follows `Learned.learn`."""

    @classmethod
    def of(cls, spec: DecisionPolicySpec) -> JoinRules:
        return cls(
            window=float(spec.reward.attribution_window_seconds),
            default_reward=spec.reward.default_reward,
            learn=not spec.paused,
        )


class Joinable(NamedTuple):
    """What a store knows about a decision when a reward for it arrives."""

    arm: str
    timestamp: float
    expires_at: float
    state: DecisionState
    features: np.ndarray | None


class Joined(NamedTuple):
    """A request's rewards after the join: those to store (first occurrence of each decision still waiting) and the
    answer for every item, in request order."""

    accepted: list[tuple[RewardItem, Joinable]]
    outcomes: list[RewardOutcome]


def window_closed(expires_at: float, now: float) -> bool:
    return now > expires_at


def join(items: Sequence[RewardItem], decisions: Sequence[Joinable | None], received_at: float) -> Joined:
    """Join the rewards of one request with their decisions (same order); all or nothing.

    Raises `UnknownDecision` for a decision the store does not have, `AttributionWindowExpired` for one whose window
    closed (whether or not it got the default reward). A decision rewarded before, or named twice in the request, is a
    duplicate: answered, not stored again.
    """
    accepted: list[tuple[RewardItem, Joinable]] = []
    outcomes: list[RewardOutcome] = []
    seen: set[str] = set()
    for item, decision in zip(items, decisions, strict=True):
        if decision is None:
            raise UnknownDecision(
                f"no decision {item.decision_id!r} (never made, or its record is past the decision log's retention)",
                field=item.field + "decisionId",
            )
        if decision.state == DecisionState.REWARDED or item.decision_id in seen:
            outcomes.append(RewardOutcome(item.decision_id, False))
            continue
        defaulted = decision.state == DecisionState.DEFAULTED
        if defaulted or decision.state == DecisionState.EXPIRED or window_closed(decision.expires_at, received_at):
            raise AttributionWindowExpired(
                f"the attribution window of decision {item.decision_id!r} closed "
                f"{received_at - decision.expires_at:.3f} s before this reward arrived "
                f"(window {decision.expires_at - decision.timestamp:.0f} s"
                + ("; it got the default reward)" if defaulted else ")"),
                field=item.field + "decisionId",
            )
        seen.add(item.decision_id)
        accepted.append((item, decision))
        outcomes.append(RewardOutcome(item.decision_id, True))
    return Joined(accepted, outcomes)


def learned(rules: JoinRules, arm: str, reward: float, features: np.ndarray | None, *, default: bool) -> Learned:
    """A stored reward, as the policy learns it (or not: see `JoinRules.learn`)."""
    return Learned(arm, reward, features, default, rules.learn)


def settle(rules: JoinRules) -> tuple[DecisionState, float | None]:
    """What a decision whose window closed without a reward becomes, and its default reward (None: none)."""
    if rules.default_reward is None:
        return DecisionState.EXPIRED, None
    return DecisionState.DEFAULTED, rules.default_reward
