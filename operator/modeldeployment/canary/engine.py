"""The canary rollout engine: one pure step from the previous rollout status to the next.

``advance(spec, previous, observation, now, canary_available)`` is all the reconcile calls. It never reads a clock or
the network: the reconcile asks ``due(spec, rollout, now)`` whether an analysis interval has ended, has a metric source
measure that window, and passes the result in. The same inputs always give the same output, so a reconcile with
nothing new writes nothing.

Rules (docs/canary.md, "Canary analysis"):
- The canary gets weight only while TF Serving reports it AVAILABLE; until then the rollout is Waiting, no clock
  runs.
- A step holds its weight for ``pauseSeconds``; with analysis it advances only when the latest interval, measured
  within the step, Passed. InsufficientData never passes: the step waits.
- More than ``failureLimit`` failed intervals: ``Rollback`` (weight 0 at once, recorded; out until canary.version
  changes) or ``Pause`` (Halted at the current weight until the canary spec changes).
- ``maxInsufficientIntervals`` InsufficientData intervals in a row also halt the rollout.
- ``canary.paused`` holds the weight and stops the steps; the analysis runs on.
- A new canary version (or no canary) starts afresh; any other edit of the canary spec releases a halt.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from croupier.api.modeldeployment import (
    MAX_ANALYSIS_HISTORY,
    AnalysisResult,
    AnalysisStatus,
    CanaryAnalysis,
    CanarySpec,
    ModelDeploymentSpec,
    OnFailure,
    RollbackStatus,
    RolloutState,
    RolloutStatus,
)
from croupier.operator.core.conditions import EventNote

from .measurement import InsufficientData, Measurement, Observation, Window, missing


class RolloutEvent(StrEnum):
    """Reasons of the Kubernetes Events the rollout emits."""

    STARTED = "CanaryStarted"
    STEP_ADVANCED = "CanaryStepAdvanced"
    COMPLETE = "CanaryComplete"
    PAUSED = "CanaryPaused"
    RESUMED = "CanaryResumed"
    ANALYSIS_FAILED = "CanaryAnalysisFailed"
    HALTED = "CanaryHalted"
    ROLLED_BACK = "CanaryRolledBack"


@dataclass(frozen=True)
class Outcome:
    """The next rollout status, the live canary weight to route, and the Events to post."""

    rollout: RolloutStatus | None
    weight: int
    events: tuple[EventNote, ...] = ()


def spec_hash(canary: CanarySpec) -> str:
    """A digest of the canary spec as stored: any edit changes it."""
    wire = json.dumps(canary.to_wire(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(wire.encode()).hexdigest()[:16]


def due(spec: ModelDeploymentSpec, rollout: RolloutStatus | None, now: datetime) -> Window | None:
    """The interval to measure now, if one has ended: from its start to ``now``."""
    canary = spec.canary
    if canary is None or canary.analysis is None or rollout is None or rollout.next_analysis_time is None:
        return None
    if rollout.canary_version != canary.version or now < rollout.next_analysis_time:
        return None
    start = rollout.next_analysis_time - timedelta(seconds=canary.analysis.interval_seconds)
    return Window(start, now, canary.version, spec.stable.version, canary.analysis.compares_with_stable)


def advance(
    spec: ModelDeploymentSpec,
    previous: RolloutStatus | None,
    observation: Observation | None,
    now: datetime,
    canary_available: bool,
) -> Outcome:
    """The rollout one step on. ``observation`` counts only when ``due`` says an interval has ended (it measures
    that window); ``canary_available``: TF Serving reports the canary version AVAILABLE."""
    now = now.replace(microsecond=0)
    canary = spec.canary
    if canary is None:
        return Outcome(None, 0)
    events: list[EventNote] = []
    digest = spec_hash(canary)
    if previous is None or previous.canary_version != canary.version:
        rollout = RolloutStatus(
            canary_version=canary.version,
            spec_hash=digest,
            state=RolloutState.WAITING,
            step=0 if canary.steps else None,
        )
        events.append(EventNote("Normal", RolloutEvent.STARTED, f"canary version {canary.version} rollout started"))
    else:
        rollout = _follow_spec_edit(canary, previous, digest, events)

    if rollout.state == RolloutState.ROLLED_BACK:
        return Outcome(rollout, 0, tuple(events))
    if not canary_available:
        if rollout.state != RolloutState.HALTED:
            rollout = _update(
                rollout,
                state=RolloutState.WAITING,
                weight=0,
                step_start_time=None,
                next_analysis_time=None,
                message=f"canary version {canary.version} is not AVAILABLE in TF Serving yet",
            )
        else:
            rollout = _update(rollout, weight=0)
        return Outcome(rollout, 0, tuple(events))

    weight = canary.weight_at(rollout.step)
    if rollout.state == RolloutState.HALTED:
        rollout = _update(rollout, weight=weight)
        return Outcome(rollout, weight, tuple(events))

    if rollout.step_start_time is None:  # the canary just became AVAILABLE (or the rollout just began)
        rollout = _update(
            rollout,
            state=RolloutState.PROGRESSING if canary.steps else RolloutState.SERVING,
            step_start_time=now,
            next_analysis_time=_next_analysis(canary.analysis, now),
            message=None,
        )
    rollout = _update(rollout, weight=weight)

    analysis = canary.analysis
    if analysis is not None and observation is not None and due(spec, rollout, now) is not None:
        rollout = _analyse(
            spec=spec,
            canary=canary,
            analysis=analysis,
            rollout=rollout,
            observation=observation,
            now=now,
            events=events,
        )
        if rollout.state in (RolloutState.ROLLED_BACK, RolloutState.HALTED):
            return Outcome(rollout, rollout.weight, tuple(events))
    elif analysis is None and rollout.next_analysis_time is not None:
        rollout = _update(rollout, next_analysis_time=None)
    elif analysis is not None and rollout.next_analysis_time is None:
        rollout = _update(rollout, next_analysis_time=_next_analysis(analysis, now))

    rollout = _progress(canary, rollout, now, events)
    return Outcome(rollout, rollout.weight, tuple(events))


def _follow_spec_edit(
    canary: CanarySpec, previous: RolloutStatus, digest: str, events: list[EventNote]
) -> RolloutStatus:
    """The same canary version under an edited spec: keep the step within the steps, release a halt."""
    if previous.spec_hash == digest:
        return previous
    steps = canary.steps
    step = None if not steps else min(previous.step or 0, len(steps) - 1)
    rollout = _update(previous, spec_hash=digest, step=step)
    if previous.state == RolloutState.HALTED:
        rollout = _update(
            rollout,
            state=RolloutState.WAITING,
            step_start_time=None,
            failures=0,
            insufficient_intervals=0,
            message=None,
        )
        events.append(EventNote("Normal", RolloutEvent.RESUMED, "canary spec changed: the halted rollout resumes"))
    elif previous.state in (RolloutState.SERVING, RolloutState.PROGRESSING, RolloutState.COMPLETE):
        if not steps:
            rollout = _update(rollout, state=RolloutState.SERVING)
        elif previous.state == RolloutState.SERVING or (step is not None and step < len(steps) - 1):
            rollout = _update(rollout, state=RolloutState.PROGRESSING)
    return rollout


def _next_analysis(analysis: CanaryAnalysis | None, now: datetime) -> datetime | None:
    return None if analysis is None else now + timedelta(seconds=analysis.interval_seconds)


def _analyse(
    *,
    spec: ModelDeploymentSpec,
    canary: CanarySpec,
    analysis: CanaryAnalysis,
    rollout: RolloutStatus,
    observation: Observation,
    now: datetime,
    events: list[EventNote],
) -> RolloutStatus:
    """Judge the interval that just ended and act on the verdict."""
    assert rollout.next_analysis_time is not None
    start = rollout.next_analysis_time - timedelta(seconds=analysis.interval_seconds)
    window = Window(start, now, canary.version, spec.stable.version, analysis.compares_with_stable)
    record = judge(analysis, observation, window, rollout.step, rollout.weight)
    history = [*(rollout.analyses or []), record][-MAX_ANALYSIS_HISTORY:]
    rollout = _update(rollout, analyses=history, next_analysis_time=now + timedelta(seconds=analysis.interval_seconds))

    if record.result == AnalysisResult.PASSED:
        return _update(rollout, insufficient_intervals=0)
    if record.result == AnalysisResult.INSUFFICIENT_DATA:
        insufficient = rollout.insufficient_intervals + 1
        rollout = _update(rollout, insufficient_intervals=insufficient)
        if insufficient >= analysis.max_insufficient_intervals:
            message = (
                f"InsufficientData in {insufficient} intervals in a row (maxInsufficientIntervals "
                f"{analysis.max_insufficient_intervals}): {record.message}; holding weight {rollout.weight} until the "
                "canary spec changes"
            )
            events.append(EventNote("Warning", RolloutEvent.HALTED, message))
            return _update(rollout, state=RolloutState.HALTED, next_analysis_time=None, message=message)
        return rollout

    failures = rollout.failures + 1
    rollout = _update(rollout, failures=failures, insufficient_intervals=0)
    events.append(
        EventNote(
            "Warning",
            RolloutEvent.ANALYSIS_FAILED,
            f"interval failed ({failures} of failureLimit {analysis.failure_limit} tolerated): {record.message}",
        )
    )
    if failures <= analysis.failure_limit:
        return rollout
    reason = f"{failures} failed intervals > failureLimit {analysis.failure_limit}; last: {record.message}"
    if canary.on_failure == OnFailure.ROLLBACK:
        failed = [a for a in history if a.result == AnalysisResult.FAILED]
        rollback = RollbackStatus(version=canary.version, time=now, reason=reason, failed_intervals=failed)
        message = f"canary version {canary.version} rolled back: {reason}"
        events.append(EventNote("Warning", RolloutEvent.ROLLED_BACK, message))
        return _update(
            rollout,
            state=RolloutState.ROLLED_BACK,
            weight=0,
            step_start_time=None,
            next_analysis_time=None,
            message=message,
            rollback=rollback,
        )
    message = f"halted at weight {rollout.weight}: {reason}; the rollout resumes when the canary spec changes"
    events.append(EventNote("Warning", RolloutEvent.HALTED, message))
    return _update(rollout, state=RolloutState.HALTED, next_analysis_time=None, message=message)


def judge(
    analysis: CanaryAnalysis, observation: Observation, window: Window, step: int | None, weight: int
) -> AnalysisStatus:
    """One interval's verdict. Anything short of enough numbers for every threshold is InsufficientData."""
    stable_version = window.stable_version

    def verdict(result: AnalysisResult, message: str) -> AnalysisStatus:
        return AnalysisStatus.model_validate(
            {
                "result": result,
                "start_time": window.start,
                "end_time": window.end,
                "step": step,
                "weight": weight,
                "message": message[:4096],
                **numbers,
            }
        )

    numbers: dict[str, float | int | None] = {}
    if isinstance(observation, InsufficientData):
        return verdict(AnalysisResult.INSUFFICIENT_DATA, observation.reason)
    assert isinstance(observation, Measurement)
    c, s = observation.canary, observation.stable
    numbers = {
        "requests": _count(c.requests),
        "error_rate": _finite_or_none(c.error_rate),
        "p99_latency_milliseconds": _finite_or_none(c.p99_latency_milliseconds),
    }
    if s is not None and analysis.compares_with_stable:
        numbers |= {
            "stable_requests": _count(s.requests),
            "stable_error_rate": _finite_or_none(s.error_rate),
            "stable_p99_latency_milliseconds": _finite_or_none(s.p99_latency_milliseconds),
        }
    insufficient = AnalysisResult.INSUFFICIENT_DATA
    if missing(c.requests) or (c.requests or 0.0) < analysis.min_requests:
        return verdict(
            insufficient,
            f"canary served {_show(c.requests)} requests < minRequests {analysis.min_requests}{_why(c.gaps)}",
        )
    if analysis.compares_with_stable:
        if s is None:
            return verdict(insufficient, f"no measurement of stable version {stable_version} to compare with")
        if missing(s.requests) or (s.requests or 0.0) < analysis.min_requests:
            return verdict(
                insufficient,
                f"stable version {stable_version} served {_show(s.requests)} requests < minRequests "
                f"{analysis.min_requests}{_why(s.gaps)}",
            )

    # Every threshold with its numbers is checked: one failure fails the interval even when another threshold lacks
    # data (TF Serving records latency for successful requests only, so a canary failing every request has no p99).
    failed: list[str] = []
    gaps: list[str] = []
    error_rate, p99 = c.error_rate, c.p99_latency_milliseconds
    if analysis.max_error_rate is not None:
        if missing(error_rate):
            gaps.append(f"no canary error rate{_why(c.gaps)}")
        elif (error_rate or 0.0) > analysis.max_error_rate:
            failed.append(f"error rate {error_rate:.4g} > maxErrorRate {analysis.max_error_rate:g}")
    if analysis.max_p99_latency_milliseconds is not None:
        if missing(p99):
            gaps.append(f"no canary p99 latency{_why(c.gaps)}")
        elif (p99 or 0.0) > analysis.max_p99_latency_milliseconds:
            failed.append(
                f"p99 latency {p99:.4g} ms > maxP99LatencyMilliseconds {analysis.max_p99_latency_milliseconds}"
            )
    if s is not None and analysis.max_error_rate_increase is not None:
        if missing(error_rate) or missing(s.error_rate):
            gaps.append(f"no error rate of {'the canary' if missing(error_rate) else 'stable'}{_why(c.gaps + s.gaps)}")
        elif (error_rate or 0.0) > (s.error_rate or 0.0) + analysis.max_error_rate_increase:
            failed.append(
                f"error rate {error_rate:.4g} > stable's {s.error_rate:.4g} + maxErrorRateIncrease "
                f"{analysis.max_error_rate_increase:g}"
            )
    if s is not None and analysis.max_p99_latency_ratio is not None:
        stable_p99 = s.p99_latency_milliseconds
        if missing(p99) or missing(stable_p99) or math.isinf(stable_p99 or 0.0):
            gaps.append(f"no finite p99 latency of {'the canary' if missing(p99) else 'stable'}{_why(c.gaps + s.gaps)}")
        elif (p99 or 0.0) > (stable_p99 or 0.0) * analysis.max_p99_latency_ratio:
            failed.append(
                f"p99 latency {p99:.4g} ms > {analysis.max_p99_latency_ratio:g} x stable's {stable_p99:.4g} ms"
            )
    if failed:
        return verdict(AnalysisResult.FAILED, "; ".join(failed + gaps))
    if gaps:
        return verdict(insufficient, "; ".join(gaps))
    return verdict(AnalysisResult.PASSED, f"{_show(c.requests)} requests within every threshold")


