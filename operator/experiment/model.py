"""An Experiment object as the operator sees it: identity plus a validated spec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from croupier.api.decisionpolicy import KIND as POLICY_KIND
from croupier.api.experiment import (
    CHILD_SUFFIX,
    KIND,
    ExperimentSpec,
    ExperimentState,
    OnConclude,
    OnGuardrailViolation,
    Reason,
)
from croupier.api.experiment import MAX_NAME_LENGTH as MAX_NAME
from croupier.api.modeldeployment import KIND as MODEL_KIND
from croupier.operator.core.controller import InvalidObjectError
from croupier.operator.core.ownership import owner_reference

DNS_1035_LABEL = re.compile(rf"^[a-z]([-a-z0-9]{{0,{MAX_NAME - 2}}}[a-z0-9])?$")


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
    policy_tokens: tuple[tuple[str, str, str], ...] = ()
    """The stored ``status.policyTokens``: (policy, Secret, key) of each DecisionPolicy target's decide token."""
    ready_targets: frozenset[str] = frozenset()
    """The stored ``status.readyTargets``: the targets the operator has observed Ready (`target_keys`)."""

    @property
    def served_on_conclude(self) -> OnConclude:
        """The onConclude the runtime is given: KeepControl when a guardrail concluded it (`guardrail_concluded`),
        never the harmful variant or the weights; otherwise the spec's."""
        return OnConclude.KEEP_CONTROL if guardrail_concluded(self) else self.spec.on_conclude

    @property
    def owner_reference(self) -> dict[str, Any]:
        return owner_reference(KIND, self.name, self.uid)


def parse_experiment(body: Mapping[str, Any]) -> ExperimentObject:
    """Validate an Experiment body; raise InvalidObjectError naming what cannot work."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if not DNS_1035_LABEL.match(name):
        raise InvalidObjectError(
            Reason.INVALID_NAME,
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
        raise InvalidObjectError(Reason.INVALID_SPEC, problems) from error
    winner, action, ready_reason, policy_tokens, ready_targets = render_inputs(body)
    return ExperimentObject(
        name=name,
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        winner=winner if winner in {v.name for v in spec.variants} else None,
        guardrail_action=action,
        ready_reason=ready_reason,
        policy_tokens=policy_tokens,
        ready_targets=frozenset(ready_targets),
    )


def target_keys(spec: ExperimentSpec) -> frozenset[str]:
    """The targets the operator must observe Ready before the runtime may serve them: ``DecisionPolicy/<name>`` and
    ``ModelDeployment/<name>/<version>`` (a static payload needs no check)."""
    keys = {f"{POLICY_KIND}/{v.decision_policy_ref.name}" for v in spec.variants if v.decision_policy_ref}
    keys |= {
        f"{MODEL_KIND}/{v.model_deployment_ref.name}/{v.model_deployment_ref.version}"
        for v in spec.variants
        if v.model_deployment_ref
    }
    return frozenset(keys)


def unobserved_targets(experiment: ExperimentObject) -> list[str]:
    """The spec's targets not (yet) observed Ready: until there are none, the runtime serves control."""
    return sorted(target_keys(experiment.spec) - experiment.ready_targets)


def served_state(experiment: ExperimentObject) -> ExperimentState:
    """What the runtime serves (the operator's ConfigMap copy), derived from the user's spec and the stored status;
    the user's spec is never written.

    - a target the operator cannot serve (a ModelDeployment in GatewayAPI mode, where no model router honours the
      version route) or a missing / not ready target (the stored Ready reason): Paused, i.e. control for every unit and
      nothing counted;
    - a target the operator has not observed Ready yet (not in ``status.readyTargets``: a new Experiment's first
      render, a spec that names another target): Paused, until the observer has checked it;
    - a guardrail action taken (``status.guardrailAction``, per ``onGuardrailViolation``): Paused, or Concluded
      serving control whatever ``onConclude`` says (see `guardrail_concluded`);
    - otherwise the user's ``spec.state``.
    """
    spec = experiment.spec
    if spec.state != ExperimentState.RUNNING:
        return spec.state
    if experiment.ready_reason in BLOCKING_REASONS or unobserved_targets(experiment):
        return ExperimentState.PAUSED
    if experiment.guardrail_action == OnGuardrailViolation.PAUSE:
        return ExperimentState.PAUSED
    if experiment.guardrail_action == OnGuardrailViolation.CONCLUDE:
        return ExperimentState.CONCLUDED
    return spec.state


def guardrail_concluded(experiment: ExperimentObject) -> bool:
    """Concluded by a guardrail (not by the user): the runtime serves control, never the harmful variant or the
    weights (onConclude KeepWinner or Nothing), so the served copy says KeepControl."""
    return experiment.spec.state == ExperimentState.RUNNING and served_state(experiment) == ExperimentState.CONCLUDED


def render_inputs(
    body: Mapping[str, Any],
) -> tuple[str | None, str | None, str, tuple[tuple[str, str, str], ...], tuple[str, ...]]:
    """The stored status fields ``parse_experiment`` reads (they change what the runtime serves): winner, guardrail
    action, Ready reason, the DecisionPolicy targets' token sources, the targets observed Ready. The supervisor
    re-renders when they change."""
    status = body.get("status") or {}
    if not isinstance(status, Mapping):
        return (None, None, "", (), ())
    action = (status.get("guardrailAction") or {}).get("action")
    spec = body.get("spec") or {}
    # The winner matters only to a Concluded runtime (KeepWinner): a winner found while Running changes nothing served.
    # A guardrail's Conclude serves control (guardrail_concluded), so only the user's Concluded reads it.
    concluding = spec.get("state") == ExperimentState.CONCLUDED
    winner = status.get("winner") if concluding else None
    ready = next((str(c.get("reason") or "") for c in status.get("conditions") or () if c.get("type") == "Ready"), "")
    tokens = tuple(
        (str(t["policy"]), str(t["secretName"]), str(t["key"]))
        for t in status.get("policyTokens") or ()
        if isinstance(t, Mapping) and t.get("policy") and t.get("secretName") and t.get("key")
    )
    targets = status.get("readyTargets")
    return (
        str(winner) if winner is not None else None,
        str(action) if action else None,
        ready if ready in BLOCKING_REASONS else "",
        tokens,
        tuple(sorted(str(t) for t in targets)) if isinstance(targets, list) else (),
    )
