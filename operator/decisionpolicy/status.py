"""observations -> status: the conditions, replica counts and statistics table of a DecisionPolicy.

Pure and deterministic: the same observations and the same current status give the same ``DecisionPolicyStatus``,
and when nothing changed the result equals the current status, so ``core.status.status_patch`` returns None and the
operator writes nothing.
Timestamps move only on change: ``lastTransitionTime`` when a condition's status flips, ``lastProbeTime`` when the
runtime's counters (pulls, rewards, reward sums, totals, served generation) changed since the stored table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from croupier.api.common import ChildReason, Condition, ConditionStatus, ConditionType
from croupier.api.decisionpolicy import ArmStatus, DecisionPolicyStatus, DecisionTotals, Reason, ScoringStatus
from croupier.api.wire import StatsResponse
from croupier.operator.core.conditions import DECIDED, DesiredCondition, find, merge_conditions, rfc3339
from croupier.operator.core.controller import ApplyProblem, InvalidObjectError
from croupier.operator.decisionpolicy.probe import ProbeResult

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED

STALLS: frozenset[StrEnum] = frozenset(
    {
        Reason.INVALID_NAME,
        Reason.INVALID_SPEC,
        Reason.ROLLOUT_STALLED,
        ChildReason.CHILD_CONFLICT,
        ChildReason.APPLY_REJECTED,
    }
)
"""Degraded reasons that are kstatus's Stalled: only a spec change (or removing what is in the way) clears them.
RuntimeUnreachable, ApplyFailed (both retried) and the scoring model's reasons (another object's state) are not."""


# The statistics table: kept as stored while the runtime's counters did not change.
_TABLE_FIELDS = ("served_generation", "arms", "totals", "best_arm", "last_probe_time")


@dataclass(frozen=True)
class DeploymentState:
    """What the runtime Deployment reports."""

    spec_replicas: int
    generation: int
    observed_generation: int
    replicas: int
    updated: int
    ready: int
    available: int
    config_hash: str | None
    stalled_message: str | None = None

    @classmethod
    def from_object(cls, obj: Mapping[str, Any], hash_annotation: str) -> DeploymentState:
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        template_annotations = ((spec.get("template") or {}).get("metadata") or {}).get("annotations") or {}
        stalled = None
        for condition in status.get("conditions") or ():
            if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
                stalled = str(condition.get("message") or "the rollout exceeded its progress deadline")
        return cls(
            spec_replicas=int(spec.get("replicas", 1)),
            generation=int((obj.get("metadata") or {}).get("generation") or 0),
            observed_generation=int(status.get("observedGeneration") or 0),
            replicas=int(status.get("replicas") or 0),
            updated=int(status.get("updatedReplicas") or 0),
            ready=int(status.get("readyReplicas") or 0),
            available=int(status.get("availableReplicas") or 0),
            config_hash=template_annotations.get(hash_annotation),
            stalled_message=stalled,
        )

    def rolled_out(self, config_hash: str | None) -> bool:
        """The current pod template is what we want, and every pod runs it and is available (no old pods left)."""
        return (
            self.config_hash == config_hash
            and self.observed_generation >= self.generation
            and self.updated == self.spec_replicas
            and self.replicas == self.spec_replicas
            and self.available >= self.spec_replicas
        )

    def progress(self) -> str:
        return f"{self.updated}/{self.spec_replicas} runtime pods updated, {self.available} available" + (
            f", {self.replicas - self.updated} old pods terminating" if self.replicas > self.updated else ""
        )


@dataclass(frozen=True)
class ScoringModel:
    """The ModelDeployment a model-scored policy names, as observed."""

    name: str
    found: bool
    ready: bool
    address: str | None = None
    model_name: str | None = None
    detail: str = ""


SCORING_FALLBACK_DEGRADED = 0.5
"""Degraded (reason ScoringFallbacks) when more than this share of the decisions since the start fell back."""


@dataclass(frozen=True)
class Observations:
    generation: int
    endpoint: str | None
    desired_replicas: int | None
    config_hash: str | None
    paused: bool = False
    invalid: InvalidObjectError | None = None
    apply_problem: ApplyProblem | None = None
    deployment: DeploymentState | None = None
    probe_enabled: bool = True
    probe: ProbeResult | None = None
    probe_failures: int = 1
    """Consecutive failed probes, this one included (read only when ``probe`` failed)."""
    probe_failure_threshold: int = 1
    arm_count: int | None = None
    """Arms in the spec (the `Arms` printer column)."""
    scoring: ScoringModel | None = None
    """Model-scored policies: the ModelDeployment (None for a policy without spec.scoring)."""


def _serving(observed: Observations, deployment: DeploymentState, detail: str) -> DesiredCondition:
    pods = f"{deployment.available}/{deployment.spec_replicas} runtime pods available"
    if observed.paused:
        return DesiredCondition(READY, TRUE, Reason.PAUSED, f"{pods}; {detail}; learning is paused (spec.paused)")
    return DesiredCondition(READY, TRUE, Reason.AVAILABLE, f"{pods}; {detail}")


def _concluded(current: Sequence[Condition] | None, generation: int) -> list[DesiredCondition]:
    """The conditions already concluded for this generation (reasons this operator writes only)."""
    kept = []
    for c in current or ():
        if c.type in (READY, PROGRESSING, DEGRADED) and c.observed_generation == generation:
            try:
                reason = _reason(c.reason)
            except ValueError:
                continue
            kept.append(DesiredCondition(ConditionType(c.type), ConditionStatus(c.status), reason, c.message))
    return kept


def _reason(value: str) -> Reason | ChildReason:
    try:
        return Reason(value)
    except ValueError:
        return ChildReason(value)


def desired_conditions(observed: Observations, current: Sequence[Condition] | None) -> list[DesiredCondition]:
    """Ready, Progressing and Degraded from what was observed (see docs/decisionpolicy.md for the table)."""
    healthy = DesiredCondition(DEGRADED, FALSE, Reason.AS_EXPECTED)
    complete = DesiredCondition(PROGRESSING, FALSE, Reason.ROLLOUT_COMPLETE, "the runtime serves the current spec")

    def blocked(reason: Reason | ChildReason, message: str, *, degraded: bool) -> list[DesiredCondition]:
        return [
            DesiredCondition(READY, FALSE, reason, message),
            DesiredCondition(PROGRESSING, FALSE, reason, message),
            DesiredCondition(DEGRADED, TRUE, reason, message) if degraded else healthy,
        ]

    def waiting(reason: Reason, message: str) -> list[DesiredCondition]:
        return [
            DesiredCondition(READY, FALSE, reason, message),
            DesiredCondition(PROGRESSING, TRUE, reason, message),
            healthy,
        ]

    if observed.invalid is not None:
        return blocked(_reason(observed.invalid.reason), observed.invalid.message, degraded=True)
    if observed.apply_problem is not None:
        return blocked(_reason(observed.apply_problem.reason), observed.apply_problem.message, degraded=True)
    if observed.desired_replicas == 0:
        return blocked(Reason.SCALED_TO_ZERO, "spec.serving.replicas is 0: no runtime pod serves", degraded=False)
    deployment = observed.deployment
    if deployment is None:
        return waiting(Reason.ROLLOUT_IN_PROGRESS, "waiting for the runtime Deployment")
    if deployment.stalled_message is not None and not deployment.rolled_out(observed.config_hash):
        return blocked(Reason.ROLLOUT_STALLED, deployment.stalled_message, degraded=True)
    if not deployment.rolled_out(observed.config_hash):
        return waiting(Reason.ROLLOUT_IN_PROGRESS, deployment.progress())
    if not observed.probe_enabled:
        return [_serving(observed, deployment, "served generation not verified (probing disabled)"), complete, healthy]
    probe = observed.probe
    if probe is not None and probe.stats is not None:
        served = probe.stats.generation
        if served == observed.generation:
            return [_serving(observed, deployment, f"the runtime serves generation {served}"), complete, healthy]
        return waiting(
            Reason.STALE_GENERATION,
            f"the runtime serves generation {served if served is not None else 'unknown'}, want {observed.generation}",
        )
    error = probe.error if probe is not None and probe.error else "the runtime's statistics were not read"
    if observed.probe_failures < observed.probe_failure_threshold:
        # Inconclusive: one failed read teaches nothing yet. Keep what was concluded for this generation, if anything.
        previous = _concluded(current, observed.generation)
        if len(previous) == len(DECIDED):
            return previous
    unreachable = DesiredCondition(DEGRADED, TRUE, Reason.RUNTIME_UNREACHABLE, error)
    before = find(current, READY)
    if before is not None and before.status == TRUE and before.observed_generation == observed.generation:
        # Confirmed earlier for this generation and the pods are still available: a failed read is no reason to
        # flap Ready. Degraded says what is wrong; the last table stays.
        with contextlib.suppress(ValueError):
            still = DesiredCondition(READY, TRUE, _reason(before.reason), before.message)
            return [still, complete, unreachable]
    return [
        DesiredCondition(READY, FALSE, Reason.RUNTIME_UNREACHABLE, error),
        DesiredCondition(PROGRESSING, FALSE, Reason.RUNTIME_UNREACHABLE, error),
        unreachable,
    ]


def scoring_condition(observed: Observations, stats: ScoringStatus | None) -> DesiredCondition | None:
    """Degraded for a model-scored policy whose model cannot serve: the ModelDeployment is missing or not Ready, or
    most decisions fell back. The runtime keeps deciding (with the fallback), so Ready does not change."""
    model = observed.scoring
    if model is None:
        return None
    if not model.found:
        return DesiredCondition(
            DEGRADED, TRUE, Reason.MODEL_DEPLOYMENT_NOT_FOUND, f"{model.detail}: decisions fall back"
        )
    if not model.ready or model.address is None or model.model_name is None:
        detail = model.detail or f"ModelDeployment {model.name!r} has no endpoint or model name yet"
        return DesiredCondition(DEGRADED, TRUE, Reason.MODEL_NOT_READY, f"{detail}: decisions may fall back")
    if stats is not None and stats.fallback_rate is not None and stats.fallback_rate > SCORING_FALLBACK_DEGRADED:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted((stats.fallbacks or {}).items()))
        return DesiredCondition(
            DEGRADED,
            TRUE,
            Reason.SCORING_FALLBACKS,
            f"{stats.fallback_rate:.0%} of the decisions since the runtime started fell back ({reasons})",
        )
    return None


def scoring_status(observed: Observations, current: DecisionPolicyStatus | None) -> ScoringStatus | None:
    model = observed.scoring
    if model is None:
        return None
    probe = observed.probe
    live = probe.stats.scoring if probe is not None and probe.stats is not None else None
    kept = current.scoring if current is not None else None
    counts: dict[str, Any] = {}
    if live is not None:
        counts = {
            "model_version": live.model_version,
            "decisions": live.decisions,
            "fallbacks": dict(live.fallbacks),
            "fallback_rate": _round(live.fallback_rate),
        }
    elif kept is not None and kept.model_deployment == model.name:
        counts = {k: getattr(kept, k) for k in ("model_version", "decisions", "fallbacks", "fallback_rate")}
    return ScoringStatus(model_deployment=model.name, model_name=model.model_name, address=model.address, **counts)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def stats_table(stats: StatsResponse) -> dict[str, Any]:
    """The runtime's statistics as the status fields (by model field name) they become."""
    arms = [
        ArmStatus(
            name=arm.name,
            pulls=arm.pulls,
            rewards=arm.rewards,
            reward_sum=round(arm.reward_sum, 9),
            mean=_round(arm.mean),
            probability=_round(arm.probability),
        )
        for arm in stats.arms
    ]
    best = stats.best_arm
    if best is None:
        rewarded = [a for a in stats.arms if a.mean is not None and a.rewards > 0]
        best = max(rewarded, key=lambda a: a.mean or 0.0).name if rewarded else None
    return {
        "served_generation": stats.generation,
        "arms": arms,
        "totals": DecisionTotals(
            decisions=stats.totals.decisions,
            rewards=stats.totals.rewards,
            default_rewards=stats.totals.default_rewards,
        ),
        "best_arm": best,
    }


