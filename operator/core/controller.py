"""What a Kind declares to plug into the shared machinery: ``KindController``.

A Kind is its custom resource, the child kinds it owns, and four functions: ``parse`` (body -> a validated object,
or ``InvalidObjectError``), ``render`` (object -> desired children, pure), an observer (the Kind's own reads, e.g. a
runtime probe: built once at startup) and ``status`` (observations -> the api's typed status model, pure). Applying
children, watching and indexing them, writing status only when it changed, Events on transitions and the per-object
supervisor are the machinery's (``croupier.operator.core``), the same for every Kind.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, Protocol, TypeVar

import httpx
from prometheus_client import Gauge

from croupier.api.common import ApiModel
from croupier.operator.core.conditions import EventNote
from croupier.operator.core.kube import KubeClient
from croupier.operator.core.object_metrics import Sample
from croupier.operator.core.resources import Resource
from croupier.operator.settings import OperatorSettings

ChildKey = tuple[str, str]  # (kind, name)
LiveChildren = Mapping[ChildKey, Mapping[str, Any]]

ParsedT = TypeVar("ParsedT")
ObservedT = TypeVar("ObservedT")
StatusT = TypeVar("StatusT", bound=ApiModel)
Observed_co = TypeVar("Observed_co", covariant=True)


class InvalidObjectError(ValueError):
    """The object cannot be served as it is; ``reason`` is the CamelCase condition reason."""

    def __init__(self, reason: StrEnum, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ApplyProblem:
    """Why the children could not be applied (a condition's reason and message)."""

    reason: StrEnum
    message: str


@dataclass(frozen=True)
class Target:
    """The identity of the object being reconciled."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int

    @classmethod
    def from_body(cls, kind: str, body: Mapping[str, Any]) -> Target:
        metadata = body.get("metadata") or {}
        return cls(
            kind=kind,
            name=str(metadata.get("name", "")),
            namespace=str(metadata.get("namespace", "")),
            uid=str(metadata.get("uid", "")),
            generation=int(metadata.get("generation") or 0),
        )


@dataclass(frozen=True)
class Snapshot(Generic[ParsedT]):
    """Everything the machinery knows about one object at one moment, handed to the Kind's observer."""

    target: Target
    parsed: ParsedT | None
    invalid: InvalidObjectError | None
    problem: ApplyProblem | None
    desired: tuple[Mapping[str, Any], ...]
    """The children as rendered for this generation (what the live ones should become)."""
    live: LiveChildren
    stored_status: Mapping[str, Any] = field(default_factory=dict)
    """The status as stored (or as last written by the operator, if the watch has not delivered it yet): what a
    Kind's observer needs from its previous pass (a ModelDeployment's ``status.rollout``)."""

    def desired_child(self, kind: str, name: str) -> Mapping[str, Any] | None:
        return next((c for c in self.desired if c["kind"] == kind and c["metadata"]["name"] == name), None)


@dataclass(frozen=True)
class Services:
    """Built once at startup and shared by every Kind (kept in Kopf's memo)."""

    settings: OperatorSettings
    http: httpx.AsyncClient
    kube: KubeClient | None = None
    """For reads a Kind needs beyond its children (the auth Secret of a DecisionPolicy's stats probe)."""


class KindObserver(Protocol[ParsedT, Observed_co]):
    """A Kind's own observations (reads beyond its children), with whatever it remembers per object."""

    async def observe(self, snapshot: Snapshot[ParsedT]) -> Observed_co: ...

    def recheck_after(self, uid: str) -> float | None:
        """Seconds until this object should be observed again, when sooner than the resync interval."""
        ...

    def forget(self, uid: str) -> None: ...


class NothingToObserve:
    """The observer of a Kind that reads nothing beyond its children: the snapshot is the observation."""

    def __init__(self, _: Services | None = None) -> None:
        pass

    async def observe(self, snapshot: Snapshot[Any]) -> Snapshot[Any]:
        return snapshot

    def recheck_after(self, uid: str) -> float | None:
        return None

    def forget(self, uid: str) -> None:
        pass


@dataclass(frozen=True)
class KindController(Generic[ParsedT, ObservedT, StatusT]):
    resource: Resource
    status_model: type[StatusT]
    parse: Callable[[Mapping[str, Any]], ParsedT]
    render: Callable[[ParsedT, OperatorSettings], Sequence[dict[str, Any]]]
    observer: Callable[[Services], KindObserver[ParsedT, ObservedT]]
    status: Callable[[ObservedT, StatusT | None, datetime], StatusT]
    children: tuple[Resource, ...] = ()
    owned_status: tuple[str, ...] | None = None
    """The stored status fields ``status`` computes (camelCase); None: every field of ``status_model``. Fields not
    owned are left as they are (a kind that does not compute them yet must not erase them)."""
    ready_gauge: Gauge | None = None
    """Objects of this kind by their Ready status, as last computed (optional)."""
    events: Callable[[ObservedT], Sequence[EventNote]] | None = None
    """Events the observations call for beyond condition transitions (e.g. a canary step advance); posted only
    when the status they belong to was written, so a held-back or repeated pass posts nothing twice."""
    status_metrics: Callable[[StatusT], Sequence[Sample]] | None = None
    """Per-object gauge samples derived from the computed status, beyond the conditions every Kind publishes."""
    event_reasons: Mapping[str, str] = field(default_factory=dict)
    """Condition reasons whose arrival posts an Event (reason -> ``Normal`` | ``Warning``), beyond the transitions
    of Ready and Degraded that every kind's get (``croupier.operator.core.conditions.reason_events``)."""
    render_inputs: Callable[[Mapping[str, Any]], Hashable] | None = None
    """What ``parse``/``render`` read from the body besides the spec (e.g. stored status fields that change what a
    child serves): the rendering is cached per generation and per this value. None: the spec only."""
    prunes_children: bool = False
    """The Kind's observer deletes the children it no longer renders (``ChildApplier.prune``): RBAC grants ``delete``
    on its child kinds (the RBAC audit derives that from this flag)."""

    @property
    def kind(self) -> str:
        return self.resource.kind


def spec_not_read(_: Mapping[str, Any]) -> None:
    """``parse`` of a Kind whose spec this operator version does not read yet."""
    return None


def no_children(_: object, __: OperatorSettings) -> Sequence[dict[str, Any]]:
    """``render`` of a Kind that owns nothing (yet)."""
    return ()
