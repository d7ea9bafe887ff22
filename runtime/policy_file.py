"""Load the DecisionPolicy a runtime serves: the manifest a user `kubectl apply`s, or the operator's ConfigMap copy."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import orjson
import yaml
from pydantic import ValidationError

from croupier.api.common import API_VERSION
from croupier.api.decisionpolicy import CONTEXTUAL_ALGORITHMS, KIND, DecisionPolicySpec
from croupier.runtime.errors import PolicyConfigError


@dataclass(frozen=True, slots=True)
class ScoringEndpoint:
    """Where a model-scored policy's model answers: the document's top-level `scoring` block (`address`, the gRPC
    host:port of TF Serving, and `modelName`), which the operator renders from the ModelDeployment."""

    address: str
    model_name: str


def _scoring_endpoint(block: object, source: str) -> ScoringEndpoint | None:
    if block is None:
        return None
    if not isinstance(block, dict) or set(block) - {"address", "modelName"}:
        raise PolicyConfigError(f"{source}: scoring must be a mapping with address and modelName")
    address, model = block.get("address"), block.get("modelName")
    if not isinstance(address, str) or not address or not isinstance(model, str) or not model:
        raise PolicyConfigError(
            f"{source}: scoring.address (host:port) and scoring.modelName must be non-empty strings"
        )
    return ScoringEndpoint(address, model)


@dataclass(frozen=True, slots=True)
class ServedPolicy:
    """A validated DecisionPolicy with the identity the runtime reports."""

    name: str
    namespace: str | None
    generation: int | None
    spec: DecisionPolicySpec
    version: str
    """policyVersion: `g<generation>-<hash of the spec>`; logged with every decision."""
    fingerprint: str
    """Hash of what shapes the learned state (arms, priors, algorithm, context); a change invalidates checkpoints."""
    scoring_endpoint: ScoringEndpoint | None = None
    """The model of a model-scored policy (None: not known yet, every decision falls back)."""

    @property
    def contextual(self) -> bool:
        return self.spec.algorithm.type in CONTEXTUAL_ALGORITHMS

    @property
    def feature_names(self) -> list[str] | None:
        return list(self.spec.context.features) if self.spec.context and self.spec.context.features else None

    @property
    def context_size(self) -> int:
        return self.spec.context.size if self.spec.context is not None else 0


def _digest(value: object) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:12]


def parse_policy(document: object, source: str = "<policy>") -> ServedPolicy:
    if not isinstance(document, dict):
        raise PolicyConfigError(f"{source}: expected a DecisionPolicy manifest (a YAML mapping)")
    if document.get("kind") != KIND:
        raise PolicyConfigError(f"{source}: kind is {document.get('kind')!r}, expected {KIND!r}")
    if document.get("apiVersion") != API_VERSION:
        raise PolicyConfigError(f"{source}: apiVersion is {document.get('apiVersion')!r}, expected {API_VERSION!r}")
    metadata = document.get("metadata") or {}
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise PolicyConfigError(f"{source}: metadata.name is required")
    generation = metadata.get("generation")
    if generation is not None and (not isinstance(generation, int) or isinstance(generation, bool)):
        raise PolicyConfigError(f"{source}: metadata.generation must be an integer")
    try:
        spec = DecisionPolicySpec.model_validate(document.get("spec"))
    except ValidationError as exc:
        raise PolicyConfigError(f"{source}: invalid spec: {exc}") from exc
    # Unique arm names, a context for contextual algorithms, the floor...: the spec model's rules (and the CRD's).
    wire = spec.to_wire()
    shape = {k: wire.get(k) for k in ("arms", "algorithm", "context")}
    return ServedPolicy(
        name=metadata["name"],
        namespace=metadata.get("namespace"),
        generation=generation,
        spec=spec,
        version=f"g{generation or 0}-{_digest(wire)}",
        fingerprint=_digest(shape),
        scoring_endpoint=_scoring_endpoint(document.get("scoring"), source),
    )


def load_policy(path: Path) -> ServedPolicy:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise PolicyConfigError(f"cannot read the policy file {path}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise PolicyConfigError(f"{path}: not valid YAML: {exc}") from exc
    return parse_policy(document, str(path))
