"""spec.storage decides the Experiment runtime's state: a claim of the asked size and class, an emptyDir, or Redis
with its URL from the spec or a Secret (never a fixed 1 Gi claim)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.api.experiment import ExperimentSpec
from croupier.operator.experiment.children import desired_children
from croupier.operator.experiment.model import parse_experiment
from croupier.operator.settings import OperatorSettings

pytestmark = pytest.mark.unit

SOURCE = Path(__file__).resolve().parent / "experiments" / "ab-policy.yaml"
SETTINGS = OperatorSettings(runtime_image="ghcr.io/croupier-dev/croupier-runtime:0.1.0")


def _children(storage: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(SOURCE.read_text()))
    if storage is not None:
        body["spec"]["storage"] = storage
    return {c["kind"]: c for c in desired_children(parse_experiment(body), SETTINGS)}


def _pod(children: dict[str, dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = children["Deployment"]["spec"]["template"]["spec"]
    return spec


def _env(children: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in _pod(children)["containers"][0]["env"]}


def test_the_default_is_an_embedded_store_on_a_1gi_claim() -> None:
    children = _children(None)
    claim = children["PersistentVolumeClaim"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "1Gi"
    assert "storageClassName" not in claim["spec"]
    state = next(v for v in _pod(children)["volumes"] if v["name"] == "state")
    assert state["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    assert children["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}


def test_size_and_storage_class_reach_the_claim() -> None:
    children = _children({"persistence": {"size": "20Gi", "storageClassName": "fast-ssd"}})
    claim = children["PersistentVolumeClaim"]["spec"]
    assert (claim["resources"]["requests"]["storage"], claim["storageClassName"]) == ("20Gi", "fast-ssd")


def test_without_persistence_the_state_is_an_empty_dir_and_there_is_no_claim() -> None:
    children = _children({"persistence": {"enabled": False}})
    assert "PersistentVolumeClaim" not in children
    state = next(v for v in _pod(children)["volumes"] if v["name"] == "state")
    assert state == {"name": "state", "emptyDir": {}}
    assert children["Deployment"]["spec"]["strategy"]["type"] == "RollingUpdate"


def test_redis_passes_the_url_and_key_prefix_and_needs_no_claim() -> None:
    children = _children({"backend": "Redis", "redis": {"url": "redis://redis.data:6379/2", "keyPrefix": "ab:"}})
    assert "PersistentVolumeClaim" not in children
    env = _env(children)
    assert env["CROUPIER_RUNTIME_REDIS_URL"] == "redis://redis.data:6379/2"
    assert env["CROUPIER_RUNTIME_REDIS_KEY_PREFIX"] == "ab:"


def test_a_redis_url_from_a_secret_stays_in_the_secret() -> None:
    children = _children({"backend": "Redis", "redis": {"urlSecretRef": {"name": "redis", "key": "url"}}})
    assert _env(children)["CROUPIER_RUNTIME_REDIS_URL"] == {"secretKeyRef": {"name": "redis", "key": "url"}}
    assert "CROUPIER_RUNTIME_REDIS_KEY_PREFIX" not in _env(children)


def test_redis_without_a_url_is_refused_naming_the_field() -> None:
    spec = yaml.safe_load(SOURCE.read_text())["spec"]
    with pytest.raises(ValidationError, match=r"backend Redis needs redis\.url or redis\.urlSecretRef"):
        ExperimentSpec.model_validate({**spec, "storage": {"backend": "Redis"}})


def test_the_embedded_default_leaves_the_served_manifest_unchanged() -> None:
    # An unset storage is not written into the ConfigMap: existing experiments do not roll their pods.
    served = yaml.safe_load(_children(None)["ConfigMap"]["data"]["experiment.yaml"])
    assert "storage" not in served["spec"]
