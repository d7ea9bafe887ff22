"""spec -> desired children (static and, with every version AVAILABLE, the served ones), against golden manifests.

After an intended change of templates or children.py, regenerate and review the diff:
    CROUPIER_UPDATE_GOLDEN=1 uv run pytest tests/unit/operator/modeldeployment/test_children.py
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from croupier.api.modeldeployment import ModelVersionState
from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.modeldeployment.children import (
    CONFIG_HASH_ANNOTATION,
    MODELS_KEY,
    ROUTING_KEY,
    render,
    render_served,
    server_roles,
)
from croupier.operator.modeldeployment.model import ModelDeploymentObject, parse_model_deployment
from croupier.operator.modeldeployment.plan import ServerView, plan, role_labels
from croupier.operator.settings import OperatorSettings
from croupier.runtime.modelrouter.table_file import parse_table
from croupier.runtime.tfserving.client import VersionStatus

pytestmark = pytest.mark.unit

HERE = Path(__file__).resolve().parent
SOURCES = sorted((HERE / "deployments").glob("*.yaml"))
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("CROUPIER_UPDATE_GOLDEN", "") not in ("", "0")
SETTINGS = OperatorSettings()


class _GoldenDumper(yaml.SafeDumper):
    """Multi-line strings (TF Serving's config files) as literal blocks, so golden diffs stay readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)


_GoldenDumper.add_representer(str, _str)


def load(path: Path) -> ModelDeploymentObject:
    return parse_model_deployment(yaml.safe_load(path.read_text()))


def all_available(md: ModelDeploymentObject) -> dict[str, ServerView]:
    views = {}
    for role in server_roles(md):
        versions = sorted(set(role_labels(md, role).values()))
        views[role] = ServerView(role, tuple(VersionStatus(v, ModelVersionState.AVAILABLE) for v in versions))
    return views


def children(md: ModelDeploymentObject) -> list[dict[str, Any]]:
    served = render_served(md, plan(md, all_available(md)), SETTINGS)
    return with_manifest_hashes([*render(md, SETTINGS), *served])


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_children_match_the_golden_manifests(source: Path) -> None:
    rendered = yaml.dump_all(children(load(source)), Dumper=_GoldenDumper, sort_keys=False)
    golden = GOLDEN / source.name
    if UPDATE or not golden.exists():
        golden.write_text(rendered)
        if not UPDATE:
            pytest.fail(f"wrote the missing golden file {golden.name}; review and commit it")
    assert rendered == golden.read_text(), f"regenerate with CROUPIER_UPDATE_GOLDEN=1 and review {golden.name}"


def test_every_golden_file_has_a_source() -> None:
    assert {p.name for p in GOLDEN.glob("*.yaml")} == {p.name for p in SOURCES}


@pytest.mark.parametrize("source", SOURCES, ids=[p.stem for p in SOURCES])
def test_every_child_is_owned_labelled_namespaced_and_restricted(source: Path) -> None:
    md = load(source)
    for child in children(md):
        meta = child["metadata"]
        assert meta["namespace"] == md.namespace
        assert meta["ownerReferences"][0]["uid"] == md.uid and meta["ownerReferences"][0]["controller"] is True
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "croupier-operator"
        assert meta["labels"]["croupier.dev/modeldeployment"] == md.name
        if child["kind"] == "Deployment":
            pod = child["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            container = pod["containers"][0]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
            router = meta["name"] == f"{md.name}-router"
            assert container["image"] == (SETTINGS.runtime_image if router else md.spec.serving.image)


def _deployments(md: ModelDeploymentObject) -> dict[str, dict[str, Any]]:
    return {c["metadata"]["name"]: c for c in render(md, SETTINGS) if c["kind"] == "Deployment"}


def test_flags_are_tf_servings_and_batching_adds_its_file() -> None:
    md = load(HERE / "deployments" / "versionlabels-steps-batching.yaml")
    args = _deployments(md)["ranker"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == [
        "--port=8500",
        "--rest_api_port=8501",
        "--model_config_file=/etc/tfserving/models.config",
        f"--model_config_file_poll_wait_seconds={SETTINGS.model_config_poll_seconds}",
        "--monitoring_config_file=/etc/tfserving/monitoring.config",
        "--enable_batching=true",
        "--batching_parameters_file=/etc/tfserving/batching.config",
    ]
    without = md.spec.model_copy(update={"serving": md.spec.serving.model_copy(update={"batching": None})})
    plain = ModelDeploymentObject(md.name, md.namespace, md.uid, md.generation, without)
    plain_args = _deployments(plain)["ranker"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not any("batching" in a for a in plain_args)


def test_weights_and_labels_never_change_the_pod_template() -> None:
    """TF Serving polls its model config: a label, version or weight change must not roll the pods."""
    md = load(HERE / "deployments" / "versionlabels-steps-batching.yaml")
    before = _deployments(md)
    assert md.spec.canary is not None
    moved = md.spec.model_copy(
        update={"canary": md.spec.canary.model_copy(update={"version": 3, "steps": None, "weight": 40})}
    )
    after = _deployments(ModelDeploymentObject(md.name, md.namespace, md.uid, md.generation, moved))
    assert after == before
    first = render_served(md, plan(md, {}), SETTINGS)
    second = render_served(md, plan(md, all_available(md)), SETTINGS)
    assert first[0]["data"][MODELS_KEY] != second[0]["data"][MODELS_KEY]
    assert before["ranker"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION]


def test_a_batching_change_rolls_the_pods_through_the_config_hash() -> None:
    md = load(HERE / "deployments" / "versionlabels-steps-batching.yaml")
    assert md.spec.serving.batching is not None
    serving = md.spec.serving.model_copy(
        update={"batching": md.spec.serving.batching.model_copy(update={"batch_timeout_micros": 5000})}
    )
    changed = ModelDeploymentObject(
        md.name, md.namespace, md.uid, md.generation, md.spec.model_copy(update={"serving": serving})
    )

    def annotation(obj: ModelDeploymentObject) -> str:
        return str(_deployments(obj)["ranker"]["spec"]["template"]["metadata"]["annotations"][CONFIG_HASH_ANNOTATION])

    assert annotation(changed) != annotation(md)


def test_gateway_mode_without_canary_scales_the_canary_server_to_zero_and_routes_nothing_to_it() -> None:
    md = load(HERE / "deployments" / "gateway-grpc-s3.yaml")
    deployments = _deployments(md)
    assert deployments["fraud-stable"]["spec"]["replicas"] == 3
    assert deployments["fraud-canary"]["spec"]["replicas"] == 0
    route = next(c for c in render_served(md, plan(md, all_available(md)), SETTINGS) if c["kind"] == "GRPCRoute")
    assert [(b["name"], b["port"], b["weight"]) for b in route["spec"]["rules"][0]["backendRefs"]] == [
        ("fraud-stable", 8500, 100),
        ("fraud-canary", 8500, 0),
    ]
    container = deployments["fraud-stable"]["spec"]["template"]["spec"]["containers"][0]
    assert container["envFrom"] == [{"secretRef": {"name": "s3-models"}}]


def _routing(md: ModelDeploymentObject, resolved: dict[str, int] | None) -> str:
    served = render_served(md, plan(md, all_available(md)), SETTINGS, resolved)
    (table,) = [c for c in served if c["metadata"]["name"] == f"{md.name}-routing"]
    text: str = table["data"][ROUTING_KEY]
    return text


def test_version_labels_put_the_router_behind_the_model_service_and_tf_serving_behind_its_own() -> None:
    md = load(HERE / "deployments" / "versionlabels-gcs.yaml")
    services = {c["metadata"]["name"]: c for c in render(md, SETTINGS) if c["kind"] == "Service"}
    assert services[md.name]["spec"]["selector"]["croupier.dev/server"] == "router"
    assert services[f"{md.name}-tfserving"]["spec"]["selector"]["croupier.dev/server"] == "main"
    router = _deployments(md)[f"{md.name}-router"]["spec"]["template"]["spec"]
    # The compiled router, which the runtime image builds and installs under that name.
    assert router["containers"][0]["command"] == ["croupier-modelrouter"]
    dockerfile = (Path(__file__).resolve().parents[4] / "images" / "runtime.Dockerfile").read_text()
    assert "COPY --from=gorouter /out/croupier-modelrouter /usr/local/bin/croupier-modelrouter" in dockerfile
    args = router["containers"][0]["args"]
    assert f"--upstream-grpc={md.name}-tfserving.{md.namespace}.svc:8500" in args
    assert "--routing-file=/etc/croupier/routing/routing.yaml" in args
    # A directory mount (never subPath: the kubelet does not refresh those), of the ConfigMap render_served writes.
    assert router["containers"][0]["volumeMounts"] == [
        {"name": "routing", "mountPath": "/etc/croupier/routing", "readOnly": True}
    ]
    assert router["volumes"] == [{"name": "routing", "configMap": {"name": f"{md.name}-routing"}}]


def test_the_routing_table_is_the_routers_own_format_and_routes_only_labels_tf_serving_resolves() -> None:
    md = load(HERE / "deployments" / "versionlabels-steps-batching.yaml")
    assert md.spec.canary is not None
    stable, canary = md.spec.stable.version, md.spec.canary.version
    full = parse_table(_routing(md, None), "test")
    route = full.models[md.spec.model.name]
    assert (route.stable, route.canary, route.canary_weight) == (stable, canary, md.spec.canary.weight_at(0))
    assert full.salt == f"{md.namespace}/{md.name}"
    # TF Serving has not applied the canary label yet: no canary (and no weight) in the router's table.
    waiting = parse_table(_routing(md, {"stable": stable}), "test").models[md.spec.model.name]
    assert (waiting.stable, waiting.canary, waiting.canary_weight) == (stable, None, 0)
    # Nothing resolved yet: the router passes requests through unchanged (no model in its table).
    assert parse_table(_routing(md, {}), "test").models == {}
    # A label TF Serving resolves to another version than planned is not routed either.
    stale = parse_table(_routing(md, {"stable": stable, "canary": canary + 7}), "test").models[md.spec.model.name]
    assert stale.canary is None


def test_a_routing_table_change_never_touches_a_pod_template() -> None:
    md = load(HERE / "deployments" / "versionlabels-steps-batching.yaml")
    before = [c for c in render(md, SETTINGS) if c["kind"] == "Deployment"]
    assert _routing(md, None) != _routing(md, {})
    assert [c for c in render(md, SETTINGS) if c["kind"] == "Deployment"] == before
