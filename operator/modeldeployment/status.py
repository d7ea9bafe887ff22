"""observations -> status: the versions table, the live weight and the conditions of a ModelDeployment (pure).

Ready means the model serves what the spec asks: every server's pods run the current template, every version with
traffic is AVAILABLE in TF Serving, and the split the route (or routing table) carries is the desired one. Progressing
means the operator is still getting there (pods starting, versions loading within the progress deadline, a promotion,
a weight not yet carried). Degraded names what went wrong, with TF Serving's own error text. See
docs/modeldeployment.md for the table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from croupier.api.common import ChildReason, Condition, ConditionStatus, ConditionType
from croupier.api.modeldeployment import (
    ModelDeploymentStatus,
    ModelVersionState,
    Reason,
    RolloutStatus,
    VersionRole,
    VersionStatus,
)
from croupier.operator.core.conditions import DECIDED, DesiredCondition, EventNote, merge_conditions
from croupier.operator.core.controller import ApplyProblem, InvalidObjectError
from croupier.operator.decisionpolicy.status import DeploymentState
from croupier.operator.modeldeployment.children import CANARY, STABLE, ServingPlan, deployment_name
from croupier.operator.modeldeployment.model import ModelDeploymentObject
from croupier.operator.modeldeployment.plan import desired_canary_weight, server_for
from croupier.operator.modeldeployment.rollout import rollout_conditions

if TYPE_CHECKING:
    # The TF Serving client imports grpc and protobuf (about 8 MiB): loaded with the first model status probe
    # (observer.load_model_client), not when the operator starts.
    from croupier.runtime.tfserving.client import ErrorCode
    from croupier.runtime.tfserving.client import VersionStatus as ServedVersion

TRUE, FALSE = ConditionStatus.TRUE, ConditionStatus.FALSE
READY, PROGRESSING, DEGRADED = ConditionType.READY, ConditionType.PROGRESSING, ConditionType.DEGRADED

_STORAGE_MARKERS = ("permission denied", "access denied", "accessdenied", "unauthenticated", "forbidden", "credential")
_SAVED_MODEL_MARKERS = ("savedmodel", "saved_model", "parse", "corrupt", "checksum", "truncated", "data loss")
_MISSING_MARKERS = ("not found", "no such file", "could not find", "does not exist", "no versions")


def failure_reason(code: ErrorCode, message: str) -> Reason:
    """Name why TF Serving could not load a version, from its error code and its own text."""
    from croupier.runtime.tfserving.client import ErrorCode  # noqa: PLC0415  (loaded by the probe that read it)

    text = message.lower()
    if code in (ErrorCode.PERMISSION_DENIED, ErrorCode.UNAUTHENTICATED) or any(m in text for m in _STORAGE_MARKERS):
        return Reason.STORAGE_UNREADABLE
    if any(m in text for m in _SAVED_MODEL_MARKERS) or code in (ErrorCode.DATA_LOSS, ErrorCode.INVALID_ARGUMENT):
        return Reason.SAVED_MODEL_INVALID
    if code == ErrorCode.NOT_FOUND or any(m in text for m in _MISSING_MARKERS):
        return Reason.VERSION_NOT_FOUND
    return Reason.VERSION_NOT_AVAILABLE


@dataclass(frozen=True)
class ServerState:
    """One TF Serving server (Deployment) as observed."""

    role: str
    replicas: int
    deployment: DeploymentState | None
    config_hash: str | None
    versions: tuple[ServedVersion, ...] | None = None
    """GetModelStatus's answer; None when it was not read (see ``error``)."""
    error: str | None = None
    model_unknown: bool = False
    """GetModelStatus answered NOT_FOUND for the model: TF Serving found no version of it (yet)."""
    unapplied_labels: tuple[str, ...] = ()
    """Planned labels TF Serving does not resolve to the planned version yet (its config poll is behind)."""

    def version(self, number: int) -> ServedVersion | None:
        return next((v for v in self.versions or () if v.version == number), None)


@dataclass(frozen=True)
class RouterState:
    """The model router's Deployment (routing mode VersionLabels)."""

    name: str
    replicas: int
    deployment: DeploymentState | None


