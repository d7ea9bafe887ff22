"""Local experiment assignment: the variant a unit gets, computed in process with the published hash contract
(``croupier.api.assignment``, bit-exact with ``docs/api/assignment-vectors.json`` and the runtime).

A service that assigns locally reports what it showed with ``Client.expose(unit, variant, assigner.epoch)`` (or
``assigner.exposure(unit)``). The local assigner knows the current split only: a sticky unit that the runtime
remembers with another variant (from an earlier epoch) is answered ``mismatch`` on its exposure, and a configuration
older than the runtime's is answered ``stale``; ask ``Client.assign`` when that matters.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from fnv_hash_fast import fnv1a_32

from croupier.api.assignment import BUCKETS, Assigner, HashAlgorithm
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
        if algorithm != HashAlgorithm.SHA256_V1 and salt.isascii():
            hashed = _fast_fnv(salt, weights, algorithm, hashed)
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


def _fast_fnv(
    salt: str, weights: Sequence[tuple[str, int]], algorithm: str, exact: Callable[[str], str]
) -> Callable[[str], str]:
    """The GrowthBook schemes with FNV-1a in C (fnv-hash-fast) for ASCII unit ids, where a UTF-16 code unit is the
    byte; other ids go through ``exact`` (the contract's own code). The variant is GrowthBook's chooseVariation
    with its range ends computed once, in the same double arithmetic (``croupier.api.assignment.choose_variation``):
    variant i owns [ends[i-1], ends[i])."""
    names, ends, cumulative = [], [], 0.0
    for name, weight in weights:
        cumulative += weight / 100
        names.append(name)
        ends.append(cumulative)
    last = next(name for name, weight in reversed(weights) if weight > 0)
    count = len(names)
    prefix = salt.encode()

    def choose(n: float) -> str:
        index = bisect_right(ends, n)
        return names[index] if index < count else last

    if algorithm == HashAlgorithm.FNV1A32_V2:

        def assign(unit_id: str) -> str:
            if not unit_id.isascii():
                return exact(unit_id)
            return choose(fnv1a_32(str(fnv1a_32(prefix + unit_id.encode())).encode()) % BUCKETS / BUCKETS)

    else:

        def assign(unit_id: str) -> str:
            if not unit_id.isascii():
                return exact(unit_id)
            return choose(fnv1a_32(unit_id.encode() + prefix) % 1000 / 1000)

    return assign
