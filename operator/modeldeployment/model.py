"""A ModelDeployment object as the operator sees it: identity plus a validated spec."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from croupier.api.modeldeployment import KIND, MAX_NAME_LENGTH, ModelDeploymentSpec, Reason
from croupier.operator.core.controller import InvalidObjectError
from croupier.operator.core.ownership import owner_reference

DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class ModelDeploymentObject:
    name: str
    namespace: str
    uid: str
    generation: int
    spec: ModelDeploymentSpec

    @property
    def owner_reference(self) -> dict[str, Any]:
        return owner_reference(KIND, self.name, self.uid)


def parse_model_deployment(body: Mapping[str, Any]) -> ModelDeploymentObject:
    """Validate a ModelDeployment body; raise InvalidObjectError naming what cannot work."""
    metadata = body.get("metadata") or {}
    name = str(metadata.get("name", ""))
    if not DNS_1035_LABEL.match(name) or len(name) > MAX_NAME_LENGTH:
        raise InvalidObjectError(
            Reason.INVALID_NAME,
            f"metadata.name {name!r} must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters (lower-case "
            "letters, digits and '-', starting with a letter): the TF Serving Services are named after it",
        )
    try:
        spec = ModelDeploymentSpec.model_validate(body.get("spec") or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(['spec', *(str(p) for p in e['loc'])])}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors(include_url=False)
        )
        raise InvalidObjectError(Reason.INVALID_SPEC, problems) from error
    return ModelDeploymentObject(
        name=name,
        namespace=str(metadata.get("namespace", "")),
        uid=str(metadata.get("uid", "")),
        generation=int(metadata.get("generation") or 0),
        spec=spec,
    )
