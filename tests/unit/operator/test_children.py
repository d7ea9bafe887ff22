"""spec -> desired children, checked against golden manifests.

After an intended change of templates or children.py, regenerate and review the diff:
    CROUPIER_UPDATE_GOLDEN=1 uv run pytest tests/unit/operator/test_children.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.operator.decisionpolicy.children import (
    CONFIG_HASH_ANNOTATION,
    POLICY_KEY,
    desired_children,
    endpoint,
    policy_document,
)
from croupier.operator.decisionpolicy.model import parse_policy
from croupier.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
POLICIES = sorted((HERE / "policies").glob("*.yaml"))
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("CROUPIER_UPDATE_GOLDEN", "") not in ("", "0")
SETTINGS = OperatorSettings(runtime_image="ghcr.io/croupier-dev/croupier-runtime:0.1.0")


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's policy.yaml) as literal blocks, so golden diffs stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_GoldenDumper.add_representer(str, _str)


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(path.read_text())
    return document


def _render(body: dict[str, Any]) -> list[dict[str, Any]]:
    return desired_children(parse_policy(body), SETTINGS)


def _by_kind(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in children}


@pytest.mark.parametrize("source", POLICIES, ids=[p.stem for p in POLICIES])
def test_children_match_the_golden_manifests(source: Path) -> None:
    rendered = yaml.dump_all(_render(_load(source)), Dumper=_GoldenDumper, sort_keys=False)
    golden = GOLDEN / source.name
    if UPDATE or not golden.exists():
        golden.write_text(rendered)
        if not UPDATE:
            pytest.fail(f"wrote the missing golden file {golden.name}; review and commit it")
    assert rendered == golden.read_text(), f"regenerate with CROUPIER_UPDATE_GOLDEN=1 and review {golden.name}"
    assert list(yaml.safe_load_all(rendered)) == _render(_load(source))


def test_every_golden_file_has_a_source_policy() -> None:
    assert {p.name for p in GOLDEN.glob("*.yaml")} == {p.name for p in POLICIES}


@pytest.mark.parametrize("source", POLICIES, ids=[p.stem for p in POLICIES])
def test_every_child_is_owned_labelled_and_namespaced(source: Path) -> None:
    body = _load(source)
    for child in _render(body):
        meta = child["metadata"]
        assert meta["namespace"] == body["metadata"]["namespace"]
        assert meta["ownerReferences"] == [
            {
                "apiVersion": "croupier.dev/v1alpha1",
                "kind": "DecisionPolicy",
                "name": body["metadata"]["name"],
                "uid": body["metadata"]["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
        labels = meta["labels"]
        for key in ("name", "instance", "component", "managed-by", "part-of"):
            assert labels[f"app.kubernetes.io/{key}"]
        assert labels["croupier.dev/policy"] == body["metadata"]["name"]
        assert labels["app.kubernetes.io/managed-by"] == "croupier-operator"


def test_the_configmap_holds_the_full_policy_manifest() -> None:
    body = _load(HERE / "policies" / "redis-replicated.yaml")
    configmap = _by_kind(_render(body))["ConfigMap"]
    served = yaml.safe_load(configmap["data"][POLICY_KEY])
    assert served["apiVersion"] == "croupier.dev/v1alpha1"
    assert served["kind"] == "DecisionPolicy"
    assert served["metadata"] == {
        "name": "checkout-offers",
        "namespace": "payments",
        "generation": 7,
        "uid": body["metadata"]["uid"],
    }
    assert served["spec"]["algorithm"]["type"] == "ThompsonSampling"
    assert served == policy_document(parse_policy(body))


def test_the_runtime_parses_what_the_configmap_holds() -> None:
    parse_policy_file = pytest.importorskip("croupier.runtime.policy_file").parse_policy
    for source in POLICIES:
        configmap = _by_kind(_render(_load(source)))["ConfigMap"]
        served = parse_policy_file(yaml.safe_load(configmap["data"][POLICY_KEY]), source.name)
        assert served.generation == _load(source)["metadata"]["generation"]


def test_a_spec_change_changes_the_config_hash_and_a_label_change_does_not() -> None:
    body = _load(HERE / "policies" / "minimal.yaml")
    before = _by_kind(_render(body))["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    changed = {**body, "metadata": {**body["metadata"], "generation": 2}, "spec": {**body["spec"], "paused": True}}
    after = _by_kind(_render(changed))["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert before[CONFIG_HASH_ANNOTATION] != after[CONFIG_HASH_ANNOTATION]
    relabelled = {**body, "metadata": {**body["metadata"], "labels": {"team": "growth"}}}
    again = _by_kind(_render(relabelled))["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert again[CONFIG_HASH_ANNOTATION] == before[CONFIG_HASH_ANNOTATION]


def test_rendering_is_deterministic() -> None:
    for source in POLICIES:
        assert _render(_load(source)) == _render(_load(source))


def test_embedded_state_with_persistence_gets_a_claim_and_recreate() -> None:
    children = _by_kind(_render(_load(HERE / "policies" / "persistent-storageclass.yaml")))
    claim = children["PersistentVolumeClaim"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "5Gi"
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    pod = children["Deployment"]["spec"]["template"]["spec"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "onboarding-state"}} in pod["volumes"]
    assert children["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("name", ["contextual-ephemeral.yaml", "redis-url.yaml", "redis-replicated.yaml"])
def test_other_states_use_an_empty_dir_and_rolling_updates(name: str) -> None:
    children = _by_kind(_render(_load(HERE / "policies" / name)))
    assert "PersistentVolumeClaim" not in children
    pod = children["Deployment"]["spec"]["template"]["spec"]
    assert {"name": "state", "emptyDir": {}} in pod["volumes"]
    assert children["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"


def test_the_runtime_pod_is_locked_down() -> None:
    pod = _by_kind(_render(_load(HERE / "policies" / "minimal.yaml")))["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["args"] == [
        "--policy",
        "/etc/croupier/policy.yaml",
        "--port",
        "8080",
        "--state-dir",
        "/var/lib/croupier",
    ]


def test_redis_url_comes_from_the_secret_or_the_spec() -> None:
    def redis_env(name: str) -> dict[str, Any]:
        deployment = _by_kind(_render(_load(HERE / "policies" / name)))["Deployment"]
        env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        (entry,) = [e for e in env if e["name"] == "CROUPIER_RUNTIME_REDIS_URL"]
        return entry

    assert redis_env("redis-replicated.yaml") == {
        "name": "CROUPIER_RUNTIME_REDIS_URL",
        "valueFrom": {"secretKeyRef": {"name": "redis-credentials", "key": "url"}},
    }
    assert redis_env("redis-url.yaml")["value"] == "redis://redis.games.svc:6379/0"


def test_disruption_budget_follows_replicas() -> None:
    single = _by_kind(_render(_load(HERE / "policies" / "minimal.yaml")))["PodDisruptionBudget"]["spec"]
    assert single["maxUnavailable"] == 1 and "minAvailable" not in single
    three = _by_kind(_render(_load(HERE / "policies" / "redis-replicated.yaml")))["PodDisruptionBudget"]["spec"]
    assert three["minAvailable"] == 2 and "maxUnavailable" not in three


def test_service_and_endpoint() -> None:
    service = _by_kind(_render(_load(HERE / "policies" / "minimal.yaml")))["Service"]
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
    assert endpoint("banner", "shop") == "http://banner.shop.svc:80"


def test_image_defaults_to_the_operator_setting_and_spec_overrides_it() -> None:
    def image(name: str) -> str:
        deployment = _by_kind(_render(_load(HERE / "policies" / name)))["Deployment"]
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image("minimal.yaml") == SETTINGS.runtime_image
    assert image("redis-replicated.yaml") == "registry.example.com/croupier-runtime:dev"


def test_hostile_strings_cannot_change_the_document_structure() -> None:
    body = _load(HERE / "policies" / "redis-replicated.yaml")
    body["spec"]["serving"]["image"] = 'evil"\n  injected: true\n#'
    deployment = _by_kind(_render(body))["Deployment"]
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == 'evil"\n  injected: true\n#'
    assert "injected" not in deployment["spec"]
