"""Read the manifest a runtime serves (a DecisionPolicy, an Experiment): the file, the header every Kind shares (kind,
apiVersion, metadata) and the spec through the Kind's pydantic model. Each Kind keeps its own served model and error
class; the rules and the wording of what is wrong are written here once."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import orjson
import yaml
from pydantic import BaseModel, ValidationError

from croupier.api.common import API_VERSION
from croupier.runtime.errors import PolicyConfigError

SpecT = TypeVar("SpecT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Manifest(Generic[SpecT]):
    """A manifest whose header is checked and whose spec its model accepted; `document` is the whole mapping, for the
    blocks a Kind reads beside the spec (a policy's `scoring`, an experiment's `status.winner`)."""

    document: dict[str, Any]
    name: str
    namespace: str | None
    generation: int | None
    spec: SpecT

    def version(self, wire: object) -> str:
        """The served version: `g<generation>-<hash of the spec's wire form>`."""
        return f"g{self.generation or 0}-{digest(wire)}"


def digest(value: object) -> str:
    """A short, stable hash of a JSON-able value (keys sorted): versions and fingerprints."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def _article(kind: str) -> str:
    return "an" if kind[:1] in "AEIOU" else "a"


def parse_manifest(
    document: object,
    source: str,
    *,
    kind: str,
    spec_model: type[SpecT],
    error: type[PolicyConfigError],
) -> Manifest[SpecT]:
    """Check `document` is a `kind` manifest of this API version with a name, and validate its spec; every failure is
    an `error` naming `source` and the offending field."""
    if not isinstance(document, dict):
        raise error(f"{source}: expected {_article(kind)} {kind} manifest (a YAML mapping)")
    if document.get("kind") != kind:
        raise error(f"{source}: kind is {document.get('kind')!r}, expected {kind!r}")
    if document.get("apiVersion") != API_VERSION:
        raise error(f"{source}: apiVersion is {document.get('apiVersion')!r}, expected {API_VERSION!r}")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise error(f"{source}: metadata.name is required")
    generation = metadata.get("generation")
    if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool)):
        raise error(f"{source}: metadata.generation must be an integer")
    try:
        spec = spec_model.model_validate(document.get("spec"))
    except ValidationError as exc:
        raise error(f"{source}: invalid spec: {exc}") from exc
    return Manifest(document, metadata["name"], metadata.get("namespace"), generation, spec)


def read_manifest(path: Path, *, what: str, error: type[PolicyConfigError]) -> object:
    """The YAML document in `path` (`what` names it in the message: "policy", "experiment")."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(f"cannot read the {what} file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{path}: not valid YAML: {exc}") from exc
