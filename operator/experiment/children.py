"""spec (+ stored status) -> desired children: the ConfigMap, PersistentVolumeClaim, Deployment, Service and
PodDisruptionBudget and NetworkPolicy of an Experiment's runtime (`croupier-runtime --experiment`).

Pure: the same experiment and settings always render the same objects, byte for byte (golden tests hold us to it).
`spec.serving.replicas` runtime replicas (more than one only with Redis state, which they share). `spec.storage` says
where its state lives: Embedded, an SQLite store on a ReadWriteOnce claim of `persistence.size` and
`persistence.storageClassName` (sticky assignments, exposures, outcomes and the sufficient sums survive a restart; the
claim is why the rollout strategy is then Recreate) or on an emptyDir without persistence; Redis, with the URL passed
in the environment (from the Secret when `urlSecretRef` names one) and no claim.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from croupier.api.common import API_VERSION, GROUP
from croupier.api.decisionpolicy import StateBackend
from croupier.api.experiment import CHILD_SUFFIX, KIND, ExperimentState
from croupier.operator.core.matching import digest, with_manifest_hashes
from croupier.operator.core.network import network_ingress
from croupier.operator.core.observer import MANAGED_BY_LABEL
from croupier.operator.decisionpolicy.children import AUTH_MOUNT, CONFIG_MOUNT, RUNTIME_UID, SERVICE_PORT, STATE_MOUNT
from croupier.operator.experiment.model import ExperimentObject, served_state
from croupier.operator.settings import FIELD_MANAGER, OperatorSettings
from croupier.operator.templating import render_manifest

TEMPLATE_DIR = "experiment"
MANIFEST_KEY = "experiment.yaml"
APP_NAME = "croupier-experiment"
PART_OF = "croupier"
EXPERIMENT_LABEL = f"{GROUP}/experiment"
CONFIG_HASH_ANNOTATION = f"{GROUP}/config-hash"
# A DecisionPolicy's runtime, as its Service publishes it (port 80): the runtime formats {name} and {namespace}.
POLICY_URL_TEMPLATE = f"http://{{name}}.{{namespace}}.svc:{SERVICE_PORT}"
# The decide-scope tokens of the DecisionPolicy targets: one file per policy, named after it.
POLICY_TOKEN_MOUNT = "/var/run/croupier/policy-tokens"


@dataclass(frozen=True)
class ChildNames:
    configmap: str
    deployment: str
    service: str
    pdb: str
    pvc: str
    networkpolicy: str


def child_names(experiment_name: str) -> ChildNames:
    base = f"{experiment_name}{CHILD_SUFFIX}"
    return ChildNames(configmap=base, deployment=base, service=base, pdb=base, pvc=f"{base}-state", networkpolicy=base)


def selector_labels(experiment: ExperimentObject) -> dict[str, str]:
    """Immutable once a Deployment exists: never add to this."""
    return {"app.kubernetes.io/name": APP_NAME, "app.kubernetes.io/instance": experiment.name}


def labels(experiment: ExperimentObject, component: str) -> dict[str, str]:
    return {
        **selector_labels(experiment),
        "app.kubernetes.io/component": component,
        MANAGED_BY_LABEL: FIELD_MANAGER,
        "app.kubernetes.io/part-of": PART_OF,
        EXPERIMENT_LABEL: experiment.name,
    }


def served_document(experiment: ExperimentObject) -> dict[str, Any]:
    """The manifest the runtime loads (the operator/runtime contract): identity, generation, the spec with the state
    to serve, and the stored winner."""
    spec = experiment.spec.to_wire()
    spec["state"] = str(served_state(experiment))
    if experiment.served_on_conclude != experiment.spec.on_conclude:  # a guardrail concluded it: serve control
        spec["onConclude"] = str(experiment.served_on_conclude)
    # Where the state lives reaches the runtime through its environment and volumes, not the manifest: a storage
    # change rolls the pods only when those change.
    spec.pop("storage", None)
    spec.pop("networkPolicy", None)  # who may reach the pods is the NetworkPolicy's business, not the runtime's
    spec.pop("serving", None)  # replicas, image and resources are the Deployment's: a scale rolls no pod
    document: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": experiment.name,
            "namespace": experiment.namespace,
            "generation": experiment.generation,
            "uid": experiment.uid,
        },
        "spec": spec,
    }
    if experiment.winner is not None and spec["state"] == ExperimentState.CONCLUDED:
        # Only a Concluded runtime reads it: a winner found while Running does not roll the pods.
        document["status"] = {"winner": experiment.winner}
    return document


def served_yaml(experiment: ExperimentObject) -> str:
    return yaml.safe_dump(served_document(experiment), sort_keys=False, default_flow_style=False)


def uses_volume_claim(experiment: ExperimentObject) -> bool:
    storage = experiment.spec.storage
    return storage.backend == StateBackend.EMBEDDED and storage.persistence.enabled


def policy_token_sources(experiment: ExperimentObject) -> list[dict[str, Any]]:
    """A projected-volume source per DecisionPolicy target with a stored ``status.policyTokens`` entry: the first
    decide-scope key of the policy's auth Secret (both from the policy's spec.auth, as the operator observed it; the
    Secret only when it carries the runtime-auth label) as the file `<policy>`. A target without an entry (auth
    disabled, no such Secret, or a Secret without the label) gets no file, and the runtime sends no token. Optional,
    so a Secret deleted later does not keep the pod from starting. A Secret volume: the kubelet updates the file on
    rotation."""
    targets = {v.decision_policy_ref.name for v in experiment.spec.variants if v.decision_policy_ref}
    return [
        {"secret": {"name": secret, "items": [{"key": key, "path": policy}], "optional": True}}
        for policy, secret, key in sorted(experiment.policy_tokens)
        if policy in targets
    ]


def _runtime_env(experiment: ExperimentObject) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "CROUPIER_RUNTIME_HOST", "value": "0.0.0.0"},
        {"name": "CROUPIER_RUNTIME_LOG_FORMAT", "value": "json"},
        {"name": "CROUPIER_RUNTIME_POLICY_URL_TEMPLATE", "value": POLICY_URL_TEMPLATE},
    ]
    if experiment.spec.auth.enabled:
        env.append({"name": "CROUPIER_RUNTIME_AUTH_DIR", "value": AUTH_MOUNT})
    if policy_token_sources(experiment):
        env.append({"name": "CROUPIER_RUNTIME_POLICY_TOKEN_DIR", "value": POLICY_TOKEN_MOUNT})
    storage = experiment.spec.storage
    redis = storage.redis
    if storage.backend == StateBackend.REDIS and redis is not None:
        if redis.url_secret_ref is not None:
            ref = {"name": redis.url_secret_ref.name, "key": redis.url_secret_ref.key}
            env.append({"name": "CROUPIER_RUNTIME_REDIS_URL", "valueFrom": {"secretKeyRef": ref}})
        elif redis.url is not None:
            env.append({"name": "CROUPIER_RUNTIME_REDIS_URL", "value": redis.url})
        if redis.key_prefix is not None:
            env.append({"name": "CROUPIER_RUNTIME_REDIS_KEY_PREFIX", "value": redis.key_prefix})
    return env


def min_available(replicas: int) -> int | None:
    """The PodDisruptionBudget's minAvailable: one replica, None (maxUnavailable 1: never block a node drain); more,
    all but one stay up during voluntary disruptions."""
    return replicas - 1 if replicas > 1 else None


def template_context(experiment: ExperimentObject, settings: OperatorSettings) -> dict[str, Any]:
    names = child_names(experiment.name)
    config_text = served_yaml(experiment)
    persistence = experiment.spec.storage.persistence
    claim = uses_volume_claim(experiment)
    serving = experiment.spec.serving
    return {
        "namespace": experiment.namespace,
        "names": names,
        "owner": experiment.owner_reference,
        "labels": {c: labels(experiment, c) for c in ("config", "runtime", "state")},
        "selector": selector_labels(experiment),
        "manifest_key": MANIFEST_KEY,
        "manifest_yaml": config_text,
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
        "env": _runtime_env(experiment),
        "resources": serving.resources.to_wire() if serving.resources is not None else None,
        # A ReadWriteOnce claim cannot be mounted by the old and the new pod at once.
        "strategy": {"type": "Recreate"}
        if claim
        else {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
        "min_available": min_available(serving.replicas),
        "state_claim": names.pvc if claim else None,
        "storage_size": persistence.size,
        "storage_class_name": persistence.storage_class_name,
        "auth_secret": experiment.spec.auth.secret_for(experiment.name) if experiment.spec.auth.enabled else None,
        "auth_mount": AUTH_MOUNT,
        "policy_token_sources": policy_token_sources(experiment),
        "policy_token_mount": POLICY_TOKEN_MOUNT,
        "network_ingress": network_ingress(
            experiment.spec.network_policy, [settings.runtime_port], settings.pod_namespace
        ),
    }


def render(experiment: ExperimentObject, settings: OperatorSettings) -> Sequence[dict[str, Any]]:
    """Every child the experiment needs, in apply order (config and claim before the pods that mount them)."""
    context = template_context(experiment, settings)
    templates = ["configmap.yaml.j2", *(["pvc.yaml.j2"] if uses_volume_claim(experiment) else []), "deployment.yaml.j2"]
    templates += ["service.yaml.j2", "pdb.yaml.j2", "networkpolicy.yaml.j2"]
    return [render_manifest(settings.templates_dir, f"{TEMPLATE_DIR}/{name}", context) for name in templates]


def desired_children(experiment: ExperimentObject, settings: OperatorSettings) -> list[dict[str, Any]]:
    """What is applied: the rendered children, each stamped with its manifest hash (as the applier does)."""
    return with_manifest_hashes(render(experiment, settings))


def endpoint(experiment_name: str, namespace: str) -> str:
    return f"http://{child_names(experiment_name).service}.{namespace}.svc:{SERVICE_PORT}"
