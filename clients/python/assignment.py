"""Local experiment assignment: the variant a unit gets, computed in process with the published hash contract
(``croupier.api.assignment``, bit-exact with ``docs/api/assignment-vectors.json`` and the runtime).

A service that assigns locally reports what it showed with ``Client.expose(unit, variant, assigner.epoch)`` (or
``assigner.exposure(unit)``). A unit given by its attributes alone (no unit id) is
``attributes[spec.assignment.unitKey]``, as the runtime resolves it: ``assigner.unit(attributes=...)``,
``assigner.exposure(attributes=...)``. The local assigner knows the current split only: a sticky unit that the runtime
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
    epoch exactly as the runtime derives them), or from the hash parameters alone (``epoch`` then unknown, and
    ``unit_key`` only if given)."""

    __slots__ = ("assign", "epoch", "experiment", "fixed", "unit_key", "variants")

    def __init__(
        self,
        salt: str,
        weights: Sequence[tuple[str, int]],
        algorithm: str = HashAlgorithm.SHA256_V1,
        *,
        epoch: str | None = None,
        experiment: str | None = None,
        fixed: str | None = None,
        unit_key: str | None = None,
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
        self.unit_key = unit_key
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
            unit_key=spec.assignment.unit_key,
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

    def unit(self, unit_id: str | None = None, *, attributes: Mapping[str, object] | None = None) -> str:
        """The unit as the runtime resolves an assign request: ``unit_id`` when given, else
        ``attributes[unit_key]`` (spec.assignment.unitKey), which must be a non-empty string."""
        if unit_id is not None:
            return unit_id
        if self.unit_key is None:
            raise InvalidArgument(
                "unit_id is required: this assigner knows no unitKey (build it from_manifest)", "unitId"
            )
        value = (attributes or {}).get(self.unit_key)
        if value is None:
            raise InvalidArgument(
                f"unit_id or attributes.{self.unit_key} (spec.assignment.unitKey) is required", "unitId"
            )
        if not isinstance(value, str) or not value:
            got = type(value).__name__ if not isinstance(value, str) else "an empty string"
            raise InvalidArgument(
                f"attributes.{self.unit_key} must be a non-empty string, got {got}", f"attributes.{self.unit_key}"
            )
        return value

    def exposure(self, unit_id: str | None = None, *, attributes: Mapping[str, object] | None = None) -> Exposure:
        """The exposure to report after serving the unit its variant (with this configuration's epoch); the unit is
        ``unit_id`` or, without it, ``attributes[unit_key]`` (``unit``). The exposure always names the unit."""
        unit = self.unit(unit_id, attributes=attributes)
        return Exposure(unit_id=unit, variant=self.assign(unit), epoch=self.epoch)


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
