"""An Experiment object as the operator sees it: identity plus a validated spec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from croupier.api.experiment import KIND, ExperimentSpec, ExperimentState, OnGuardrailViolation, Reason
from croupier.operator.core.controller import InvalidObjectError
from croupier.operator.core.ownership import owner_reference

# Children are named `<name>-experiment` (a DNS-1035 label of at most 63 characters).
CHILD_SUFFIX = "-experiment"
MAX_NAME = 63 - len(CHILD_SUFFIX)
DNS_1035_LABEL = re.compile(rf"^[a-z]([-a-z0-9]{{0,{MAX_NAME - 2}}}[a-z0-9])?$")


class InvalidReason(StrEnum):
    """Why an Experiment cannot be rendered (the CRD's schema and CEL rules reject most of this at admission)."""

    INVALID_NAME = "InvalidName"
    INVALID_SPEC = "InvalidSpec"


BLOCKING_REASONS = frozenset({Reason.TARGET_NOT_FOUND, Reason.TARGET_NOT_READY, Reason.TARGET_NOT_SUPPORTED})


@dataclass(frozen=True)
class ExperimentObject:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: ExperimentSpec
    winner: str | None = None
    """The stored ``status.winner`` (what KeepWinner serves once Concluded)."""
    guardrail_action: str | None = None
    """The stored ``status.guardrailAction.action`` (Pause or Conclude), if one was taken."""
    ready_reason: str = ""
    """The stored Ready condition's reason (a target that is missing or not ready makes the runtime serve control)."""

    @property
    def owner_reference(self) -> dict[str, Any]:
        return owner_reference(KIND, self.name, self.uid)


def parse_experiment(body: Mapping[str, Any]) -> ExperimentObject:
    """Validate an Experiment body; raise InvalidObjectError naming what cannot work."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if not DNS_1035_LABEL.match(name):
        raise InvalidObjectError(
            InvalidReason.INVALID_NAME,
            f"metadata.name {name!r} must be a DNS-1035 label of at most {MAX_NAME} characters (lower-case letters, "
            f"digits and '-', starting with a letter): the runtime's Service is named <name>{CHILD_SUFFIX}",
        )
    try:
        spec = ExperimentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(['spec', *(str(p) for p in e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_url=False)
        )
        raise InvalidObjectError(InvalidReason.INVALID_SPEC, problems) from error
    status = body.get("status") or {}
    winner = status.get("winner") if isinstance(status, Mapping) else None
    action = (status.get("guardrailAction") or {}).get("action") if isinstance(status, Mapping) else None
    ready_reason = ""
    for condition in (status.get("conditions") if isinstance(status, Mapping) else None) or ():
        if condition.get("type") == "Ready":
            ready_reason = str(condition.get("reason") or "")
    return ExperimentObject(
        name=name,
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        winner=winner if winner in {v.name for v in spec.variants} else None,
        guardrail_action=str(action) if action else None,
        ready_reason=ready_reason,
    )


def unsupported_variants(spec: ExperimentSpec) -> list[str]:
    """Variants targeting a ModelDeployment version: no model router honours their route yet."""
    return [v.name for v in spec.variants if v.model_deployment_ref is not None]


def served_state(experiment: ExperimentObject) -> ExperimentState:
    """What the runtime serves (the operator's ConfigMap copy), derived from the user's spec and the stored status;
    the user's spec is never written.

    - a variant the operator cannot serve (a ModelDeployment target) or a missing / not ready DecisionPolicy target
      (the stored Ready reason): Paused, i.e. control for every unit and nothing counted;
    - a guardrail action taken (``status.guardrailAction``, per ``onGuardrailViolation``): Paused or Concluded;
    - otherwise the user's ``spec.state``.
    """
    spec = experiment.spec
    if spec.state != ExperimentState.RUNNING:
        return spec.state
    if unsupported_variants(spec) or experiment.ready_reason in BLOCKING_REASONS:
        return ExperimentState.PAUSED
    if experiment.guardrail_action == OnGuardrailViolation.PAUSE:
        return ExperimentState.PAUSED
    if experiment.guardrail_action == OnGuardrailViolation.CONCLUDE:
        return ExperimentState.CONCLUDED
    return spec.state
