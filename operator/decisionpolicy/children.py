"""spec -> desired children: the ConfigMap, Deployment, Service, PodDisruptionBudget, NetworkPolicy (and PVC) of a
DecisionPolicy.

Pure: the same policy and settings always render the same objects, byte for byte (golden tests hold us to it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from croupier.api.common import API_VERSION, GROUP
from croupier.api.decisionpolicy import KIND, StateBackend
from croupier.operator.core.matching import digest, with_manifest_hashes
from croupier.operator.core.network import network_ingress, same_namespace_pods
from croupier.operator.core.observer import MANAGED_BY_LABEL
from croupier.operator.decisionpolicy.model import PolicyObject
from croupier.operator.settings import FIELD_MANAGER, OperatorSettings
from croupier.operator.templating import render_manifest

TEMPLATE_DIR = "decisionpolicy"
POLICY_KEY = "policy.yaml"
CONFIG_MOUNT = "/etc/croupier"
STATE_MOUNT = "/var/lib/croupier"
AUTH_MOUNT = "/var/run/croupier/auth"
SERVICE_PORT = 80
# The Experiment runtimes' pods (operator/experiment/children.py APP_NAME): the ones of the policy's namespace call it
# (an Experiment's variants target DecisionPolicies of their own namespace), so its NetworkPolicy always admits them.
EXPERIMENT_RUNTIME_LABELS = {"app.kubernetes.io/name": "croupier-experiment"}
RUNTIME_UID = 65532
APP_NAME = "croupier-runtime"
PART_OF = "croupier"
POLICY_LABEL = f"{GROUP}/policy"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"


@dataclass(frozen=True)
class ChildNames:
    configmap: str
    deployment: str
    service: str
    pdb: str
    pvc: str
    networkpolicy: str


def child_names(policy_name: str) -> ChildNames:
    return ChildNames(
        configmap=f"{policy_name}-policy",
        deployment=policy_name,
        service=policy_name,
        pdb=policy_name,
        pvc=f"{policy_name}-state",
        networkpolicy=policy_name,
    )


def selector_labels(policy: PolicyObject) -> dict[str, str]:
    """Immutable once a Deployment exists: never add to this."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": policy.name}


def labels(policy: PolicyObject, component: str) -> dict[str, str]:
    return {
        **selector_labels(policy),
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL: FIELD_MANAGER,
        "app.kubernetes.io/part-of": PART_OF,
        POLICY_LABEL: policy.name,
    }


def policy_document(policy: PolicyObject) -> dict[str, Any]:
    """The full manifest the runtime loads (the operator/runtime contract): identity, generation and spec; for a
    model-scored policy whose ModelDeployment was found, a top-level `scoring` block with the model's gRPC address and
    name (`croupier.runtime.policy_file.ScoringEndpoint`)."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": policy.name,
            "namespace": policy.namespace,
            "generation": policy.generation,
            "uid": policy.uid,
        },
        "spec": policy.spec.to_wire(),
    }
    if policy.spec.scoring is not None and policy.scoring_target is not None:
        address, model = policy.scoring_target
        document["scoring"] = {"address": address, "modelName": model}
    return document


def policy_yaml(policy: PolicyObject) -> str:
    return yaml.safe_dump(policy_document(policy), sort_keys=False, default_flow_style=False)


def uses_volume_claim(policy: PolicyObject) -> bool:
    state = policy.spec.state
    return state.backend == StateBackend.EMBEDDED and state.persistence.enabled


def _runtime_env(policy: PolicyObject) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "CROUPIER_RUNTIME_HOST", "value": "0.0.0.0"},
        {"name": "CROUPIER_RUNTIME_LOG_FORMAT", "value": "json"},
    ]
    if policy.spec.auth.enabled:
        env.append({"name": "CROUPIER_RUNTIME_AUTH_DIR", "value": AUTH_MOUNT})
    redis = policy.spec.state.redis
    if policy.spec.state.backend == StateBackend.REDIS and redis is not None:
        if redis.url_secret_ref is not None:
            ref = {"name": redis.url_secret_ref.name, "key": redis.url_secret_ref.key}
            env.append({"name": "CROUPIER_RUNTIME_REDIS_URL", "valueFrom": {"secretKeyRef": ref}})
        elif redis.url is not None:
            env.append({"name": "CROUPIER_RUNTIME_REDIS_URL", "value": redis.url})
    return env


def _strategy(policy: PolicyObject) -> dict[str, Any]:
    if uses_volume_claim(policy):
        # A ReadWriteOnce claim cannot be mounted by the old and the new pod at once.
        return {"type": "Recreate"}
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}


def _min_available(replicas: int) -> int | None:
    # One replica: maxUnavailable 1 (never block a node drain). More: all but one stay up during voluntary disruptions.
    return replicas - 1 if replicas > 1 else None


def template_context(policy: PolicyObject, settings: OperatorSettings) -> dict[str, Any]:
    names = child_names(policy.name)
    config_text = policy_yaml(policy)
    serving = policy.spec.serving
    persistence = policy.spec.state.persistence
    return {
        "namespace": policy.namespace,
        "names": names,
        "owner": policy.owner_reference,
        "labels": {c: labels(policy, c) for c in ("config", "runtime", "state")},
        "selector": selector_labels(policy),
        "policy_key": POLICY_KEY,
        "policy_yaml": config_text,
        "config_hash": digest(config_text),
        "config_hash_annotation": CONFIG_HASH_ANNOTATION,
        "config_mount": CONFIG_MOUNT,
        "state_mount": STATE_MOUNT,
        "replicas": serving.replicas,
        "image": serving.image or settings.runtime_image,
        "image_pull_policy": settings.runtime_image_pull_policy,
        "port": settings.runtime_port,
        "service_port": SERVICE_PORT,
        "uid": RUNTIME_UID,
        "env": _runtime_env(policy),
        "resources": serving.resources.to_wire() if serving.resources is not None else None,
        "strategy": _strategy(policy),
        "min_available": _min_available(serving.replicas),
        "state_claim": names.pvc if uses_volume_claim(policy) else None,
        "storage_size": persistence.size,
        "storage_class_name": persistence.storage_class_name,
        "auth_secret": policy.spec.auth.secret_for(policy.name) if policy.spec.auth.enabled else None,
        "auth_mount": AUTH_MOUNT,
        "network_ingress": network_ingress(
            policy.spec.network_policy,
            [settings.runtime_port],
            settings.pod_namespace,
            also=[same_namespace_pods(EXPERIMENT_RUNTIME_LABELS)],
        ),
    }


def render(policy: PolicyObject, settings: OperatorSettings) -> Sequence[dict[str, Any]]:
    """Every child the policy needs, in apply order (config before the pods that mount it)."""
    context = template_context(policy, settings)
    templates = ["configmap.yaml.j2"]
    if uses_volume_claim(policy):
        templates.append("pvc.yaml.j2")
    templates += ["deployment.yaml.j2", "service.yaml.j2", "pdb.yaml.j2", "networkpolicy.yaml.j2"]
    return [render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/{name}", context) for name in templates]


def desired_children(policy: PolicyObject, settings: OperatorSettings) -> list[dict[str, Any]]:
    """What is applied: the rendered children, each stamped with its manifest hash (as the applier does)."""
    return with_manifest_hashes(render(policy, settings))


def endpoint(policy_name: str, namespace: str) -> str:
    return f"http://{child_names(policy_name).service}.{namespace}.svc:{SERVICE_PORT}"
