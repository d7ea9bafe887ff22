"""Events for the condition reasons a kind declares (an Experiment's WinnerFound, Concluded, guardrail actions):
posted when a condition takes the reason, once per reason, never again while it keeps it, and never twice beside the
Ready/Degraded transition Events."""

from __future__ import annotations

from datetime import UTC, datetime

from croupier.api.common import Condition, ConditionStatus, ConditionType
from croupier.api.experiment import Reason
from croupier.operator.core.conditions import (
    DesiredCondition,
    EventNote,
    all_events,
    merge_conditions,
    reason_events,
)
from croupier.operator.experiment.handlers import CONTROLLER

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED
DECLARED = {str(reason): kind for reason, kind in CONTROLLER.event_reasons.items()}


def serving(
    reason: Reason, message: str, *, degraded: bool = False, current: list[Condition] | None = None
) -> list[Condition]:
    desired = [
        DesiredCondition(READY, TRUE, reason, message),
        DesiredCondition(PROGRESSING, FALSE, reason, message),
        DesiredCondition(DEGRADED, TRUE if degraded else FALSE, reason, message),
    ]
    return merge_conditions(current, desired, generation=1, now=T0)


def test_the_experiment_declares_its_news() -> None:
    assert DECLARED == {
        "WinnerFound": "Normal",
        "Concluded": "Normal",
        "Paused": "Normal",
        "GuardrailViolated": "Warning",
        "SampleRatioMismatch": "Warning",
    }


def test_a_winner_posts_one_event_while_ready_stays_true() -> None:
    running = serving(Reason.INSUFFICIENT_TRAFFIC, "40% of the traffic needed")
    winner = serving(Reason.WINNER_FOUND, "b beats a: lift 12%", current=running)
    assert all_events(running, winner, DECLARED) == [EventNote("Normal", "WinnerFound", "b beats a: lift 12%")]
    # Without the declaration nothing is news: Ready stayed True.
    assert all_events(running, winner) == []
    # Settled: the same reason again posts nothing (and a message that moved is not news either).
    again = serving(Reason.WINNER_FOUND, "b beats a: lift 13%", current=winner)
    assert all_events(winner, again, DECLARED) == []


def test_concluded_after_a_winner_posts_its_own_event() -> None:
    winner = serving(Reason.WINNER_FOUND, "b beats a")
    concluded = serving(Reason.CONCLUDED, "concluded (KeepWinner): serving b=100", current=winner)
    assert all_events(winner, concluded, DECLARED) == [
        EventNote("Normal", "Concluded", "concluded (KeepWinner): serving b=100")
    ]


def test_a_guardrail_action_posts_one_warning_not_two() -> None:
    # Degraded turns True with the reason: the transition's Warning carries it; the declared reason adds nothing.
    running = serving(Reason.NO_SIGNIFICANT_DIFFERENCE, "no variant beats control at alpha 0.05")
    violated = serving(Reason.GUARDRAIL_VIOLATED, "b: latency lift 30%; action Pause", degraded=True, current=running)
    notes = all_events(running, violated, DECLARED)
    assert [(n.type, n.reason) for n in notes] == [("Warning", "GuardrailViolated")]
    assert "action Pause" in notes[0].message


def test_a_reason_on_a_new_object_is_news_too() -> None:
    concluded = serving(Reason.CONCLUDED, "concluded (KeepWinner): serving a=100")
    assert reason_events(None, concluded, DECLARED) == [
        EventNote("Normal", "Concluded", "concluded (KeepWinner): serving a=100")
    ]
