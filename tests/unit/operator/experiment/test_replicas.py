"""spec.serving of an Experiment: the runtime Deployment's replicas, image and resources, and a PodDisruptionBudget
that fits one pod (never blocks a drain) or N pods (all but one stay up). A scale changes no served config."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.api.experiment import ExperimentSpec
from croupier.operator.experiment.children import CONFIG_HASH_ANNOTATION, MANIFEST_KEY, desired_children
from croupier.operator.experiment.model import parse_experiment
from croupier.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parent / "experiments" / "ab-policy.yaml"
SETTINGS = OperatorSettings(runtime_image="ghcr.io/croupier-dev/croupier-runtime:0.1.0")
REDIS = {"backend": "Redis", "redis": {"url": "redis://redis.shop.svc:6379/0"}}


def _body(serving: dict[str, Any] | None, storage: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(SOURCE.read_text()))
    if serving is not None:
        body["spec"]["serving"] = serving
    if storage is not None:
        body["spec"]["storage"] = storage
    return body


def _children(serving: dict[str, Any] | None, storage: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    return {c["kind"]: c for c in desired_children(parse_experiment(_body(serving, storage)), SETTINGS)}


def test_the_default_is_one_replica_whose_budget_never_blocks_a_drain() -> None:
    children = _children(None)
    assert children["Deployment"]["spec"]["replicas"] == 1
    assert children["PodDisruptionBudget"]["spec"] == {
        "selector": children["Deployment"]["spec"]["selector"],
        "maxUnavailable": 1,
    }


@pytest.mark.parametrize("replicas", [2, 3, 7])
def test_n_replicas_on_redis_keep_all_but_one_up(replicas: int) -> None:
    children = _children({"replicas": replicas}, REDIS)
    assert children["Deployment"]["spec"]["replicas"] == replicas
    budget = children["PodDisruptionBudget"]["spec"]
    assert budget["minAvailable"] == replicas - 1 and "maxUnavailable" not in budget
    assert budget["selector"] == children["Deployment"]["spec"]["selector"]
    assert "PersistentVolumeClaim" not in children
    assert children["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"


def test_zero_replicas_scale_the_runtime_down() -> None:
    children = _children({"replicas": 0})
    assert children["Deployment"]["spec"]["replicas"] == 0
    assert children["PodDisruptionBudget"]["spec"]["maxUnavailable"] == 1


def test_image_and_resources_reach_the_runtime_container() -> None:
    resources = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}
    children = _children({"replicas": 1, "image": "registry.example/runtime:dev", "resources": resources})
    container = children["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/runtime:dev"
    assert container["resources"] == resources
    default = _children(None)["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert default["image"] == SETTINGS.runtime_image and "resources" not in default


def test_a_scale_rolls_no_pod_and_leaves_the_served_manifest_alone() -> None:
    one, three = _children({"replicas": 1}, REDIS), _children({"replicas": 3}, REDIS)
    assert one["ConfigMap"]["data"][MANIFEST_KEY] == three["ConfigMap"]["data"][MANIFEST_KEY]
    assert "serving" not in yaml.safe_load(three["ConfigMap"]["data"][MANIFEST_KEY])["spec"]
    annotations = [c["Deployment"]["spec"]["template"]["metadata"]["annotations"] for c in (one, three)]
    assert annotations[0][CONFIG_HASH_ANNOTATION] == annotations[1][CONFIG_HASH_ANNOTATION]


def test_more_than_one_replica_without_redis_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match=r"serving\.replicas: more than one replica needs storage\.backend Redis"):
        ExperimentSpec.model_validate(_body({"replicas": 2})["spec"])
    with pytest.raises(ValidationError, match=r"serving\.replicas"):
        ExperimentSpec.model_validate(_body({"replicas": 2}, {"backend": "Embedded"})["spec"])
    assert ExperimentSpec.model_validate(_body({"replicas": 2}, REDIS)["spec"]).serving.replicas == 2
