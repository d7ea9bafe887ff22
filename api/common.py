"""Shared building blocks of Croupier's API: model base class, conditions, references.

Every CRD spec/status is a pydantic model deriving from :class:`ApiModel`. The CRD schemas in ``crds/`` are generated
from these models (``croupier.generators.crdgen``), so descriptions written here are what ``kubectl explain`` shows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

GROUP = "croupier.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "croupier"

# Kubernetes DNS-1123 label: what a Service, container port name or arm name has to look like to be safe everywhere.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
QUANTITY = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"

# Upper bound of every status.conditions list: the API server's CEL cost estimator and `maxItems` everywhere.
MAX_CONDITIONS = 16


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


def enforce(*checks: tuple[dict[str, str], bool]) -> None:
    """The Python side of CEL rules: raise one ValueError naming the field of every rule whose check is False.

    Models call this from a ``model_validator(mode="after")`` with ``(rule, python_check)`` pairs, so that code which
    parses a spec without an API server (the runtime run locally, unit tests) rejects what admission rejects, with the
    same message. tests/unit/api/cases.yaml runs the same bad inputs through both.
    """
    failed = [
        f"{rule['fieldPath'].lstrip('.')}: {rule['message']}" if rule.get("fieldPath") else rule["message"]
        for rule, passed in checks
        if not passed
    ]
    if failed:
        raise ValueError("; ".join(failed))


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class ConditionType(StrEnum):
    READY = "Ready"
    PROGRESSING = "Progressing"
    DEGRADED = "Degraded"
    RECONCILING = "Reconciling"
    """kstatus's: True while Progressing is True and the object is not Stalled (derived, never decided alone)."""
    STALLED = "Stalled"
    """kstatus's: True while Degraded is True for a reason that needs a spec change (or another human action)."""


class ChildReason(StrEnum):
    """Condition reasons every kind shares: a child object could not be applied."""

    CHILD_CONFLICT = "ChildConflict"
    """An object of the child's name exists and belongs to someone else; the operator does not take it over."""
    APPLY_REJECTED = "ApplyRejected"
    """The API server refused the child (invalid, forbidden): retried only when the spec changes."""
    APPLY_FAILED = "ApplyFailed"
    """Applying the child failed for another reason (retried)."""


class Condition(ApiModel):
    """An observation of one aspect of the resource's state, following the Kubernetes API conventions (kstatus)."""

    type: Annotated[
        str,
        Field(
            description="Type of condition in CamelCase: Ready, Progressing, Degraded, Reconciling or Stalled.",
            min_length=1,
            max_length=316,
        ),
    ]
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


# status.conditions of every Kind: a list-map keyed by `type`, so that server-side apply merges by condition type.
Conditions = Annotated[
    list[Condition] | None,
    Field(
        description="Ready, Progressing and Degraded, and kstatus's Reconciling and Stalled derived from them, with "
        "CamelCase reasons.",
        max_length=MAX_CONDITIONS,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]

# A free-form JSON object kept as written (`x-kubernetes-preserve-unknown-fields`), e.g. an experiment's static payload.
FreeFormObject = Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})]


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


class LabelSelector(ApiModel):
    """Labels that select namespaces or pods (all of them must match)."""

    match_labels: Annotated[
        dict[str, Annotated[str, Field(max_length=63)]],
        Field(description="Label key/value pairs; {} selects every namespace or pod.", max_length=32),
    ] = {}


_PEER_SELECTS = cel(
    "has(self.namespaceSelector) || has(self.podSelector)", "a peer needs namespaceSelector, podSelector or both"
)


class NetworkPeer(ApiModel):
    """Who may connect, as in a NetworkPolicy's ingress `from` entry: pods matching podSelector in namespaces matching
    namespaceSelector (podSelector alone: the object's own namespace; namespaceSelector alone: every pod there)."""

    model_config = validated(_PEER_SELECTS)

    namespace_selector: Annotated[LabelSelector | None, Field(description="Namespaces, by their labels.")] = None
    pod_selector: Annotated[LabelSelector | None, Field(description="Pods, by their labels.")] = None

    @model_validator(mode="after")
    def _rules(self) -> Self:
        enforce((_PEER_SELECTS, self.namespace_selector is not None or self.pod_selector is not None))
        return self


DEFAULT_MONITORING_NAMESPACE = "monitoring"


class NetworkPolicySpec(ApiModel):
    """The NetworkPolicy the operator renders for the pods of an object: ingress only from the listed peers, the
    operator and the monitoring namespaces. Each kind subclasses it to say who its `ingress` peers call."""

    enabled: Annotated[
        bool,
        Field(
            description="Restrict ingress (false: the NetworkPolicy object stays, with one rule that admits every "
            "peer, the same as none for ingress; the operator never deletes NetworkPolicies, so turning it off cannot "
            "leave a stale restrictive one)."
        ),
    ] = True
    ingress: Annotated[
        list[NetworkPeer],
        Field(
            description="Who may call the pods' API. The operator's pods (label app.kubernetes.io/name: "
            "croupier-operator) in the operator's own namespace are always allowed. Default: the pods of the "
            "object's own namespace.",
            max_length=32,
        ),
    ] = [NetworkPeer(pod_selector=LabelSelector())]
    metrics_namespace_selector: Annotated[
        LabelSelector,
        Field(
            description="Namespaces whose pods may scrape /metrics (and call the health endpoints). Default: the "
            "namespace named monitoring.",
        ),
    ] = LabelSelector(match_labels={"kubernetes.io/metadata.name": DEFAULT_MONITORING_NAMESPACE})
