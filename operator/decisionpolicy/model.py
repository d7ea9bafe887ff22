"""A DecisionPolicy object as the operator sees it: identity plus a validated spec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from croupier.api.decisionpolicy import KIND, DecisionPolicySpec, Reason
from croupier.operator.core.controller import InvalidObjectError
from croupier.operator.core.ownership import owner_reference

# Children share the policy's name, and a Service name must be a DNS-1035 label.
DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class PolicyObject:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: DecisionPolicySpec
    scoring_target: tuple[str, str] | None = None
    """(gRPC address, model name) of the scoring ModelDeployment, as the observer stored them in status.scoring."""

    @property
    def owner_reference(self) -> dict[str, Any]:
        return owner_reference(KIND, self.name, self.uid)


def parse_policy(body: Mapping[str, Any]) -> PolicyObject:
    """Validate a DecisionPolicy body; raise InvalidObjectError naming what cannot work."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if not DNS_1035_LABEL.match(name):
        raise InvalidObjectError(
            Reason.INVALID_NAME,
            f"metadata.name {name!r} must be a DNS-1035 label (lower-case letters, digits and '-', starting with a "
            "letter, at most 63 characters): the runtime's Service and labels carry it",
        )
    try:
        spec = DecisionPolicySpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(['spec', *(str(p) for p in e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_url=False)
        )
        raise InvalidObjectError(Reason.INVALID_SPEC, problems) from error
    return PolicyObject(
        name=name,
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
        scoring_target=render_inputs(body) if spec.scoring is not None else None,
    )


def render_inputs(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """What the render reads from the stored status: the scoring model's address and name (the observer writes them
    from the ModelDeployment; the runtime's config carries them, so a change re-renders and restarts the pods)."""
    scoring = (body.get("status") or {}).get("scoring") or {}
    address, model = scoring.get("address"), scoring.get("modelName")
    if isinstance(address, str) and address and isinstance(model, str) and model:
        return address, model
    return None
