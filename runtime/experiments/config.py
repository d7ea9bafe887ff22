"""Load the Experiment a runtime serves: the manifest a user `kubectl apply`s, or the operator's ConfigMap copy.

The served state is `spec.state`; a manifest may also carry `status.winner` (what KeepWinner serves once Concluded),
which the operator writes into its ConfigMap copy.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from pydantic import ValidationError

from croupier.api.common import API_VERSION
from croupier.api.experiment import KIND, Aggregation, ExperimentSpec, MetricType
from croupier.runtime.errors import ExperimentConfigError


@dataclass(frozen=True, slots=True)
class MetricRule:
    """How one metric's outcomes are checked and aggregated per unit."""

    name: str
    type: str
    aggregation: str

    @property
    def kind(self) -> str:
        """Binary, Count, Continuous:Sum or Continuous:Mean: what a unit's stored value means."""
        return f"{self.type}:{self.aggregation}" if self.type == MetricType.CONTINUOUS else self.type

    @property
    def counts_every_exposure(self) -> bool:
        """Sum aggregations: every exposed unit is in the sample (0 without outcomes). Mean: only units with one."""
        return self.aggregation == Aggregation.SUM or self.type != MetricType.CONTINUOUS


@dataclass(frozen=True, slots=True)
class ServedExperiment:
    name: str
    namespace: str | None
    generation: int | None
    spec: ExperimentSpec
    version: str
    """experimentVersion: `g<generation>-<hash of the spec>`."""
    epoch: str
    """Fingerprint of the split (variants with weights and targets, salt, algorithm): a change starts a new epoch."""
    salt: str
    winner: str | None
    metrics: tuple[MetricRule, ...]
    """The primary metric first, then the guardrails."""

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.spec.variants]


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def parse_experiment(document: object, source: str = "<experiment>") -> ServedExperiment:
    if not isinstance(document, dict):
        raise ExperimentConfigError(f"{source}: expected an Experiment manifest (a YAML mapping)")
    if document.get("kind") != KIND:
        raise ExperimentConfigError(f"{source}: kind is {document.get('kind')!r}, expected {KIND!r}")
    if document.get("apiVersion") != API_VERSION:
        raise ExperimentConfigError(f"{source}: apiVersion is {document.get('apiVersion')!r}, expected {API_VERSION!r}")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise ExperimentConfigError(f"{source}: metadata.name is required")
    generation = metadata.get("generation")
    if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool)):
        raise ExperimentConfigError(f"{source}: metadata.generation must be an integer")
    try:
        spec = ExperimentSpec.model_validate(document.get("spec"))
    except ValidationError as exc:
        raise ExperimentConfigError(f"{source}: invalid spec: {exc}") from exc
    status = document.get("status") or {}
    winner = status.get("winner") if isinstance(status, dict) else None
    if winner is not None and winner not in [v.name for v in spec.variants]:
        raise ExperimentConfigError(f"{source}: status.winner {winner!r} is not a variant")
    name, namespace = metadata["name"], metadata.get("namespace")
    salt = spec.assignment.salt or f"{namespace or 'default'}/{name}"
    wire = spec.to_wire()
    split = {"variants": wire["variants"], "salt": salt, "algorithm": spec.assignment.algorithm}
    metrics = [MetricRule(spec.metric.name, spec.metric.type, spec.metric.aggregation)]
    metrics += [MetricRule(g.name, g.type, g.aggregation) for g in spec.guardrails or []]
    return ServedExperiment(
        name=name,
        namespace=namespace,
        generation=generation,
        spec=spec,
        version=f"g{generation or 0}-{_digest(wire)}",
        epoch=_digest(split),
        salt=salt,
        winner=winner,
        metrics=tuple(metrics),
    )


def load_experiment(path: Path) -> ServedExperiment:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ExperimentConfigError(f"cannot read the experiment file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise ExperimentConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_experiment(document, str(path))
