"""Is the live child already what we would apply? Decides whether the operator sends anything at all."""

from __future__ import annotations

from typing import Any

import pytest

from croupier.operator.core.matching import contains, up_to_date

pytestmark = pytest.mark.unit

HASH_KEY = "croupier.dev/manifest-hash"


def desired() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "banner", "labels": {"a": "1"}, "annotations": {HASH_KEY: "h1"}},
        "spec": {
            "replicas": 1,
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "runtime",
                            "resources": {"requests": {"cpu": "0.5", "memory": "128Mi"}, "limits": {"cpu": 1}},
                            "ports": [{"name": "http", "containerPort": 8080}],
                        }
                    ]
                }
            },
        },
    }


def live() -> dict[str, Any]:
    obj = desired()
    obj["metadata"] |= {"resourceVersion": "42", "uid": "u", "annotations": {HASH_KEY: "h1", "x": "y"}}
    container = obj["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"requests": {"cpu": "500m", "memory": "128Mi"}, "limits": {"cpu": "1"}}
    container["ports"][0]["protocol"] = "TCP"
    container["terminationMessagePath"] = "/dev/termination-log"
    obj["status"] = {"replicas": 1}
    return obj


def test_server_defaults_and_normalized_quantities_still_match() -> None:
    assert up_to_date(live(), desired(), HASH_KEY)


def test_missing_live_object_does_not_match() -> None:
    assert not up_to_date(None, desired(), HASH_KEY)


def test_a_changed_manifest_hash_does_not_match() -> None:
    # e.g. a field we used to set was removed from the desired manifest: invisible to a subset comparison.
    changed = desired()
    changed["metadata"]["annotations"][HASH_KEY] = "h2"
    assert not up_to_date(live(), changed, HASH_KEY)


@pytest.mark.parametrize(
    "edit",
    [
        lambda o: o["spec"].__setitem__("replicas", 3),
        lambda o: o["metadata"]["labels"].pop("a"),
        lambda o: o["spec"]["template"]["spec"]["containers"].append({"name": "sidecar"}),
        lambda o: o["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].__setitem__("cpu", "1"),
    ],
)
def test_someone_elses_edit_of_our_fields_does_not_match(edit: Any) -> None:
    obj = live()
    edit(obj)
    assert not up_to_date(obj, desired(), HASH_KEY)


def test_quantities_compare_by_value_only_inside_resource_lists() -> None:
    assert contains({"requests": {"cpu": "500m"}}, {"requests": {"cpu": "0.5"}})
    assert not contains({"labels": {"size": "500m"}}, {"labels": {"size": "0.5"}})


def test_booleans_are_not_numbers() -> None:
    assert not contains({"a": 1}, {"a": True})
    assert contains({"a": True}, {"a": True})
