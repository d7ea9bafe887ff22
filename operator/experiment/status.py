"""observations -> status: the conditions, per-variant results, SRM, winner and guardrail action of an Experiment.

Pure and deterministic: the same observations and the same current status give the same ``ExperimentStatus``, and
when nothing changed the result equals the current status, so the operator writes nothing. The results table (and
``lastAnalysisTime``) moves only when the runtime's counters (exposures and sums per variant and metric, epoch)
changed since the stored table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from croupier.api.common import ChildReason, Condition, ConditionStatus, ConditionType
from croupier.api.experiment import (
    AnalysisMethod,
    ExperimentSpec,
    ExperimentState,
    ExperimentStatus,
    FixedHorizonPlan,
    GuardrailAction,
    GuardrailStatus,
    Lift,
    MetricSums,
    OnConclude,
    OnGuardrailViolation,
    PolicyToken,
    Reason,
    VariantStatus,
    format_split,
)
from croupier.api.wire import ExperimentStatsResponse
from croupier.operator.core.conditions import DesiredCondition, merge_conditions, rfc3339
from croupier.operator.core.controller import ApplyProblem, InvalidObjectError
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.stats import (
    AnalysisConfig,
    Correction,
    Guardrail,
    Method,
    Metric,
    MetricKind,
    Moments,
    VariantData,
)
from croupier.stats.inputs import Direction, StatsInputError
from croupier.stats.results import Analysis, AnalysisState, GuardrailState, Interval

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED

_TABLE_FIELDS = ("variants", "total_exposures", "srm_p_value", "winner", "epoch", "epoch_start_time")


@dataclass(frozen=True)
class Observations:
    generation: int
    spec: ExperimentSpec | None
    served_state: ExperimentState | None = None
    """What the rendered config tells the runtime to serve."""
    invalid: InvalidObjectError | None = None
    apply_problem: ApplyProblem | None = None
    deployment: DeploymentState | None = None
    config_hash: str | None = None
    unsupported: tuple[str, ...] = ()
    """Variants whose modelDeploymentRef names a ModelDeployment in GatewayAPI mode (no model router there)."""
    missing_targets: tuple[str, ...] = ()
    """decisionPolicyRef names with no DecisionPolicy."""
    unready_targets: tuple[str, ...] = ()
    """decisionPolicyRef names whose DecisionPolicy is not Ready."""
    missing_models: tuple[str, ...] = ()
    """modelDeploymentRef names with no ModelDeployment."""
    unready_models: tuple[str, ...] = ()
    """modelDeploymentRef names (with why) whose version is not AVAILABLE there."""
    ready_targets: tuple[str, ...] | None = None
    """The targets observed Ready in this pass (``status.readyTargets``); None: not checked (keep the stored ones)."""
    awaiting_targets: tuple[str, ...] = ()
    """Targets the rendered config does not serve yet (not in the stored ``status.readyTargets``): control serves."""
    stats: ExperimentStatsResponse | None = None
    probe_error: str | None = None
    probe_failures: int = 0
    probe_failure_threshold: int = 1
    extra: dict[str, Any] = field(default_factory=dict)
    policy_tokens: tuple[PolicyToken, ...] = ()
    """The DecisionPolicy targets' decide tokens to mount (stored in status.policyTokens, read by the render)."""
    token_problems: tuple[str, ...] = ()
    """Why a DecisionPolicy target's token is not mounted (the Ready condition's message says so)."""