@dataclass(frozen=True)
class Observations:
    generation: int
    md: ModelDeploymentObject | None = None
    invalid: InvalidObjectError | None = None
    apply_problem: ApplyProblem | None = None
    servers: Mapping[str, ServerState] = field(default_factory=dict)
    plan: ServingPlan | None = None
    served: bool = False
    """The live route / model config carries ``plan`` (the index has caught up with the operator's apply)."""
    route_problem: str | None = None
    """The route's parent did not accept it (GatewayAPI), with the Gateway's message."""
    failures: int = 0
    """Consecutive cycles in which some server's GetModelStatus failed."""
    failure_threshold: int = 1
    endpoint: str | None = None
    rest_endpoint: str | None = None
    rollout: RolloutStatus | None = None
    """The canary rollout after this pass (``canary.engine.advance``)."""
    desired_weight: int | None = None
    """The canary weight the rollout engine decided (None: the spec's, ``plan.desired_canary_weight``)."""
    events: tuple[EventNote, ...] = ()
    """The rollout's Events of this pass (posted once its status is written)."""
    router: RouterState | None = None
    """VersionLabels: the model router's Deployment (None in GatewayAPI mode)."""
    unrouted_labels: tuple[str, ...] = ()
    """VersionLabels: planned labels the routing table does not route yet (TF Serving does not resolve them yet)."""


def rollout_events(observed: Observations) -> tuple[EventNote, ...]:
    return observed.events


def _reason(value: str) -> Reason | ChildReason:
    try:
        return Reason(value)
    except ValueError:
        return ChildReason(value)


def _versions(observed: Observations, current: ModelDeploymentStatus | None, now: datetime) -> list[VersionStatus]:
    md, plan = observed.md, observed.plan
    if md is None or plan is None:
        return []
    before = {v.version: v for v in (current.versions or [] if current is not None else [])}
    canary = md.spec.canary
    numbers = sorted({v for server in plan.servers for v in (*server.versions, *server.failed)})
    rows = []
    for number in numbers:
        role = VersionRole.CANARY if canary is not None and number == canary.version else VersionRole.STABLE
        server_role = server_for(md, CANARY if role == VersionRole.CANARY else STABLE)
        server = observed.servers.get(server_role)
        served = server.version(number) if server is not None else None
        planned = plan.server(server_role)
        labels = planned.labels if planned is not None else {}
        weight = 0
        if role == VersionRole.CANARY and labels.get(CANARY) == number:
            weight = plan.canary_weight
        elif role == VersionRole.STABLE and labels.get(STABLE) == number:
            weight = 100 - plan.canary_weight
        previous = before.get(number)
        # The deadline counts from when a running server could first be asked (not while pods pull their image).
        asked = now if server is not None and (server.versions is not None or server.model_unknown) else None
        state = served.state if served is not None else ModelVersionState.UNKNOWN
        message = served.error_message if served is not None and served.error_message else None
        failed = any(number in s.failed for s in plan.servers)
        if served is None and previous is not None and (failed or (server is not None and server.versions is None)):
            # Not read this time, or no longer loaded because it failed: keep what was last seen.
            state, message = previous.state, previous.message
        rows.append(
            VersionStatus(
                version=number,
                role=role,
                state=state,
                weight=weight,
                message=message,
                requested_time=previous.requested_time if previous and previous.requested_time else asked,
            )
        )
    return rows


STALLS: frozenset[StrEnum] = frozenset(
    {
        Reason.INVALID_NAME,
        Reason.INVALID_SPEC,
        Reason.PODS_STARTING,  # Degraded only once a TF Serving Deployment passed its progress deadline
        Reason.VERSION_NOT_AVAILABLE,
        Reason.VERSION_NOT_FOUND,
        Reason.SAVED_MODEL_INVALID,
        Reason.STORAGE_UNREADABLE,
        Reason.ROUTE_NOT_ACCEPTED,
        Reason.ANALYSIS_FAILED,
        Reason.INSUFFICIENT_DATA,
        Reason.ROLLED_BACK,
        ChildReason.CHILD_CONFLICT,
        ChildReason.APPLY_REJECTED,
    }
)
"""Degraded reasons that are kstatus's Stalled: a version that failed or missed its progress deadline, a halted or
rolled-back canary, a refused route, a spec that cannot work: each waits for a spec change (or a fixed model or
Gateway). ModelServerUnreachable and ApplyFailed (both retried) are not."""


@dataclass(frozen=True)
class VersionProblem:
    role: VersionRole
    condition: DesiredCondition


