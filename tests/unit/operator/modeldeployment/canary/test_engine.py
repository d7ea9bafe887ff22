"""The canary engine on a fake clock: every transition, step timing, InsufficientData that can never pass,
failureLimit, Rollback vs Pause, the manual pause, availability and spec changes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from croupier.api.modeldeployment import AnalysisResult, ModelDeploymentSpec, RolloutState, RolloutStatus
from croupier.operator.core.conditions import EventNote
from croupier.operator.modeldeployment.canary.engine import RolloutEvent, advance, due, judge
from croupier.operator.modeldeployment.canary.measurement import (
    InsufficientData,
    Measurement,
    Observation,
    VersionSample,
    Window,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GOOD = Measurement(VersionSample(requests=500, error_rate=0.001, p99_latency_milliseconds=40))
BAD = Measurement(VersionSample(requests=500, error_rate=0.2, p99_latency_milliseconds=40))


def make_spec(**canary: Any) -> ModelDeploymentSpec:
    """Stable 1, canary 2: steps 10/50 (120 s each) and analysis (60 s intervals) unless overridden."""
    body: dict[str, Any] = {
        "version": 2,
        "steps": [{"weight": 10, "pauseSeconds": 120}, {"weight": 50, "pauseSeconds": 120}],
        "analysis": {"maxErrorRate": 0.01, "maxP99LatencyMilliseconds": 250, "minRequests": 100, "intervalSeconds": 60},
    }
    body.update(canary)
    body = {k: v for k, v in body.items() if v is not None}
    return ModelDeploymentSpec.model_validate(
        {"model": {"name": "ranker", "storageUri": "file:///models/ranker"}, "stable": {"version": 1}, "canary": body}
    )


@dataclass
class Rollout:
    """The reconcile loop in miniature: a fake clock, the status it keeps, the Events it posted."""

    spec: ModelDeploymentSpec
    available: bool = True
    now: datetime = T0
    status: RolloutStatus | None = None
    weight: int = 0
    events: list[EventNote] = field(default_factory=list)

    def tick(self, seconds: float = 0, observation: Observation | None = None) -> RolloutStatus | None:
        self.now += timedelta(seconds=seconds)
        outcome = advance(self.spec, self.status, observation, self.now, self.available)
        self.status, self.weight = outcome.rollout, outcome.weight
        self.events.extend(outcome.events)
        return self.status

    def interval(self, observation: Observation) -> RolloutStatus:
        """Run the clock to the end of the current interval and hand the engine its measurement."""
        assert self.status is not None and self.status.next_analysis_time is not None
        self.now = self.status.next_analysis_time
        window = due(self.spec, self.status, self.now)
        assert window is not None
        status = self.tick(0, observation)
        assert status is not None
        return status

    @property
    def state(self) -> str:
        assert self.status is not None
        return self.status.state

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]


def test_waiting_until_the_canary_is_available_then_the_first_step_starts() -> None:
    run = Rollout(make_spec(), available=False)
    status = run.tick()
    assert status is not None and status.state == RolloutState.WAITING
    assert (run.weight, status.step, status.step_start_time, status.next_analysis_time) == (0, 0, None, None)
    assert "not AVAILABLE" in (status.message or "")
    run.tick(600)  # time while unavailable does not count toward the step
    assert run.state == RolloutState.WAITING and run.weight == 0
    run.available = True
    status = run.tick(5)
    assert status is not None and status.state == RolloutState.PROGRESSING and run.weight == 10
    assert status.step_start_time == run.now and status.next_analysis_time == run.now + timedelta(seconds=60)
    assert run.reasons() == [RolloutEvent.STARTED]


@pytest.mark.parametrize(
    ("elapsed", "step", "weight"),
    [(0, 0, 10), (119, 0, 10), (120, 1, 50), (239, 1, 50)],
)
def test_steps_without_analysis_advance_when_the_pause_is_over(elapsed: int, step: int, weight: int) -> None:
    run = Rollout(make_spec(analysis=None))
    run.tick()
    for _ in range(elapsed):  # one reconcile a second
        run.tick(1)
    assert run.status is not None and (run.status.step, run.weight) == (step, weight)
    assert run.status.next_analysis_time is None


def test_steps_without_analysis_complete_after_the_last_pause_and_hold() -> None:
    run = Rollout(make_spec(analysis=None))
    run.tick()
    run.tick(120)
    run.tick(119)
    assert run.state == RolloutState.PROGRESSING
    run.tick(1)
    assert run.state == RolloutState.COMPLETE and run.weight == 50
    run.tick(10_000)
    assert run.state == RolloutState.COMPLETE and run.weight == 50
    assert run.reasons() == [RolloutEvent.STARTED, RolloutEvent.STEP_ADVANCED, RolloutEvent.COMPLETE]


def test_with_analysis_a_step_advances_at_its_pause_end_only_on_a_passed_interval_within_it() -> None:
    run = Rollout(make_spec())
    run.tick()
    status = run.interval(GOOD)  # t=60: passed, but the pause (120 s) is not over
    assert (status.step, status.analyses[-1].result if status.analyses else None) == (0, AnalysisResult.PASSED)
    status = run.interval(GOOD)  # t=120: pause over and the latest interval passed
    assert status.step == 1 and run.weight == 50 and status.step_start_time == T0 + timedelta(seconds=120)
    assert status.next_analysis_time == T0 + timedelta(seconds=180)


def test_a_step_whose_pause_is_over_waits_for_its_interval() -> None:
    run = Rollout(make_spec(steps=[{"weight": 10, "pauseSeconds": 60}, {"weight": 20, "pauseSeconds": 60}]))
    run.tick()
    status = run.tick(60)  # the interval has ended but nobody measured it yet: no advance on no data
    assert status is not None and status.step == 0 and "no interval measured" in (status.message or "")
    status = run.interval(GOOD)
    assert status.step == 1


INSUFFICIENT: list[tuple[str, Observation, dict[str, Any]]] = [
    ("source could not measure", InsufficientData("Prometheus unreachable: connection refused"), {}),
    ("no requests at all", Measurement(VersionSample(requests=0)), {}),
    ("fewer than minRequests", Measurement(VersionSample(99, 0.0, 10.0)), {}),
    ("NaN requests", Measurement(VersionSample(math.nan, 0.0, 10.0)), {}),
    ("NaN error rate", Measurement(VersionSample(500, math.nan, 10.0)), {}),
    ("no latency series", Measurement(VersionSample(500, 0.0, None)), {}),
    (
        "stable not measured",
        Measurement(VersionSample(500, 0.0, 10.0)),
        {"analysis": {"maxErrorRateIncrease": 0.01, "intervalSeconds": 60}},
    ),
    (
        "stable under minRequests",
        Measurement(VersionSample(500, 0.0, 10.0), VersionSample(3, 0.0, 10.0)),
        {"analysis": {"maxP99LatencyRatio": 2, "intervalSeconds": 60}},
    ),
    (
        "stable latency infinite",
        Measurement(VersionSample(500, 0.0, 10.0), VersionSample(500, 0.0, math.inf)),
        {"analysis": {"maxP99LatencyRatio": 2, "intervalSeconds": 60}},
    ),
]


@pytest.mark.parametrize(("name", "observation", "canary"), INSUFFICIENT, ids=[c[0] for c in INSUFFICIENT])
def test_insufficient_data_never_passes_and_halts_after_the_limit(
    name: str, observation: Observation, canary: dict[str, Any]
) -> None:
    analysis = {**canary.get("analysis", {"maxErrorRate": 0.01, "maxP99LatencyMilliseconds": 250})}
    analysis |= {"minRequests": 100, "intervalSeconds": 60, "maxInsufficientIntervals": 5}
    run = Rollout(make_spec(analysis=analysis))
    run.tick()
    for n in range(1, 5):
        status = run.interval(observation)
        assert status.analyses is not None and status.analyses[-1].result == AnalysisResult.INSUFFICIENT_DATA
        assert status.step == 0 and run.weight == 10 and status.state == RolloutState.PROGRESSING
        assert status.insufficient_intervals == n and status.failures == 0
        assert status.analyses[-1].message
    status = run.interval(observation)
    assert status.state == RolloutState.HALTED and run.weight == 10 and status.step == 0
    assert "InsufficientData in 5 intervals in a row" in (status.message or "")
    assert due(run.spec, status, run.now + timedelta(days=1)) is None  # halted: no more analysis
    run.tick(86_400, GOOD)
    assert run.state == RolloutState.HALTED and run.weight == 10
    assert RolloutEvent.STEP_ADVANCED not in run.reasons() and RolloutEvent.HALTED in run.reasons()


def test_a_pass_resets_the_insufficient_count_and_the_step_advances_only_on_the_pass() -> None:
    run = Rollout(make_spec())
    run.tick()
    for _ in range(6):  # far beyond the pause, all InsufficientData: still step 0
        run.interval(InsufficientData("no series"))
    assert run.status is not None and run.status.step == 0 and run.status.insufficient_intervals == 6
    status = run.interval(GOOD)
    assert status.step == 1 and status.insufficient_intervals == 0


@pytest.mark.parametrize(
    ("analysis", "canary", "stable", "result"),
    [
        ({"maxErrorRate": 0.01}, VersionSample(100, 0.01, 5), None, AnalysisResult.PASSED),
        ({"maxErrorRate": 0.01}, VersionSample(100, 0.011, 5), None, AnalysisResult.FAILED),
        ({"maxP99LatencyMilliseconds": 250}, VersionSample(100, 0.5, 250), None, AnalysisResult.PASSED),
        ({"maxP99LatencyMilliseconds": 250}, VersionSample(100, 0, 251), None, AnalysisResult.FAILED),
        ({"maxP99LatencyMilliseconds": 250}, VersionSample(100, 0, math.inf), None, AnalysisResult.FAILED),
        ({"maxErrorRateIncrease": 0.02}, VersionSample(100, 0.05, 5), VersionSample(900, 0.03, 5), "Passed"),
        ({"maxErrorRateIncrease": 0.02}, VersionSample(100, 0.06, 5), VersionSample(900, 0.03, 5), "Failed"),
        ({"maxP99LatencyRatio": 1.5}, VersionSample(100, 0, 150), VersionSample(900, 0, 100), "Passed"),
        ({"maxP99LatencyRatio": 1.5}, VersionSample(100, 0, 151), VersionSample(900, 0, 100), "Failed"),
        ({"maxErrorRate": 0.5}, VersionSample(99, 0, 5), None, AnalysisResult.INSUFFICIENT_DATA),
        # TF Serving records latency for successful requests only: a canary failing them all has no p99, and fails.
        (
            {"maxErrorRate": 0.01, "maxP99LatencyMilliseconds": 250},
            VersionSample(300, 1.0, None, gaps=("no latency observations",)),
            None,
            AnalysisResult.FAILED,
        ),
        (
            {"maxErrorRate": 0.01, "maxP99LatencyMilliseconds": 250},
            VersionSample(300, 0.0, None, gaps=("p99 query returned no series",)),
            None,
            AnalysisResult.INSUFFICIENT_DATA,
        ),
        (
            {"maxErrorRateIncrease": 0.01},
            VersionSample(300, 0.0),
            VersionSample(300, math.nan, gaps=("error-rate query returned NaN",)),
            AnalysisResult.INSUFFICIENT_DATA,
        ),
    ],
)
def test_judge_each_threshold(
    analysis: dict[str, Any], canary: VersionSample, stable: VersionSample | None, result: str
) -> None:
    spec = make_spec(weight=10, steps=None, analysis={**analysis, "minRequests": 100})
    assert spec.canary is not None and spec.canary.analysis is not None
    window = Window(T0, T0 + timedelta(seconds=60), 2, 1, spec.canary.analysis.compares_with_stable)
    verdict = judge(spec.canary.analysis, Measurement(canary, stable), window, None, 10)
    assert verdict.result == result, verdict.message
    assert (verdict.start_time, verdict.end_time, verdict.requests) == (
        window.start,
        window.end,
        round(canary.requests),
    )
    if stable is not None:
        assert verdict.stable_requests == stable.requests
    if math.isinf(canary.p99_latency_milliseconds or 0):
        assert verdict.p99_latency_milliseconds is None  # status cannot hold infinity; the message says it
        assert "inf" in (verdict.message or "")


@pytest.mark.parametrize("limit", [0, 1, 3])
def test_failure_limit_failures_are_tolerated_and_the_next_one_rolls_back(limit: int) -> None:
    analysis = {"maxErrorRate": 0.01, "minRequests": 100, "intervalSeconds": 60, "failureLimit": limit}
    run = Rollout(make_spec(analysis=analysis))
    run.tick()
    for n in range(1, limit + 1):
        status = run.interval(BAD)
        assert status.state == RolloutState.PROGRESSING and status.failures == n and run.weight == 10
    status = run.interval(BAD)
    assert status.state == RolloutState.ROLLED_BACK and run.weight == 0
    assert status.rollback is not None and status.rollback.version == 2 and status.rollback.time == run.now
    assert f"failureLimit {limit}" in status.rollback.reason and "maxErrorRate 0.01" in status.rollback.reason
    assert [a.result for a in status.rollback.failed_intervals or []] == ["Failed"] * min(limit + 1, 10)
    assert (status.next_analysis_time, status.step_start_time) == (None, None)
    assert run.reasons().count(RolloutEvent.ANALYSIS_FAILED) == limit + 1
    assert run.reasons()[-1] == RolloutEvent.ROLLED_BACK


def test_failures_count_across_passes_and_steps_never_advance_on_a_failed_interval() -> None:
    analysis = {"maxErrorRate": 0.01, "minRequests": 100, "intervalSeconds": 60, "failureLimit": 2}
    run = Rollout(make_spec(analysis=analysis))
    run.tick()
    run.interval(GOOD)
    status = run.interval(BAD)  # t=120: pause over but the latest interval failed
    assert status.step == 0 and status.failures == 1 and "latest interval Failed" in (status.message or "")
    status = run.interval(GOOD)
    assert status.step == 1 and status.failures == 1  # failures are counted per canary version, not per step
    run.interval(BAD)
    assert run.state == RolloutState.PROGRESSING
    assert run.interval(BAD).state == RolloutState.ROLLED_BACK


def test_a_rolled_back_canary_stays_out_until_its_version_changes() -> None:
    run = Rollout(make_spec(failureLimit=None, analysis={"maxErrorRate": 0.01, "failureLimit": 0}))
    run.tick()
    run.interval(BAD)
    assert run.state == RolloutState.ROLLED_BACK and run.weight == 0
    for edit in ({"paused": True}, {"paused": False}, {"analysis": {"maxErrorRate": 0.5, "failureLimit": 0}}):
        run.spec = make_spec(**edit)
        status = run.tick(3600, GOOD)
        assert status is not None and status.state == RolloutState.ROLLED_BACK and run.weight == 0
        assert status.rollback is not None
    run.spec = make_spec(version=3)
    status = run.tick(1)
    assert status is not None and status.canary_version == 3 and status.rollback is None
    assert status.state == RolloutState.PROGRESSING and run.weight == 10 and status.analyses is None


def test_on_failure_pause_holds_the_weight_until_the_canary_spec_changes() -> None:
    analysis = {"maxErrorRate": 0.01, "minRequests": 100, "intervalSeconds": 60, "failureLimit": 0}
    run = Rollout(make_spec(onFailure="Pause", analysis=analysis))
    run.tick()
    run.interval(GOOD)
    run.interval(GOOD)  # step 1, weight 50
    status = run.interval(BAD)
    assert status.state == RolloutState.HALTED and run.weight == 50 and status.rollback is None
    assert "halted at weight 50" in (status.message or "")
    assert due(run.spec, status, run.now + timedelta(hours=1)) is None
    run.tick(3600, GOOD)
    assert run.state == RolloutState.HALTED and run.weight == 50
    run.available = False  # even a halted canary gets no traffic while it is not AVAILABLE
    run.tick(1)
    assert run.weight == 0
    run.available = True
    run.tick(1)
    assert run.weight == 50
    run.spec = make_spec(onFailure="Pause", analysis={**analysis, "maxErrorRate": 0.02})  # an edit releases the halt
    status = run.tick(1)
    assert status is not None and status.state == RolloutState.PROGRESSING and status.step == 1
    assert status.failures == 0 and status.step_start_time == run.now and run.weight == 50
    assert RolloutEvent.RESUMED in run.reasons()


def test_manual_pause_holds_the_step_but_the_analysis_still_rolls_back() -> None:
    run = Rollout(make_spec(paused=True))
    run.tick()
    assert run.state == RolloutState.PAUSED and run.weight == 10
    for _ in range(5):
        status = run.interval(GOOD)
        assert status.state == RolloutState.PAUSED and status.step == 0 and run.weight == 10
    run.spec = make_spec(paused=False)
    status = run.tick(1)  # the step restarts: its full pause again
    assert status is not None and status.state == RolloutState.PROGRESSING and status.step_start_time == run.now
    resumed = run.now
    run.interval(GOOD)
    status = run.interval(GOOD)
    assert status.step == 1 and run.now == resumed + timedelta(seconds=120)
    run.spec = make_spec(paused=True, analysis={"maxErrorRate": 0.01, "failureLimit": 0})
    run.tick(1)
    assert run.state == RolloutState.PAUSED
    assert run.interval(BAD).state == RolloutState.ROLLED_BACK and run.weight == 0
    assert [r for r in run.reasons() if r in (RolloutEvent.PAUSED, RolloutEvent.RESUMED)] == [
        RolloutEvent.PAUSED,
        RolloutEvent.RESUMED,
        RolloutEvent.PAUSED,
    ]


def test_static_weight_is_served_and_analysed_but_never_completes() -> None:
    run = Rollout(make_spec(steps=None, weight=30))
    status = run.tick()
    assert status is not None and status.state == RolloutState.SERVING and status.step is None and run.weight == 30
    for _ in range(20):
        assert run.interval(GOOD).state == RolloutState.SERVING
    assert run.weight == 30 and run.status is not None and len(run.status.analyses or []) == 10
    run.spec = make_spec(steps=None, weight=30, analysis={"maxErrorRate": 0.01, "failureLimit": 0})
    run.tick(1)
    assert run.interval(BAD).state == RolloutState.ROLLED_BACK


def test_complete_keeps_analysing_and_can_still_roll_back() -> None:
    run = Rollout(make_spec(analysis={"maxErrorRate": 0.01, "failureLimit": 0}))
    run.tick()
    for _ in range(4):
        run.interval(GOOD)
    assert run.state == RolloutState.COMPLETE and run.weight == 50
    assert run.interval(GOOD).state == RolloutState.COMPLETE
    assert run.interval(BAD).state == RolloutState.ROLLED_BACK and run.weight == 0


def test_unavailable_canary_gets_no_weight_and_its_step_restarts_when_back() -> None:
    run = Rollout(make_spec())
    run.tick()
    run.interval(GOOD)
    run.interval(GOOD)
    assert run.status is not None and run.status.step == 1
    run.available = False
    status = run.tick(30)
    assert status is not None and status.state == RolloutState.WAITING and run.weight == 0 and status.step == 1
    assert due(run.spec, status, run.now + timedelta(hours=1)) is None
    run.available = True
    status = run.tick(300)
    assert status is not None and status.state == RolloutState.PROGRESSING and status.step == 1
    assert status.step_start_time == run.now and run.weight == 50


def test_promotion_or_a_new_version_resets_the_rollout() -> None:
    run = Rollout(make_spec())
    run.tick()
    run.interval(BAD)
    assert run.status is not None and run.status.failures == 1
    promoted = ModelDeploymentSpec.model_validate(
        {"model": {"name": "ranker", "storageUri": "file:///models/ranker"}, "stable": {"version": 2}}
    )
    outcome = advance(promoted, run.status, GOOD, run.now, True)
    assert (outcome.rollout, outcome.weight, outcome.events) == (None, 0, ())
    run.spec = make_spec(version=3)
    status = run.tick(1)
    assert status is not None and (status.canary_version, status.failures, status.step, status.analyses) == (
        3,
        0,
        0,
        None,
    )


def test_editing_the_steps_keeps_the_step_within_them() -> None:
    run = Rollout(make_spec(analysis=None))
    run.tick()
    run.tick(120)
    assert run.status is not None and run.status.step == 1
    run.spec = make_spec(analysis=None, steps=[{"weight": 5, "pauseSeconds": 60}])
    status = run.tick(1)
    assert status is not None and status.step == 0 and run.weight == 5
    run.tick(60)
    assert run.state == RolloutState.COMPLETE
    run.spec = make_spec(analysis=None, steps=[{"weight": 5, "pauseSeconds": 60}, {"weight": 40, "pauseSeconds": 60}])
    status = run.tick(1)
    assert status is not None and status.state == RolloutState.PROGRESSING
    run.tick(0)
    assert run.weight == 40


def test_same_inputs_give_the_same_status_and_no_events() -> None:
    run = Rollout(make_spec())
    run.tick()
    run.interval(GOOD)
    before = run.status
    outcome = advance(run.spec, before, None, run.now + timedelta(seconds=5), True)
    assert outcome.rollout == before and outcome.events == ()
    not_due = advance(run.spec, before, BAD, run.now + timedelta(seconds=5), True)  # an early measurement is ignored
    assert not_due.rollout == before and not_due.events == ()


def test_due_reports_the_interval_window() -> None:
    run = Rollout(make_spec(analysis={"maxErrorRateIncrease": 0.01, "intervalSeconds": 60}))
    status = run.tick()
    assert due(run.spec, status, T0 + timedelta(seconds=59)) is None
    window = due(run.spec, status, T0 + timedelta(seconds=75))
    assert window == Window(T0, T0 + timedelta(seconds=75), 2, 1, True) and window.seconds == 75
