"""FixedHorizon's plan is computed once per epoch and kept in status: later analyses wait for that goal even as
control's running mean moves, a new epoch (or a new MDE, alpha or power) plans again, and a settled plan is no write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from croupier.api.experiment import ExperimentSpec
from croupier.api.wire import ExperimentStatsResponse
from croupier.operator.core.status import status_patch
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.experiment.status import Observations, desired_status
from croupier.stats import AnalysisConfig, Direction, Metric, MetricKind, Moments, planned_samples_per_variant

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
HASH = "abc"
ROLLED_OUT = DeploymentState(
    spec_replicas=1, generation=1, observed_generation=1, replicas=1, updated=1, ready=1, available=1, config_hash=HASH
)
SPEC: dict[str, Any] = {
    "variants": [{"name": "a", "weight": 50, "payload": {"v": 1}}, {"name": "b", "weight": 50, "payload": {"v": 2}}],
    "control": "a",
    "assignment": {"unitKey": "userId"},
    "metric": {"name": "conversion", "type": "Binary", "direction": "Increase", "minimumDetectableEffect": 0.1},
    "analysis": {"method": "FixedHorizon", "minimumSamplesPerVariant": 100},
}


def _stats(a: tuple[int, int], b: tuple[int, int], epoch: str = "e1") -> ExperimentStatsResponse:
    def variant(name: str, exposures: int, conversions: int) -> dict[str, Any]:
        return {
            "name": name,
            "weight": 50,
            "exposures": exposures,
            "metrics": [
                {"name": "conversion", "type": "Binary", "aggregation": "Sum", "count": exposures,
                 "sum": conversions, "sumSquares": conversions},
            ],
        }  # fmt: skip

    return ExperimentStatsResponse.model_validate(
        {
            "experiment": {"name": "x", "namespace": "ns"},
            "generation": 1,
            "experimentVersion": "g1-x",
            "epoch": epoch,
            "epochStartTime": T0.timestamp(),
            "state": "Running",
            "backend": "Embedded",
            "variants": [variant("a", *a), variant("b", *b)],
            "totalExposures": a[0] + b[0],
        }
    )


def _observed(stats: ExperimentStatsResponse, spec: dict[str, Any] = SPEC) -> Observations:
    return Observations(
        generation=1, spec=ExperimentSpec.model_validate(spec), stats=stats, deployment=ROLLED_OUT, config_hash=HASH
    )


def _fresh_plan(control: tuple[int, int]) -> int | None:
    metric = Metric("conversion", MetricKind.BINARY, Direction.INCREASE, 0.1)
    config = AnalysisConfig(minimum_samples_per_variant=100)
    return planned_samples_per_variant(metric, Moments(control[0], control[1], control[1]), 1, config)


def test_the_first_plan_is_kept_while_control_mean_moves() -> None:
    first = desired_status(_observed(_stats((400, 80), (400, 84))), None, T0)
    assert first.plan is not None
    assert first.plan.samples_per_variant == _fresh_plan((400, 80))
    assert (first.plan.epoch, first.plan.minimum_detectable_effect, first.plan.alpha) == ("e1", 0.1, 0.05)
    # Control's rate falls from 20% to 10%: planned afresh the goal would jump; the frozen plan holds.
    later_stats = _stats((1000, 100), (1000, 104))
    assert _fresh_plan((1000, 100)) != first.plan.samples_per_variant
    later = desired_status(_observed(later_stats), first, T0 + timedelta(minutes=5))
    assert later.plan == first.plan
    reason = (later.conditions or [])[0]
    assert reason.reason == "InsufficientTraffic"
    assert reason.message.startswith(f"{100 * 1000 / first.plan.samples_per_variant:.1f}% of the traffic needed")
    # Settled: the same observations again write nothing.
    again = desired_status(_observed(later_stats), later, T0 + timedelta(minutes=6))
    assert status_patch(later, again) is None


def test_a_new_epoch_or_a_new_mde_plans_again() -> None:
    first = desired_status(_observed(_stats((400, 80), (400, 84))), None, T0)
    assert first.plan is not None
    epoch2 = desired_status(_observed(_stats((400, 40), (400, 44), epoch="e2")), first, T0 + timedelta(minutes=1))
    assert epoch2.plan is not None and epoch2.plan.epoch == "e2"
    assert epoch2.plan.samples_per_variant == _fresh_plan((400, 40))
    wider = {**SPEC, "metric": {**SPEC["metric"], "minimumDetectableEffect": 0.3}}
    replanned = desired_status(_observed(_stats((400, 80), (400, 84)), wider), first, T0 + timedelta(minutes=1))
    assert replanned.plan is not None and replanned.plan.minimum_detectable_effect == 0.3
    assert replanned.plan.samples_per_variant < first.plan.samples_per_variant


def test_other_methods_have_no_plan() -> None:
    sequential = {**SPEC, "analysis": {"method": "Sequential", "minimumSamplesPerVariant": 100}}
    assert desired_status(_observed(_stats((400, 80), (400, 84)), sequential), None, T0).plan is None


def test_concluded_keeps_the_stored_winner_when_the_runtime_lost_its_counts() -> None:
    no_plan = {**SPEC, "metric": {k: v for k, v in SPEC["metric"].items() if k != "minimumDetectableEffect"}}
    won = desired_status(_observed(_stats((5000, 500), (5000, 650)), no_plan), None, T0)
    assert won.winner == "b"
    concluded = {**no_plan, "state": "Concluded"}
    empty = _stats((0, 0), (0, 0)).model_copy(update={"state": "Concluded"})
    status = desired_status(_observed(empty, concluded), won, T0 + timedelta(minutes=1))
    assert (status.winner, status.split) == ("b", "b=100")
    ready = (status.conditions or [])[0]
    assert (ready.reason, ready.message) == ("Concluded", "concluded (KeepWinner): serving b=100; nothing is counted")
