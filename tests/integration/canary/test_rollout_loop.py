"""The engine, the Analyst and RuntimeStats in a reconcile loop on the real clock, against real metrics endpoints
with simulated traffic split by the live weight: a healthy canary walks its steps, then errors roll it back within
one interval."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import httpx

from croupier.api.modeldeployment import ModelDeploymentSpec, RolloutState, RolloutStatus
from croupier.operator.modeldeployment.canary.analyst import Analyst, VersionTargets
from croupier.operator.modeldeployment.canary.engine import RolloutEvent, advance
from croupier.operator.modeldeployment.canary.runtimestats import Targets

from .exposition import TfServingMetrics

PASS_SECONDS = 0.5
REQUESTS_PER_PASS = 100
INTERVAL = 10

SPEC = ModelDeploymentSpec.model_validate(
    {
        "model": {"name": "ranker", "storageUri": "file:///models/ranker"},
        "stable": {"version": 1},
        "canary": {
            "version": 2,
            "steps": [{"weight": 20, "pauseSeconds": INTERVAL}, {"weight": 50, "pauseSeconds": INTERVAL}],
            "analysis": {
                "maxErrorRate": 0.02,
                "maxErrorRateIncrease": 0.01,
                "minRequests": 100,
                "intervalSeconds": INTERVAL,
                "failureLimit": 0,
            },
        },
    }
)


def test_a_canary_walks_its_steps_and_rolls_back_on_errors() -> None:
    stable, canary = TfServingMetrics(), TfServingMetrics()
    pods = VersionTargets(canary=Targets((canary.serve(),)), stable=Targets((stable.serve(),)))
    log: list[tuple[float, str, int]] = []

    async def loop() -> tuple[RolloutStatus | None, float, float]:
        rollout: RolloutStatus | None = None
        weight = 0
        canary_errors = 0.0
        injected = rolled_back = 0.0
        started = time.monotonic()
        async with httpx.AsyncClient() as client:
            analyst = Analyst(client, namespace="ml", name="ranker")
            while time.monotonic() - started < 6 * INTERVAL:
                # Traffic since the last pass, split by the live weight.
                to_canary = REQUESTS_PER_PASS * weight // 100
                errors = round(to_canary * canary_errors)
                canary.record("ranker", ok=to_canary - errors, errors=errors, latency_ms=12)
                stable.record("ranker", ok=REQUESTS_PER_PASS - to_canary, latency_ms=11)

                now = datetime.now(UTC)
                observation = await analyst.observe(SPEC, rollout, now, pods)
                outcome = advance(SPEC, rollout, observation, now, canary_available=True)
                rollout, weight = outcome.rollout, outcome.weight
                elapsed = time.monotonic() - started
                log.extend((elapsed, event.reason, weight) for event in outcome.events)
                assert rollout is not None
                if rollout.state == RolloutState.COMPLETE and not injected:
                    canary_errors, injected = 0.1, elapsed
                if rollout.state == RolloutState.ROLLED_BACK:
                    rolled_back = elapsed
                    break
                await asyncio.sleep(PASS_SECONDS)
        return rollout, injected, rolled_back

    try:
        rollout, injected, rolled_back = asyncio.run(loop())
    finally:
        stable.stop()
        canary.stop()
    reasons = [reason for _, reason, _ in log]
    assert reasons == [
        RolloutEvent.STARTED,
        RolloutEvent.STEP_ADVANCED,
        RolloutEvent.COMPLETE,
        RolloutEvent.ANALYSIS_FAILED,
        RolloutEvent.ROLLED_BACK,
    ], log
    assert rollout is not None and rollout.rollback is not None and rollout.rollback.version == 2
    assert "maxErrorRate 0.02" in rollout.rollback.reason
    failed = (rollout.rollback.failed_intervals or [])[-1]
    assert failed.requests is not None and failed.requests >= 100 and failed.stable_requests is not None
    assert (failed.error_rate or 0) > 0.02 and failed.weight == 50
    # Every interval before the errors passed with real counts; the step moved at its pause's end.
    passed = [a for a in rollout.analyses or [] if a.result == "Passed"]
    assert len(passed) >= 2 and all((a.requests or 0) >= 100 for a in passed)
    to_rollback = rolled_back - injected
    print(
        f"\nerror injection -> rollback: {to_rollback:.1f} s ({to_rollback / INTERVAL:.2f} intervals of {INTERVAL} s)"
    )
    assert 0 < to_rollback <= INTERVAL + 2 * PASS_SECONDS + 1