def _version_problem(
    observed: Observations, rows: Sequence[VersionStatus], now: datetime
) -> tuple[VersionProblem | None, str | None]:
    """(The first version that failed or missed its deadline, as a Degraded condition; message of one still loading)."""
    from croupier.runtime.tfserving.client import ErrorCode  # noqa: PLC0415  (loaded by the probes that read them)

    md = observed.md
    assert md is not None
    deadline = md.spec.progress_deadline_seconds
    loading = None
    wanted = {md.spec.stable.version} | ({md.spec.canary.version} if md.spec.canary is not None else set())
    for row in rows:
        if row.version not in wanted or row.state == ModelVersionState.AVAILABLE:
            continue
        server = observed.servers.get(server_for(md, CANARY if row.role == VersionRole.CANARY else STABLE))
        if server is None or (server.versions is None and not server.model_unknown):
            continue  # not read: nothing to conclude
        served = server.version(row.version)
        label = f"{row.role} version {row.version}"
        if served is not None and served.failed and served.state == ModelVersionState.END:
            reason = failure_reason(served.error_code, served.error_message)
            return VersionProblem(
                row.role, DesiredCondition(DEGRADED, TRUE, reason, f"{label}: {served.error_message}")
            ), None
        if served is None and observed.plan is not None and any(row.version in s.failed for s in observed.plan.servers):
            text = row.message or "TF Serving failed to load it"
            reason = failure_reason(ErrorCode.UNKNOWN, text)
            message = f"{label}: {text} (left out of the model config)"
            return VersionProblem(row.role, DesiredCondition(DEGRADED, TRUE, reason, message)), None
        waited = (now - row.requested_time).total_seconds() if row.requested_time else 0.0
        if waited > deadline:
            if served is None:
                text = server.error or f"TF Serving does not list {label} under {md.spec.model.storage_uri}"
                reason = failure_reason(ErrorCode.NOT_FOUND, text)
                message = f"{label} not AVAILABLE after {deadline}s: {text}"
                return VersionProblem(row.role, DesiredCondition(DEGRADED, TRUE, reason, message)), None
            text = served.error_message or f"state {served.state}"
            reason = (
                failure_reason(served.error_code, served.error_message)
                if served.failed
                else Reason.VERSION_NOT_AVAILABLE
            )
            message = f"{label} not AVAILABLE after {deadline}s: {text}"
            return VersionProblem(row.role, DesiredCondition(DEGRADED, TRUE, reason, message)), None
        if loading is None:
            state = served.state if served is not None else "not listed yet"
            loading = f"{label} is {state} in TF Serving ({int(waited)}s of the {deadline}s progress deadline)"
    return None, loading


