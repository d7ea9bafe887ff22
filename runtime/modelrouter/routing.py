"""The routing core: the routing table (per model: the versions behind ``stable`` and ``canary``, the canary's
weight), the choice of a label per request, and the bounded metric labels of a routed request.

A request that carries a unit key is routed by a hash of the table's salt and the key, so a unit keeps its label while
the weight holds and only moves stable → canary when the weight grows. A request without one takes the next point
of a golden-ratio sequence per model: its shares follow the weight within a fraction of a point after a few hundred
requests (a random draw would wander by ±1.5 points over 1,000 requests)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field, model_validator

STABLE = "stable"
CANARY = "canary"
OTHER = "other"  # a model, version or label the table does not know (keeps metric labels bounded)
NONE = "none"  # no label (a request that named its version)
PIN_HEADER = "x-croupier-model-version"
"""A request header (gRPC metadata key) that pins a request naming no version or label to one version: what an
Experiment's ModelDeployment target tells its clients to send. The router answers with the same header name."""
_MAX_VERSION = 2**63 - 1
_GOLDEN = 0.6180339887498949
_HASH_SCALE = float(1 << 64)


class ModelRoute(BaseModel):
    """One model's labels and the canary's share of the requests that name no version."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    stable: int = Field(ge=1, description="The version behind the label `stable`.")
    canary: int | None = Field(None, ge=1, description="The version behind the label `canary`, if any.")
    canary_weight: float = Field(
        0.0,
        alias="canaryWeight",
        ge=0,
        le=100,
        allow_inf_nan=False,
        description="Percent of requests sent to `canary`.",
    )

    @model_validator(mode="after")
    def _weight_needs_a_canary(self) -> ModelRoute:
        if self.canary is None and self.canary_weight > 0:
            raise ValueError(f"canaryWeight is {self.canary_weight} but no canary version is set")
        return self


class RoutingTable(BaseModel):
    """The file the operator writes (a ConfigMap key mounted as a volume), YAML or JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    salt: str = Field("", description="Mixed into the unit hash; a new salt reshuffles units.")
    models: dict[str, ModelRoute] = Field(default_factory=dict, description="Routes by model name.")


@dataclass(frozen=True, slots=True)
class Route:
    """Where a request goes and how it is counted. ``label`` is set on the forwarded request when ``rewrite``."""

    model: str
    """The model's metric label: its name when the table knows it, else ``other``."""
    version: str
    """The served version's metric label (``other`` when unknown to the table)."""
    label: str
    """``stable``/``canary``, a label the request named (``other`` when unknown), or ``none``."""
    rewrite: bool
    """True when the router chose the label (the request named no version or label)."""


def pinned_version(value: str | None) -> int | None:
    """The version ``PIN_HEADER`` pins (None: no header). Raises ValueError naming the problem."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= _MAX_VERSION:
        raise ValueError(f"{PIN_HEADER} must be a version number (1 to 2^63-1), got {value[:64]!r}")
    return int(text)


def unit_point(salt: str, unit: str) -> float:
    """A unit's fixed point in [0, 1): the same for REST and gRPC, and across router replicas."""
    digest = hashlib.blake2b(f"{salt}\x00{unit}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SCALE


class Router:
    """Chooses routes from the current table; ``replace`` swaps the table (the sequences start again)."""

    def __init__(self, table: RoutingTable | None = None) -> None:
        self.table = table or RoutingTable()
        self._sequence: dict[str, int] = {}

    def replace(self, table: RoutingTable) -> None:
        self.table = table
        self._sequence = {}

    def route(self, model: str, version: int | None, label: str | None, unit: str | None) -> Route:
        entry = self.table.models.get(model)
        if entry is None:
            return Route(OTHER, OTHER, _label(label), False)
        if version is not None:
            known = version in (entry.stable, entry.canary)
            return Route(model, str(version) if known else OTHER, NONE, False)
        if label is not None:
            served = {STABLE: entry.stable, CANARY: entry.canary}.get(label)
            return Route(model, str(served) if served is not None else OTHER, _label(label), False)
        chosen = CANARY if self._canary(model, entry, unit) else STABLE
        served_version = entry.canary if chosen == CANARY else entry.stable
        return Route(model, str(served_version), chosen, True)

    def _canary(self, model: str, entry: ModelRoute, unit: str | None) -> bool:
        share = entry.canary_weight / 100.0
        if entry.canary is None or share <= 0.0:
            return False
        if share >= 1.0:
            return True
        if unit:
            return unit_point(self.table.salt, unit) < share
        n = self._sequence.get(model, 0) + 1
        self._sequence[model] = n
        return (n * _GOLDEN) % 1.0 < share


def _label(label: str | None) -> str:
    if label is None:
        return NONE
    return label if label in (STABLE, CANARY) else OTHER