def _progress(canary: CanarySpec, rollout: RolloutStatus, now: datetime, events: list[EventNote]) -> RolloutStatus:
    """Manual pause, step timing and completion, once the analysis (if any) has had its say."""
    if canary.paused:
        if rollout.state != RolloutState.PAUSED:
            events.append(EventNote("Normal", RolloutEvent.PAUSED, f"canary paused by spec at weight {rollout.weight}"))
        return _update(rollout, state=RolloutState.PAUSED, message="canary.paused is set: holding the weight")
    if rollout.state == RolloutState.PAUSED:  # resumed: the current step's pause starts anew
        events.append(EventNote("Normal", RolloutEvent.RESUMED, "canary.paused cleared: the current step restarts"))
        rollout = _update(
            rollout,
            state=RolloutState.PROGRESSING if canary.steps else RolloutState.SERVING,
            step_start_time=now,
            next_analysis_time=_next_analysis(canary.analysis, now),
            message=None,
        )
    steps = canary.steps
    if not steps or rollout.state == RolloutState.COMPLETE:
        return rollout
    assert rollout.step is not None and rollout.step_start_time is not None
    step = rollout.step
    if now < rollout.step_start_time + timedelta(seconds=steps[step].pause_seconds):
        return _update(rollout, message=None)
    if canary.analysis is not None:
        latest = rollout.analyses[-1] if rollout.analyses else None
        within = latest is not None and latest.step == step and latest.start_time >= rollout.step_start_time
        if latest is None or not within or latest.result != AnalysisResult.PASSED:
            why = "no interval measured within the step yet"
            if latest is not None and within:
                why = f"latest interval {latest.result}: {latest.message}"
            return _update(rollout, message=f"step {step} waits for an interval to pass ({why})")
    if step == len(steps) - 1:
        events.append(
            EventNote("Normal", RolloutEvent.COMPLETE, f"last step done at weight {rollout.weight}: ready to promote")
        )
        return _update(rollout, state=RolloutState.COMPLETE, message=None)
    weight = steps[step + 1].weight
    events.append(EventNote("Normal", RolloutEvent.STEP_ADVANCED, f"step {step + 1}: canary weight {weight}"))
    return _update(
        rollout,
        step=step + 1,
        weight=weight,
        step_start_time=now,
        next_analysis_time=_next_analysis(canary.analysis, now),
        message=None,
    )


def _update(rollout: RolloutStatus, **changes: object) -> RolloutStatus:
    """A validated copy with ``changes`` (the models are frozen; model_copy alone would skip validation)."""
    return RolloutStatus.model_validate({**dict(rollout), **changes})


def _count(value: float | None) -> int | None:
    return None if value is None or not math.isfinite(value) else max(0, round(value))


def _finite_or_none(value: float | None) -> float | None:
    """What status can hold (JSON has no NaN or infinity; the message names an infinite latency)."""
    return None if value is None or not math.isfinite(value) else value


def _show(value: float | None) -> str:
    return "no" if missing(value) else f"{value:.0f}"


def _why(gaps: tuple[str, ...]) -> str:
    return f" ({'; '.join(gaps)})" if gaps else ""
