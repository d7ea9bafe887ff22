"""Experiment spec (+ stored status) -> desired children, checked against golden manifests.

After an intended change of templates or children.py, regenerate and review the diff:
    CROUPIER_UPDATE_GOLDEN=1 uv run pytest tests/unit/operator/experiment/test_children.py
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.operator.core.controller import InvalidObjectError
from croupier.operator.experiment.children import (
    CONFIG_HASH_ANNOTATION,
    MANIFEST_KEY,
    desired_children,
    endpoint,
)
from croupier.operator.experiment.model import parse_experiment, served_state
from croupier.operator.settings import OperatorSettings
from croupier.runtime.experiments.config import parse_experiment as parse_served

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
SOURCES = sorted((HERE / "experiments").glob("*.yaml"))
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("CROUPIER_UPDATE_GOLDEN", "") not in ("", "0")
SETTINGS = OperatorSettings(runtime_image="ghcr.io/croupier-dev/croupier-runtime:0.1.0")


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (the ConfigMap's experiment.yaml) as literal blocks, so golden diffs stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_GoldenDumper.add_representer(str, _str)


def _load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((HERE / "experiments" / name).read_text())
    return document


def _render(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in desired_children(parse_experiment(body), SETTINGS)}


def _served(body: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(_render(body)["ConfigMap"]["data"][MANIFEST_KEY])
    return document


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_children_match_the_golden_manifests(source: Path) -> None:
    children = desired_children(parse_experiment(yaml.safe_load(source.read_text())), SETTINGS)
    rendered = yaml.dump_all(children, Dumper=_GoldenDumper, sort_keys=False)
    golden = GOLDEN / source.name
    if UPDATE or not golden.exists():
        golden.write_text(rendered)
        if not UPDATE:
            pytest.fail(f"wrote the missing golden file {golden.name}; review and commit it")
    assert rendered == golden.read_text(), f"regenerate with CROUPIER_UPDATE_GOLDEN=1 and review {golden.name}"
    assert [c["kind"] for c in children] == [
        "ConfigMap",
        "PersistentVolumeClaim",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ]


def test_every_golden_file_has_a_source() -> None:
    assert {p.name for p in GOLDEN.glob("*.yaml")} == {p.name for p in SOURCES}


def test_children_are_owned_labelled_and_named_apart_from_policies() -> None:
    body = _load("ab-policy.yaml")
    for child in _render(body).values():
        meta = child["metadata"]
        assert meta["name"].startswith("checkout-offer-experiment")
        assert meta["namespace"] == "shop"
        assert meta["ownerReferences"][0]["kind"] == "Experiment"
        assert meta["ownerReferences"][0]["uid"] == body["metadata"]["uid"]
        assert meta["labels"]["croupier.dev/experiment"] == "checkout-offer"
        assert meta["labels"]["app.kubernetes.io/name"] == "croupier-experiment"
    assert endpoint("checkout-offer", "shop") == "http://checkout-offer-experiment.shop.svc:80"


def test_the_runtime_loads_what_the_configmap_holds() -> None:
    for source in SOURCES:
        body = yaml.safe_load(source.read_text())
        served = parse_served(_served(body), source.name)
        assert served.name == body["metadata"]["name"]
        assert served.generation == body["metadata"]["generation"]


def test_the_deployment_runs_the_experiment_runtime_restricted() -> None:
    deployment = _render(_load("ab-policy.yaml"))["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][:2] == ["--experiment", f"/etc/croupier/{MANIFEST_KEY}"]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["state"]["persistentVolumeClaim"]["claimName"] == "checkout-offer-experiment-state"
    env = {e["name"]: e.get("value") for e in container["env"]}
    # The policies' Services listen on port 80 (not the runtime's default template's 8080).
    assert env["CROUPIER_RUNTIME_POLICY_URL_TEMPLATE"] == "http://{name}.{namespace}.svc:80"


def _pod(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str | None]]:
    pod: dict[str, Any] = _render(body)["Deployment"]["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    return pod, volumes, env


def test_the_runtime_requires_tokens_from_its_auth_secret_unless_disabled() -> None:
    body = _load("ab-policy.yaml")
    pod, volumes, env = _pod(body)
    assert volumes["auth"]["secret"]["secretName"] == "checkout-offer-auth"
    assert env["CROUPIER_RUNTIME_AUTH_DIR"] == "/var/run/croupier/auth"
    mount = {"name": "auth", "mountPath": "/var/run/croupier/auth", "readOnly": True}
    assert mount in pod["containers"][0]["volumeMounts"]
    assert "subPath" not in str(pod["containers"][0]["volumeMounts"])
    custom = copy.deepcopy(body)
    custom["spec"]["auth"] = {"secretName": "shop-tokens", "tokens": [{"key": "ops", "scopes": ["admin", "decide"]}]}
    _, volumes, _ = _pod(custom)
    assert volumes["auth"]["secret"]["secretName"] == "shop-tokens"
    assert yaml.safe_load(_render(custom)["ConfigMap"]["data"][MANIFEST_KEY])["spec"]["auth"]["tokens"] == [
        {"key": "ops", "scopes": ["admin", "decide"]}
    ]
    disabled = copy.deepcopy(body)
    disabled["spec"]["auth"] = {"mode": "Disabled"}
    pod, volumes, env = _pod(disabled)
    assert "auth" not in volumes and "CROUPIER_RUNTIME_AUTH_DIR" not in env
    assert all(m["name"] != "auth" for m in pod["containers"][0]["volumeMounts"])


def test_each_policy_target_gets_its_decide_token_mounted() -> None:
    body = _load("ab-policy.yaml")
    _, volumes, env = _pod(body)
    sources = volumes["policy-tokens"]["projected"]["sources"]
    assert sources == [
        {
            "secret": {
                "name": "homepage-banner-auth",
                "items": [{"key": "decide", "path": "homepage-banner"}],
                "optional": True,
            }
        }
    ]
    assert env["CROUPIER_RUNTIME_POLICY_TOKEN_DIR"] == "/var/run/croupier/policy-tokens"
    # The Secret and the key are the policy's own (spec.auth.secretName, its first decide-scope key), as observed.
    custom = copy.deepcopy(body)
    custom["status"]["policyTokens"] = [
        {"policy": "homepage-banner", "secretName": "banner-tokens", "key": "frontend"},
        {"policy": "no-longer-targeted", "secretName": "other-auth", "key": "decide"},
    ]
    _, volumes, _ = _pod(custom)
    assert volumes["policy-tokens"]["projected"]["sources"] == [
        {
            "secret": {
                "name": "banner-tokens",
                "items": [{"key": "frontend", "path": "homepage-banner"}],
                "optional": True,
            }
        }
    ]
    # Nothing observed (no Secret, no label, auth disabled): nothing mounted, the runtime sends no token.
    unobserved = copy.deepcopy(body)
    del unobserved["status"]
    _, volumes, env = _pod(unobserved)
    assert "policy-tokens" not in volumes and "CROUPIER_RUNTIME_POLICY_TOKEN_DIR" not in env
    static = copy.deepcopy(body)
    for variant in static["spec"]["variants"]:
        variant.pop("decisionPolicyRef", None)
        variant["payload"] = {"v": variant["name"]}
    _, volumes, env = _pod(static)
    assert "policy-tokens" not in volumes and "CROUPIER_RUNTIME_POLICY_TOKEN_DIR" not in env


def test_a_guardrail_pause_is_served_without_touching_the_spec() -> None:
    body = _load("abn-guardrail-paused.yaml")
    assert body["spec"].get("state", "Running") == "Running"
    assert _served(body)["spec"]["state"] == "Paused"
    conclude = copy.deepcopy(body)
    conclude["status"]["guardrailAction"]["action"] = "Conclude"
    assert _served(conclude)["spec"]["state"] == "Concluded"
    cleared = copy.deepcopy(body)
    del cleared["status"]
    assert _served(cleared)["spec"]["state"] == "Running"


@pytest.mark.parametrize("reason", ["TargetNotFound", "TargetNotReady"])
def test_a_target_that_cannot_serve_makes_the_runtime_serve_control(reason: str) -> None:
    body = _load("ab-policy.yaml")
    body["status"]["conditions"] = [{"type": "Ready", "status": "False", "reason": reason, "message": "m"}]
    assert served_state(parse_experiment(body)) == "Paused"
    body["status"]["conditions"][0]["reason"] = "Running"
    assert served_state(parse_experiment(body)) == "Running"


def test_the_first_render_serves_control_until_the_targets_were_observed_ready() -> None:
    """Children are rendered before the first observation: with no status yet, a DecisionPolicy target the operator
    has not checked is never served; status.readyTargets (written by the observer) lets it through."""
    body = _load("ab-policy.yaml")
    del body["status"]
    assert _served(body)["spec"]["state"] == "Paused"
    body["status"] = {"readyTargets": ["DecisionPolicy/another-policy"]}
    assert _served(body)["spec"]["state"] == "Paused"
    body["status"] = {"readyTargets": ["DecisionPolicy/homepage-banner"]}
    assert _served(body)["spec"]["state"] == "Running"
    # A spec that names a new target is gated again until that target is observed.
    body["spec"]["variants"].append({"name": "ranker", "weight": 0, "modelDeploymentRef": {"name": "r", "version": 2}})
    assert _served(body)["spec"]["state"] == "Paused"
    body["status"]["readyTargets"].append("ModelDeployment/r/1")  # another version is not this target
    assert _served(body)["spec"]["state"] == "Paused"
    body["status"]["readyTargets"].append("ModelDeployment/r/2")
    assert _served(body)["spec"]["state"] == "Running"


def test_payload_only_experiments_need_no_observation_to_run() -> None:
    body = _load("ab-policy.yaml")
    del body["status"]
    body["spec"]["variants"][1] = {"name": "bandit", "weight": 50, "payload": {"offer": "discount"}}
    assert _served(body)["spec"]["state"] == "Running"


def test_a_model_deployment_target_is_served_once_the_operator_found_it_servable() -> None:
    """No spec-only verdict: the observer checks the ModelDeployment (routing mode VersionLabels, the version
    AVAILABLE) and a blocking Ready reason in status makes the runtime serve control, as for a DecisionPolicy."""
    body = _load("ab-policy.yaml")
    body["spec"]["variants"][1] = {"name": "ranker", "weight": 50, "modelDeploymentRef": {"name": "r", "version": 2}}
    body["status"] = {"readyTargets": ["ModelDeployment/r/2"]}
    assert served_state(parse_experiment(body)) == "Running"
    body["status"] = {"conditions": [{"type": "Ready", "status": "False", "reason": "TargetNotSupported"}]}
    assert served_state(parse_experiment(body)) == "Paused"


def test_the_docs_name_only_a_gatewayapi_model_deployment_as_unservable() -> None:
    """docs/experiment.md "What the runtime serves" follows served_state: a ModelDeployment target is Paused only
    through a blocking Ready reason (TargetNotSupported is GatewayAPI mode), not for being a ModelDeployment."""
    text = (Path(__file__).resolve().parents[4] / "docs" / "experiment.md").read_text()
    paragraph = " ".join(text.split("**What the runtime serves**", 1)[1].split("\n\n", 1)[0].split())
    assert "a variant targeting a ModelDeployment, or" not in paragraph
    assert "`TargetNotSupported`" in paragraph and "GatewayAPI" in paragraph and "VersionLabels" in paragraph


def test_the_stored_winner_reaches_the_runtime_and_a_stale_one_does_not() -> None:
    body = _load("concluded-winner.yaml")
    assert _served(body)["status"] == {"winner": "treatment"}
    assert parse_served(_served(body)).winner == "treatment"
    body["status"]["winner"] = "removed-variant"
    assert "status" not in _served(body)
    running = _load("concluded-winner.yaml")
    running["spec"]["state"] = "Running"
    assert "status" not in _served(running), "a winner found while Running must not roll the pods"


def test_a_served_change_rolls_the_pods_and_a_label_change_does_not() -> None:
    body = _load("abn-guardrail-paused.yaml")
    before = _render(body)["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    cleared = {k: v for k, v in body.items() if k != "status"}
    after = _render(cleared)["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert before != after
    relabelled = {**body, "metadata": {**body["metadata"], "labels": {"team": "growth"}}}
    again = _render(relabelled)["Deployment"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]
    assert again == before


@pytest.mark.parametrize(
    ("name", "reason"), [("Bad_Name", "InvalidName"), ("a" * 60, "InvalidName"), ("ok", "InvalidSpec")]
)
def test_bad_input_names_the_problem(name: str, reason: str) -> None:
    body = _load("ab-policy.yaml")
    body["metadata"]["name"] = name
    if reason == "InvalidSpec":
        body["spec"]["variants"][0]["weight"] = 40
    with pytest.raises(InvalidObjectError) as caught:
        parse_experiment(body)
    assert caught.value.reason == reason
    assert ("metadata.name" if reason == "InvalidName" else "spec") in caught.value.message
