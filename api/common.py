"""Shared building blocks of Croupier's API: model base class, conditions, references.

Every CRD spec/status is a pydantic model deriving from :class:`ApiModel`. The CRD schemas in ``crds/`` are generated
from these models (``croupier.api.crdgen``), so descriptions written here are what ``kubectl explain`` shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

GROUP = "croupier.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "croupier"

# Kubernetes DNS-1123 label: what a Service, container port name or arm name has to look like to be safe everywhere.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


def cel(rule: str, message: str, field_path: str | None = None, reason: str | None = None) -> dict[str, str]:
    """One `x-kubernetes-validations` entry (a CEL rule evaluated by the API server at admission)."""
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    if reason:
        entry["reason"] = reason
    return entry


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, immutable, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        extra="forbid",
        use_enum_values=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as Kubernetes stores it: camelCase keys, unset optionals left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def validated(*rules: dict[str, str]) -> ConfigDict:
    """The ApiModel config plus CEL rules that the API server evaluates on this object."""
    extra: dict[str, Any] = {"x-kubernetes-validations": list(rules)}
    return ConfigDict(**ApiModel.model_config, json_schema_extra=extra)


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"


class Condition(ApiModel):
    """An observation of one aspect of the resource's state, following the Kubernetes API conventions (kstatus)."""

    type: Annotated[str, Field(description="Type of condition in CamelCase: Ready, Progressing or Degraded.")]
    status: Annotated[ConditionStatus, Field(description="Status of the condition: True, False or Unknown.")]
    reason: Annotated[
        str,
        Field(
            description="A programmatic identifier in CamelCase for the condition's last transition.",
            pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
            max_length=1024,
        ),
    ]
    message: Annotated[str, Field(description="A human readable message about the transition.", max_length=32768)] = ""
    observed_generation: Annotated[
        int | None,
        Field(description="The .metadata.generation that the condition was set based upon.", ge=0),
    ] = None
    last_transition_time: Annotated[
        datetime,
        Field(description="Last time the condition's status changed (not its reason or message)."),
    ]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class LocalObjectReference(ApiModel):
    """A reference to another object in the same namespace."""

    name: Annotated[
        str, Field(description="Name of the referenced object.", min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    ]


# A resource quantity as Kubernetes writes it: an integer or a string such as "100m" or "1Gi" (int-or-string).
Quantity = Annotated[
    int | Annotated[str, Field(pattern=QUANTITY)], Field(json_schema_extra={"x-kubernetes-int-or-string": True})
]


class ResourceRequirements(ApiModel):
    """Compute resources for a container, as in core/v1 ResourceRequirements."""

    requests: Annotated[
        dict[str, Quantity] | None,
        Field(description="Minimum resources, e.g. {cpu: 100m, memory: 128Mi}."),
    ] = None
    limits: Annotated[
        dict[str, Quantity] | None,
        Field(description="Maximum resources, e.g. {cpu: '1', memory: 512Mi}."),
    ] = None