def desired_conditions(
    observed: Observations, rows: Sequence[VersionStatus], current: Sequence[Condition] | None, now: datetime
) -> list[DesiredCondition]:
    healthy = DesiredCondition(DEGRADED, FALSE, Reason.AS_EXPECTED)

    def blocked(reason: Reason | ChildReason, message: str, *, degraded: bool) -> list[DesiredCondition]:
        return [
            DesiredCondition(READY, FALSE, reason, message),
            DesiredCondition(PROGRESSING, FALSE, reason, message),
            DesiredCondition(DEGRADED, TRUE, reason, message) if degraded else healthy,
        ]

    def waiting(reason: Reason, message: str, degraded: DesiredCondition = healthy) -> list[DesiredCondition]:
        return [
            DesiredCondition(READY, FALSE, reason, message),
            DesiredCondition(PROGRESSING, TRUE, reason, message),
            degraded,
        ]

    if observed.invalid is not None:
        return blocked(_reason(observed.invalid.reason), observed.invalid.message, degraded=True)
    if observed.apply_problem is not None:
        return blocked(_reason(observed.apply_problem.reason), observed.apply_problem.message, degraded=True)
    md, plan = observed.md, observed.plan
    if md is None or plan is None:
        return waiting(Reason.PODS_STARTING, "waiting for the first observation")
    if md.spec.serving.replicas == 0:
        return blocked(Reason.SCALED_TO_ZERO, "spec.serving.replicas is 0: no TF Serving pod serves", degraded=False)
    for server in observed.servers.values():
        if server.replicas == 0:
            continue
        name = deployment_name(md, server.role)
        deployment = server.deployment
        if deployment is None:
            return waiting(Reason.PODS_STARTING, f"waiting for Deployment {name}")
        if deployment.stalled_message is not None and not deployment.rolled_out(server.config_hash):
            return blocked(Reason.PODS_STARTING, f"Deployment {name}: {deployment.stalled_message}", degraded=True)
        if deployment.available == 0:
            return waiting(Reason.PODS_STARTING, f"Deployment {name}: no TF Serving pod available yet")
    router = observed.router
    if router is not None and router.replicas:
        if router.deployment is None:
            return waiting(Reason.PODS_STARTING, f"waiting for Deployment {router.name}")
        if router.deployment.available == 0:
            return waiting(Reason.PODS_STARTING, f"Deployment {router.name}: no model router pod available yet")
    unread = [s for s in observed.servers.values() if s.replicas and s.error is not None and not s.model_unknown]
    if unread:
        error = "; ".join(s.error or "" for s in unread)
        if observed.failures >= observed.failure_threshold:
            return blocked(Reason.MODEL_SERVER_UNREACHABLE, error, degraded=True)
        kept = [c for c in current or () if c.observed_generation == observed.generation and c.type in DECIDED]
        if len(kept) == len(DECIDED):
            return [DesiredCondition(ConditionType(c.type), c.status, _reason(c.reason), c.message) for c in kept]
        return waiting(Reason.MODEL_SERVER_UNREACHABLE, f"{error} (retrying)")
    problem, loading = _version_problem(observed, rows, now)
    stable_row = next((r for r in rows if r.version == md.spec.stable.version), None)
    stable_available = stable_row is not None and stable_row.state == ModelVersionState.AVAILABLE
    if problem is not None:
        failed = problem.condition
        if stable_available and problem.role == VersionRole.CANARY:
            # The stable version serves everything; the canary gets nothing until its spec changes.
            return [
                DesiredCondition(READY, FALSE, failed.reason, failed.message),
                DesiredCondition(PROGRESSING, FALSE, failed.reason, failed.message),
                failed,
            ]
        return blocked(_reason(str(failed.reason)), failed.message, degraded=True)
    promoting = any(
        v not in (md.spec.stable.version, md.spec.canary.version if md.spec.canary else None)
        for server in plan.servers
        for v in server.versions
    )
    if promoting:
        return waiting(
            Reason.PROMOTING, f"the previous stable version serves until version {md.spec.stable.version} is AVAILABLE"
        )
    if loading is not None:
        return waiting(Reason.VERSION_LOADING, loading)
    wanted_weight = desired_canary_weight(md) if observed.desired_weight is None else observed.desired_weight
    if plan.canary_weight != wanted_weight:
        return waiting(Reason.VERSION_LOADING, "the canary gets traffic once it is AVAILABLE")
    if not observed.served:
        return waiting(Reason.WEIGHT_NOT_SERVED, f"applying the split: canary {plan.canary_weight}%")
    behind = [f"{deployment_name(md, s.role)}: {', '.join(s.unapplied_labels)}" for s in observed.servers.values()]
    behind = [b for b, s in zip(behind, observed.servers.values(), strict=True) if s.unapplied_labels]
    if behind:
        return waiting(Reason.WEIGHT_NOT_SERVED, f"TF Serving has not applied the labels yet ({'; '.join(behind)})")
    if observed.unrouted_labels:
        labels = ", ".join(observed.unrouted_labels)
        return waiting(Reason.WEIGHT_NOT_SERVED, f"the model router routes label(s) {labels} once TF Serving has them")
    if observed.route_problem is not None:
        return blocked(Reason.ROUTE_NOT_ACCEPTED, observed.route_problem, degraded=True)
    for server in observed.servers.values():
        deployment = server.deployment
        if server.replicas and deployment is not None and not deployment.rolled_out(server.config_hash):
            name = deployment_name(md, server.role)
            return waiting(
                Reason.PODS_STARTING,
                f"Deployment {name}: {deployment.updated}/{deployment.spec_replicas} pods updated, "
                f"{deployment.available} available",
            )
    split = f"stable {md.spec.stable.version} {100 - plan.canary_weight}%"
    if md.spec.canary is not None:
        split += f", canary {md.spec.canary.version} {plan.canary_weight}%"
        if md.spec.canary.steps is not None:
            step = observed.rollout.step if observed.rollout is not None and observed.rollout.step is not None else 0
            split += f" (step {step + 1} of {len(md.spec.canary.steps)})"
    by_rollout = rollout_conditions(observed.rollout, split)
    if by_rollout is not None:
        return by_rollout
    message = f"TF Serving reports every version with traffic AVAILABLE; serving {split}"
    return [
        DesiredCondition(READY, TRUE, Reason.AVAILABLE, message),
        DesiredCondition(PROGRESSING, FALSE, Reason.AVAILABLE, message),
        healthy,
    ]


def desired_status(
    observed: Observations, current: ModelDeploymentStatus | None, now: datetime
) -> ModelDeploymentStatus:
    """The complete status to store (unset fields are absent from the stored form)."""
    rows = _versions(observed, current, now)
    current_conditions = list(current.conditions or []) if current is not None else []
    conditions = merge_conditions(
        current_conditions,
        desired_conditions(observed, rows, current_conditions, now),
        generation=observed.generation,
        now=now,
        stalls=STALLS,
    )
    md, plan = observed.md, observed.plan
    canary = md.spec.canary if md is not None else None
    # Unparsed or unapplied: the rollout is not advanced this pass, so the stored one stays.
    rollout = observed.rollout if md is not None else (current.rollout if current is not None else None)
    step = rollout.step if rollout is not None and rollout.step is not None else 0
    return ModelDeploymentStatus(
        observed_generation=observed.generation,
        conditions=conditions,
        versions=rows or None,
        canary_weight=plan.canary_weight if canary is not None and plan is not None else None,
        current_step=step if canary is not None and canary.steps is not None else None,
        rollout=rollout,
        endpoint=observed.endpoint,
        rest_endpoint=observed.rest_endpoint,
    )