def _round(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else round(value, digits)


def _significant(value: float | None, digits: int = 6) -> float | None:
    """``digits`` significant digits: an expected loss is often far below 1e-6 and must not round to 0."""
    return None if value is None else float(f"{value:.{digits}g}")


def _lift(interval: Interval | None) -> Lift | None:
    if interval is None:
        return None
    return Lift(estimate=round(interval.estimate, 6), lower=round(interval.lower, 6), upper=round(interval.upper, 6))


def _config(spec: ExperimentSpec) -> AnalysisConfig:
    analysis = spec.analysis
    return AnalysisConfig(
        method=Method(str(analysis.method)),
        alpha=analysis.alpha,
        power=analysis.power,
        minimum_samples_per_variant=analysis.minimum_samples_per_variant,
        srm_threshold=analysis.srm_threshold,
        sequential_tuning_parameter=float(analysis.sequential_tuning_sample_size),
        correction=Correction(str(analysis.multiple_comparisons)),
    )


def run_analysis(
    spec: ExperimentSpec, stats: ExperimentStatsResponse, *, planned_samples: int | None = None
) -> Analysis:
    """croupier.stats over the runtime's sufficient sums, per spec.analysis; raises StatsInputError on bad sums.
    ``planned_samples``: FixedHorizon's plan frozen earlier (None: plan from control's current data)."""
    variants = [
        VariantData(
            v.name,
            weight=v.weight,
            exposures=v.exposures,
            metrics={m.name: Moments(m.count, m.sum, m.sum_squares) for m in v.metrics},
        )
        for v in stats.variants
    ]
    metric = Metric(
        spec.metric.name,
        MetricKind(str(spec.metric.type)),
        Direction(str(spec.metric.direction)),
        spec.metric.minimum_detectable_effect,
    )
    guardrails = [
        Guardrail(g.name, MetricKind(str(g.type)), Direction(str(g.direction)), g.threshold)
        for g in spec.guardrails or []
    ]
    # numpy and scipy.special load with the computation, on the first analysis (the observer imports them in a thread
    # before it; croupier.stats.COMPUTING_MODULES): an operator without Experiments never loads them.
    from croupier.stats.analysis import analyze  # noqa: PLC0415

    return analyze(variants, spec.control, metric, guardrails, _config(spec), planned_samples=planned_samples)


def frozen_plan(spec: ExperimentSpec, epoch: str, stored: FixedHorizonPlan | None) -> FixedHorizonPlan | None:
    """The stored plan when it still applies: FixedHorizon, the same epoch, MDE, alpha and power."""
    if stored is None or spec.analysis.method != AnalysisMethod.FIXED_HORIZON:
        return None
    same = (stored.epoch, stored.minimum_detectable_effect, stored.alpha, stored.power) == (
        epoch,
        spec.metric.minimum_detectable_effect,
        spec.analysis.alpha,
        spec.analysis.power,
    )
    return stored if same else None


def new_plan(
    spec: ExperimentSpec, epoch: str, analysis: Analysis, kept: FixedHorizonPlan | None, now: datetime
) -> FixedHorizonPlan | None:
    """The plan to store after an analysis: the frozen one, else the one this analysis made (if any)."""
    if kept is not None:
        return kept
    planned = analysis.planned_samples_per_variant
    mde = spec.metric.minimum_detectable_effect
    if spec.analysis.method != AnalysisMethod.FIXED_HORIZON or planned is None or mde is None:
        return None
    return FixedHorizonPlan(
        samples_per_variant=planned,
        epoch=epoch,
        minimum_detectable_effect=mde,
        alpha=spec.analysis.alpha,
        power=spec.analysis.power,
        computed_at=now,
    )


def results_table(spec: ExperimentSpec, stats: ExperimentStatsResponse, analysis: Analysis) -> dict[str, Any]:
    """The analysis as the status fields (by model field name) it becomes."""
    by_name = {v.name: v for v in stats.variants}
    rows = []
    for result in analysis.variants:
        wire = by_name[result.name]
        primary = next((m for m in wire.metrics if m.name == spec.metric.name), None)
        comparison = result.comparison
        rows.append(
            VariantStatus(
                name=result.name,
                exposures=result.exposures,
                outcomes=round(primary.sum, 9) if primary is not None else 0.0,
                mean=_round(result.mean),
                variance=_round(result.variance),
                lift=_lift(comparison.lift) if comparison is not None else None,
                p_value=_round(comparison.adjusted_p_value if comparison is not None else None),
                probability_to_beat_control=_round(
                    comparison.probability_to_beat_control if comparison is not None else None
                ),
                expected_loss=_significant(comparison.expected_loss if comparison is not None else None),
                guardrails=[
                    GuardrailStatus(
                        name=g.name,
                        mean=_round(g.mean),
                        lift=_lift(g.lift),
                        violated=g.state == GuardrailState.VIOLATED,
                    )
                    for g in result.guardrails
                ]
                or None,
                metrics=[
                    MetricSums(name=m.name, count=m.count, sum=round(m.sum, 9), sum_squares=round(m.sum_squares, 9))
                    for m in wire.metrics
                ],
            )
        )
    return {
        "variants": rows,
        "total_exposures": stats.total_exposures,
        "srm_p_value": None if analysis.srm_p_value is None else float(f"{analysis.srm_p_value:.3g}"),
        "winner": analysis.winner,
        "epoch": stats.epoch,
        "epoch_start_time": rfc3339(datetime.fromtimestamp(stats.epoch_start_time).astimezone()),
    }


def _counters(stats: ExperimentStatsResponse) -> tuple[Any, ...]:
    return (
        stats.epoch,
        tuple(
            (v.name, v.exposures, tuple((m.name, m.count, round(m.sum, 9), round(m.sum_squares, 9)) for m in v.metrics))
            for v in stats.variants
        ),
    )


def _stored_counters(current: ExperimentStatus | None) -> tuple[Any, ...] | None:
    if current is None or current.variants is None or current.epoch is None:
        return None
    return (
        current.epoch,
        tuple(
            (v.name, v.exposures, tuple((m.name, m.count, m.sum, m.sum_squares) for m in v.metrics or ()))
            for v in current.variants
        ),
    )


def served_split(spec: ExperimentSpec, state: str, winner: str | None, action: GuardrailAction | None = None) -> str:
    """``status.split``: the split the runtime serves now (Paused: control=100; Concluded per onConclude, or
    control=100 when a guardrail concluded it)."""
    guardrail_concluded = (
        action is not None and action.action == OnGuardrailViolation.CONCLUDE and spec.state == ExperimentState.RUNNING
    )
    if state == ExperimentState.PAUSED or (state == ExperimentState.CONCLUDED and guardrail_concluded):
        return format_split([(spec.control, 100)])
    if state == ExperimentState.CONCLUDED and spec.on_conclude != OnConclude.NOTHING:
        keep = winner if spec.on_conclude == OnConclude.KEEP_WINNER and winner is not None else spec.control
        return format_split([(keep, 100)])
    return format_split(spec.weights())


def violation(spec: ExperimentSpec, analysis: Analysis, now: datetime, epoch: str) -> GuardrailAction | None:
    """The first guardrail a variant violates in ``epoch``, as the action ``onGuardrailViolation`` takes (None: none
    violated)."""
    thresholds = {g.name: g.threshold for g in spec.guardrails or []}
    for result in analysis.variants:
        for guardrail in result.guardrails:
            if guardrail.state == GuardrailState.VIOLATED and guardrail.lift is not None:
                return GuardrailAction(
                    variant=result.name,
                    metric=guardrail.name,
                    lift=_lift(guardrail.lift) or Lift(estimate=0.0, lower=0.0, upper=0.0),
                    threshold=thresholds[guardrail.name],
                    action=spec.on_guardrail_violation,
                    time=now,
                    epoch=epoch,
                )
    return None


STALLS: frozenset[StrEnum] = frozenset(
    {
        Reason.INVALID_NAME,
        Reason.INVALID_SPEC,
        Reason.ROLLOUT_STALLED,
        Reason.TARGET_NOT_SUPPORTED,
        Reason.SAMPLE_RATIO_MISMATCH,
        Reason.GUARDRAIL_VIOLATED,
        ChildReason.CHILD_CONFLICT,
        ChildReason.APPLY_REJECTED,
    }
)
"""Degraded reasons that are kstatus's Stalled: the experiment cannot go on as specified (its results are withheld,
a guardrail acted, the spec or its target cannot work) until someone changes it. RuntimeUnreachable, ApplyFailed
(both retried) and TargetNotFound (the target may still be applied) are not, nor is GuardrailViolated when
onGuardrailViolation is None (reported only; it clears with the numbers)."""


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _blocked(reason: Reason | ChildReason | str, message: str) -> list[DesiredCondition]:
    return [
        DesiredCondition(READY, FALSE, reason, message),  # type: ignore[arg-type]
        DesiredCondition(PROGRESSING, FALSE, reason, message),  # type: ignore[arg-type]
        DesiredCondition(DEGRADED, TRUE, reason, message),  # type: ignore[arg-type]
    ]


def _serving(
    reason: Reason, message: str, *, progressing: bool = False, degraded: bool = False
) -> list[DesiredCondition]:
    return [
        DesiredCondition(READY, TRUE, reason, message),
        DesiredCondition(PROGRESSING, TRUE if progressing else FALSE, reason, message),
        DesiredCondition(DEGRADED, TRUE if degraded else FALSE, reason, message),
    ]


# What a guardrail action makes the runtime serve (through the config the operator renders, never the spec).
_ACTED = {OnGuardrailViolation.PAUSE: ExperimentState.PAUSED, OnGuardrailViolation.CONCLUDE: ExperimentState.CONCLUDED}


def desired_conditions(
    observed: Observations,
    analysis: Analysis | None,
    action: GuardrailAction | None,
    winner: str | None = None,
) -> list[DesiredCondition]:
    """Ready, Progressing and Degraded from what was observed (docs/experiment.md has the table). ``winner`` is the
    one status reports (a Concluded experiment keeps its stored winner); None: the analysis's."""
    if observed.invalid is not None:
        return _blocked(observed.invalid.reason, observed.invalid.message)
    if observed.apply_problem is not None:
        return _blocked(observed.apply_problem.reason, observed.apply_problem.message)
    if observed.unsupported:
        message = (
            f"variants {list(observed.unsupported)}: their ModelDeployment routes with GatewayAPI, where no model "
            "router honours a version route (use routing mode VersionLabels); serving control"
        )
        return _blocked(Reason.TARGET_NOT_SUPPORTED, message)
    if observed.missing_targets:
        message = f"decisionPolicyRef {', '.join(observed.missing_targets)}: DecisionPolicy not found; serving control"
        return _blocked(Reason.TARGET_NOT_FOUND, message)
    if observed.missing_models:
        message = f"modelDeploymentRef {', '.join(observed.missing_models)}: ModelDeployment not found; serving control"
        return _blocked(Reason.TARGET_NOT_FOUND, message)
    if observed.unready_targets or observed.unready_models:
        policies = f"decisionPolicyRef {', '.join(observed.unready_targets)}: DecisionPolicy not Ready"
        models = f"modelDeploymentRef {', '.join(observed.unready_models)}"
        parts = ([policies] if observed.unready_targets else []) + ([models] if observed.unready_models else [])
        message = f"{'; '.join(parts)}; serving control"
        return [
            DesiredCondition(READY, FALSE, Reason.TARGET_NOT_READY, message),
            DesiredCondition(PROGRESSING, TRUE, Reason.TARGET_NOT_READY, message),
            DesiredCondition(DEGRADED, FALSE, Reason.TARGET_NOT_READY),
        ]
    if observed.awaiting_targets:
        message = (
            f"{', '.join(observed.awaiting_targets)} observed Ready; serving control until the runtime serves the "
            "configuration that includes them"
        )
        return [
            DesiredCondition(READY, FALSE, Reason.ROLLOUT_IN_PROGRESS, message),
            DesiredCondition(PROGRESSING, TRUE, Reason.ROLLOUT_IN_PROGRESS, message),
            DesiredCondition(DEGRADED, FALSE, Reason.ROLLOUT_IN_PROGRESS),
        ]
    deployment = observed.deployment
    if deployment is None or not deployment.rolled_out(observed.config_hash):
        progress = deployment.progress() if deployment is not None else "waiting for the runtime Deployment"
        if deployment is not None and deployment.stalled_message is not None:
            return _blocked(Reason.ROLLOUT_STALLED, deployment.stalled_message)
        return [
            DesiredCondition(READY, FALSE, Reason.ROLLOUT_IN_PROGRESS, progress),
            DesiredCondition(PROGRESSING, TRUE, Reason.ROLLOUT_IN_PROGRESS, progress),
            DesiredCondition(DEGRADED, FALSE, Reason.ROLLOUT_IN_PROGRESS),
        ]
    stats = observed.stats
    if stats is None:
        error = observed.probe_error or "the runtime's statistics were not read"
        if observed.probe_failures < observed.probe_failure_threshold:
            return [
                DesiredCondition(READY, FALSE, Reason.ROLLOUT_IN_PROGRESS, error),
                DesiredCondition(PROGRESSING, TRUE, Reason.ROLLOUT_IN_PROGRESS, error),
                DesiredCondition(DEGRADED, FALSE, Reason.ROLLOUT_IN_PROGRESS),
            ]
        return _blocked(Reason.RUNTIME_UNREACHABLE, error)
    if winner is None and analysis is not None:
        winner = analysis.winner
    split = served_split(observed.spec, stats.state, winner, action) if observed.spec else ""
    if action is not None:
        lift = action.lift
        message = (
            f"{action.variant}: {action.metric} lift {_percent(lift.estimate)} [{_percent(lift.lower)}, "
            f"{_percent(lift.upper)}] beyond the threshold {_percent(action.threshold)}; action {action.action}"
            + (f", serving {_ACTED[action.action]} (split {split})" if action.action in _ACTED else "")
        )
        return _serving(Reason.GUARDRAIL_VIOLATED, message, degraded=True)
    if stats.state == ExperimentState.PAUSED:
        return _serving(Reason.PAUSED, f"paused: control serves every unit, nothing is counted (split {split})")
    if stats.state == ExperimentState.CONCLUDED:
        keep = observed.spec.on_conclude if observed.spec is not None else OnConclude.KEEP_WINNER
        return _serving(Reason.CONCLUDED, f"concluded ({keep}): serving {split}; nothing is counted")
    if analysis is None:
        # desired_status analyses every statistics read (or calls it RuntimeUnreachable when it cannot): a verdict
        # still to come is progress, not a state of its own.
        message = f"{len(stats.variants)} variants serving, {stats.total_exposures} exposures; not analysed yet"
        return _serving(Reason.ROLLOUT_IN_PROGRESS, message, progressing=True)
    if analysis.state == AnalysisState.SAMPLE_RATIO_MISMATCH:
        threshold = observed.spec.analysis.srm_threshold if observed.spec is not None else 0.0
        message = (
            f"SRM p-value {analysis.srm_p_value or 0.0:.3g} below {threshold}: exposures do not match the split "
            f"{split}; results and winner withheld"
        )
        return _serving(Reason.SAMPLE_RATIO_MISMATCH, message, degraded=True)
    if analysis.state == AnalysisState.INSUFFICIENT_TRAFFIC:
        smallest = min((v.exposures for v in stats.variants if v.weight > 0), default=0)
        message = (
            f"{_percent(analysis.progress)} of the traffic needed: {smallest} exposures in the smallest variant, "
            f"{stats.total_exposures} in all"
        )
        return _serving(Reason.INSUFFICIENT_TRAFFIC, message, progressing=True)
    if analysis.winner is not None:
        best = next(v for v in analysis.variants if v.name == analysis.winner)
        interval = best.comparison.lift if best.comparison is not None else None
        detail = (
            f": lift {_percent(interval.estimate)} [{_percent(interval.lower)}, {_percent(interval.upper)}]"
            if interval is not None
            else ""
        )
        control = observed.spec.control if observed.spec is not None else "control"
        return _serving(Reason.WINNER_FOUND, f"{analysis.winner} beats {control}{detail}")
    alpha = observed.spec.analysis.alpha if observed.spec is not None else 0.05
    return _serving(Reason.NO_SIGNIFICANT_DIFFERENCE, f"no variant beats control at alpha {alpha}")


def desired_status(observed: Observations, current: ExperimentStatus | None, now: datetime) -> ExperimentStatus:
    """The complete status to store, as the api's typed model (unset fields are absent from the stored form)."""
    current_conditions: Sequence[Condition] = list(current.conditions or []) if current is not None else []
    kept: dict[str, Any] = {key: getattr(current, key) if current is not None else None for key in _TABLE_FIELDS}
    table = kept
    last_analysis = current.last_analysis_time if current is not None else None
    split = current.split if current is not None else None
    start = current.start_time if current is not None else None
    action = current.guardrail_action if current is not None else None
    plan = current.plan if current is not None else None
    ready_targets = current.ready_targets if current is not None else None
    if observed.ready_targets is not None:
        ready_targets = list(observed.ready_targets) or None
    analysis: Analysis | None = None
    stats = observed.stats
    spec = observed.spec
    analysis_error: str | None = None
    if stats is not None and spec is not None:
        try:
            kept_plan = frozen_plan(spec, stats.epoch, plan)
            analysis = run_analysis(
                spec, stats, planned_samples=kept_plan.samples_per_variant if kept_plan is not None else None
            )
        except StatsInputError as error:
            analysis_error = str(error)
        else:
            plan = new_plan(spec, stats.epoch, analysis, kept_plan, now)
            fresh = results_table(spec, stats, analysis)
            if _stored_counters(current) == _counters(stats) and kept.get("variants") is not None:
                table = kept
            else:
                table = fresh
                last_analysis = now
            if start is None and stats.total_exposures > 0:
                start = now
            acted_epoch = action.epoch or (current.epoch if current is not None else None) if action else None
            if action is not None and acted_epoch != stats.epoch:
                action = None  # a new epoch (the user changed the split after the action): its data decides again
            if stats.state == ExperimentState.RUNNING and (
                action is None or action.action == OnGuardrailViolation.NONE
            ):
                # None acts on nothing: GuardrailViolated follows the current epoch's numbers at every analysis.
                found = violation(spec, analysis, now, stats.epoch)
                same = (
                    action is not None
                    and found is not None
                    and (found.variant, found.metric)
                    == (
                        action.variant,
                        action.metric,
                    )
                )
                action = found.model_copy(update={"time": action.time}) if same and action and found else found
    stored_winner = current.winner if current is not None else None
    concluded = stats is not None and stats.state == ExperimentState.CONCLUDED
    if concluded and stored_winner and (spec is None or stored_winner in {v.name for v in spec.variants}):
        # Concluded serves the stored winner (KeepWinner): a runtime that restarted without its state (an emptyDir,
        # a flushed Redis) has no exposures to find it again, and must not turn the conclusion into control.
        table = {**table, "winner": stored_winner}
    if action is not None and spec is not None and action.variant not in {v.name for v in spec.variants}:
        action = None  # the variant it named was removed: a new split starts over
    if stats is not None and spec is not None:
        split = served_split(spec, stats.state, table.get("winner"), action)
    desired = desired_conditions(observed, analysis, action, table.get("winner"))
    if analysis_error is not None:
        desired = _blocked(Reason.RUNTIME_UNREACHABLE, f"the runtime's statistics are inconsistent: {analysis_error}")
    if observed.token_problems:
        note = f"; no decide token for a DecisionPolicy target: {'; '.join(observed.token_problems)}"
        desired = [
            replace(c, message=f"{c.message}{note}" if c.message else note.removeprefix("; ")) if c.type == READY else c
            for c in desired
        ]
    # A report-only guardrail (onGuardrailViolation None) acts on nothing and clears with the numbers: Degraded, not
    # Stalled, since the experiment goes on without anyone's change.
    stalls = STALLS - {Reason.GUARDRAIL_VIOLATED} if action and action.action == OnGuardrailViolation.NONE else STALLS
    conditions = merge_conditions(current_conditions, desired, generation=observed.generation, now=now, stalls=stalls)
    return ExperimentStatus(
        policy_tokens=list(observed.policy_tokens) or None,
        observed_generation=observed.generation,
        conditions=conditions,
        split=split,
        start_time=start,
        last_analysis_time=last_analysis,
        guardrail_action=action,
        plan=plan,
        ready_targets=ready_targets,
        **table,
    )
