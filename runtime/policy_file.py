"""Load the DecisionPolicy a runtime serves: the manifest a user `kubectl apply`s, or the operator's ConfigMap copy."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from croupier.api.decisionpolicy import CONTEXTUAL_ALGORITHMS, KIND, DecisionPolicySpec
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.manifest_file import digest, parse_manifest, read_manifest


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


def parse_policy(document: object, source: str = "<policy>") -> ServedPolicy:
    manifest = parse_manifest(document, source, kind=KIND, spec_model=DecisionPolicySpec, error=PolicyConfigError)
    spec = manifest.spec
    # Unique arm names, a context for contextual algorithms, the floor...: the spec model's rules (and the CRD's).
    wire = spec.to_wire()
    shape = {k: wire.get(k) for k in ("arms", "algorithm", "context")}
    return ServedPolicy(
        name=manifest.name,
        namespace=manifest.namespace,
        generation=manifest.generation,
        spec=spec,
        version=manifest.version(wire),
        fingerprint=digest(shape),
        scoring_endpoint=_scoring_endpoint(manifest.document.get("scoring"), source),
    )


def load_policy(path: Path) -> ServedPolicy:
    return parse_policy(read_manifest(path, what="policy", error=PolicyConfigError), str(path))