def _counters(table: Mapping[str, Any]) -> tuple[Any, ...]:
    arms = tuple((a.name, a.pulls, a.rewards, float(a.reward_sum)) for a in table.get("arms") or ())
    totals = table.get("totals")
    return (
        table.get("served_generation"),
        arms,
        (totals.decisions, totals.rewards, totals.default_rewards) if totals is not None else (None, None, None),
    )


def desired_status(observed: Observations, current: DecisionPolicyStatus | None, now: datetime) -> DecisionPolicyStatus:
    """The complete status to store, as the api's typed model (unset fields are absent from the stored form)."""
    current_conditions = list(current.conditions or []) if current is not None else []
    desired = desired_conditions(observed, current_conditions)
    scoring = scoring_status(observed, current)
    degraded = scoring_condition(observed, scoring)
    if degraded is not None and not any(c.type == DEGRADED and c.status == TRUE for c in desired):
        desired = [c for c in desired if c.type != DEGRADED] + [degraded]
    conditions = merge_conditions(current_conditions, desired, generation=observed.generation, now=now, stalls=STALLS)
    deployment = observed.deployment
    kept = {key: getattr(current, key) if current is not None else None for key in _TABLE_FIELDS}
    table = kept
    probe = observed.probe
    if probe is not None and probe.stats is not None:
        table = stats_table(probe.stats)
        if kept.get("arms") is not None and _counters(kept) == _counters(table):
            table = kept  # unchanged counters: keep the stored table, probabilities and probe time included
        else:
            table["last_probe_time"] = rfc3339(now)
    return DecisionPolicyStatus(
        observed_generation=observed.generation,
        conditions=conditions,
        endpoint=observed.endpoint,
        replicas=deployment.spec_replicas if deployment is not None else observed.desired_replicas,
        ready_replicas=deployment.ready if deployment is not None else (0 if observed.desired_replicas else None),
        arm_count=observed.arm_count,
        scoring=scoring,
        **table,
    )
