"""What the index keeps of a child: no managedFields, and strings shared between children (not one copy each)."""

from __future__ import annotations

import json

from croupier.operator.core.ownership import compact, slim

CHILD = json.dumps(
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "p",
            "namespace": "team",
            "labels": {"app.kubernetes.io/managed-by": "croupier-operator"},
            "managedFields": [{"manager": "croupier-operator", "fieldsV1": {"f:spec": {}}}],
        },
        "spec": {"template": {"spec": {"containers": [{"name": "runtime", "terminationMessagePath": "/dev/x"}]}}},
        "status": {"readyReplicas": 1},
    }
)


def test_slim_drops_managed_fields_and_keeps_the_rest() -> None:
    body = json.loads(CHILD)
    kept = slim(body)
    expected = json.loads(CHILD)
    del expected["metadata"]["managedFields"]
    assert kept == expected


def test_two_children_decoded_apart_share_their_strings_once_slimmed() -> None:
    first, second = slim(json.loads(CHILD)), slim(json.loads(CHILD))
    container_1 = first["spec"]["template"]["spec"]["containers"][0]
    container_2 = second["spec"]["template"]["spec"]["containers"][0]
    key_1 = next(k for k in container_1 if k == "terminationMessagePath")
    key_2 = next(k for k in container_2 if k == "terminationMessagePath")
    assert key_1 is key_2
    assert container_1["terminationMessagePath"] is container_2["terminationMessagePath"]


def test_compact_copies_lists_and_leaves_numbers_and_booleans() -> None:
    data = {"a": [1, 2.5, True, None, {"b": "c"}], "d": ("e",)}
    assert compact(data) == {"a": [1, 2.5, True, None, {"b": "c"}], "d": ["e"]}
