"""Local experiment assignment: the variant a unit gets, computed in process with the published hash contract
(``croupier.api.assignment``, bit-exact with ``docs/api/assignment-vectors.json`` and the runtime).

A service that assigns locally reports what it showed with ``Client.expose(unit, variant, assigner.epoch)`` (or
``assigner.exposure(unit)``). The local assigner knows the current split only: a sticky unit that the runtime
remembers with another variant (from an earlier epoch) is answered ``mismatch`` on its exposure, and a configuration
older than the runtime's is answered ``stale``; ask ``Client.assign`` when that matters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from croupier.api.assignment import Assigner, HashAlgorithm
from croupier.api.experiment import ExperimentState, OnConclude
from croupier.api.wire import Exposure
from croupier.runtime.errors import ExperimentConfigError
from croupier.runtime.experiments.config import parse_experiment

from .errors import InvalidArgument


class LocalAssigner:
    """``assigner.assign(unit_id) -> variant`` (also ``assigner(unit_id)``): no I/O, a few microseconds per call.

    Built from an Experiment manifest (``from_manifest``, ``from_file``: salt, weights, algorithm, served state and
    epoch exactly as the runtime derives them), or from the hash parameters alone (``epoch`` then unknown)."""

    __slots__ = ("assign", "epoch", "experiment", "fixed", "variants")

    def __init__(
        self,
        salt: str,
        weights: Sequence[tuple[str, int]],
        algorithm: str = HashAlgorithm.SHA256_V1,
        *,
        epoch: str | None = None,
        experiment: str | None = None,
        fixed: str | None = None,
    ) -> None:
        try:
            hashed = Assigner(salt, weights, algorithm).assign
        except ValueError as exc:
            raise InvalidArgument(str(exc), "weights" if "weight" in str(exc) else "algorithm") from None
        self.variants = [name for name, _ in weights]
        if fixed is not None and fixed not in self.variants:
            raise InvalidArgument(f"{fixed!r} is not a variant: {self.variants}", "fixed")
        self.epoch = epoch
        self.experiment = experiment
        self.fixed = fixed
        self.assign: Callable[[str], str] = hashed if fixed is None else (lambda _unit: fixed)

    def __call__(self, unit_id: str) -> str:
        return self.assign(unit_id)

    @classmethod
    def from_manifest(cls, document: Mapping[str, Any]) -> LocalAssigner:
        """From an Experiment manifest (as applied, or read back from the cluster with its status). Not Running, it
        serves what the runtime serves: Paused, control; Concluded, the winner (KeepWinner, from status.winner),
        control (KeepControl) or each unit's own variant (Nothing)."""
        try:
            served = parse_experiment(dict(document), "<experiment manifest>")
        except ExperimentConfigError as exc:
            raise InvalidArgument(str(exc), "spec") from None
        spec = served.spec
        fixed: str | None = None
        if spec.state == ExperimentState.PAUSED:
            fixed = spec.control
        elif spec.state == ExperimentState.CONCLUDED:
            if spec.on_conclude == OnConclude.KEEP_WINNER:
                fixed = served.winner or spec.control
            elif spec.on_conclude == OnConclude.KEEP_CONTROL:
                fixed = spec.control
        return cls(
            served.salt,
            spec.weights(),
            spec.assignment.algorithm,
            epoch=served.epoch,
            experiment=served.name,
            fixed=fixed,
        )

    @classmethod
    def from_file(cls, path: str | Path) -> LocalAssigner:
        try:
            document = yaml.safe_load(Path(path).read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidArgument(f"cannot read the Experiment manifest {path}: {exc}", "path") from None
        if not isinstance(document, Mapping):
            raise InvalidArgument(f"{path} is not an Experiment manifest (a YAML mapping)", "path")
        return cls.from_manifest(document)

    def exposure(self, unit_id: str) -> Exposure:
        """The exposure to report after serving the unit its variant (with this configuration's epoch)."""
        return Exposure(unit_id=unit_id, variant=self.assign(unit_id), epoch=self.epoch)
