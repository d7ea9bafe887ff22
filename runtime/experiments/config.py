"""Load the Experiment a runtime serves: the manifest a user `kubectl apply`s, or the operator's ConfigMap copy.

The served state is `spec.state`; a manifest may also carry `status.winner` (what KeepWinner serves once Concluded),
which the operator writes into its ConfigMap copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from croupier.api.experiment import KIND, Aggregation, ExperimentSpec, MetricType
from croupier.runtime.errors import ExperimentConfigError
from croupier.runtime.manifest_file import digest, parse_manifest, read_manifest


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
    """Fingerprint of the split (variants with weights and targets, salt, algorithm) and of the analysis settings the
    epoch's statistics rest on (`ExperimentSpec.epoch_settings`): a change of either starts a new epoch."""
    salt: str
    winner: str | None
    metrics: tuple[MetricRule, ...]
    """The primary metric first, then the guardrails."""

    @property
    def variant_names(self) -> list[str]:
        return [v.name for v in self.spec.variants]


def parse_experiment(document: object, source: str = "<experiment>") -> ServedExperiment:
    manifest = parse_manifest(document, source, kind=KIND, spec_model=ExperimentSpec, error=ExperimentConfigError)
    spec = manifest.spec
    status = manifest.document.get("status") or {}
    winner = status.get("winner") if isinstance(status, dict) else None
    if winner is not None and winner not in [v.name for v in spec.variants]:
        raise ExperimentConfigError(f"{source}: status.winner {winner!r} is not a variant")
    name, namespace = manifest.name, manifest.namespace
    salt = spec.assignment.salt or f"{namespace or 'default'}/{name}"
    wire = spec.to_wire()
    split = {"variants": wire["variants"], "salt": salt, "algorithm": spec.assignment.algorithm}
    # The analysis settings too: a change of them while Paused (admitted) must not resume the old epoch's data.
    fingerprint = {**split, "analysis": spec.epoch_settings()}
    metrics = [MetricRule(spec.metric.name, spec.metric.type, spec.metric.aggregation)]
    metrics += [MetricRule(g.name, g.type, g.aggregation) for g in spec.guardrails or []]
    return ServedExperiment(
        name=name,
        namespace=namespace,
        generation=manifest.generation,
        spec=spec,
        version=manifest.version(wire),
        epoch=digest(fingerprint),
        salt=salt,
        winner=winner,
        metrics=tuple(metrics),
    )


def load_experiment(path: Path) -> ServedExperiment:
    return parse_experiment(read_manifest(path, what="experiment", error=ExperimentConfigError), str(path))
