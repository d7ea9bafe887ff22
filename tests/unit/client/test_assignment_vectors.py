"""Local assignment reproduces the published hash contract bit for bit (docs/api/assignment-vectors.json), and
serves what the runtime serves for a manifest that is not Running."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from croupier.api import assignment
from croupier.client import InvalidArgument, LocalAssigner
from croupier.runtime.experiments.config import parse_experiment

VECTORS = json.loads((Path(__file__).parents[3] / "docs/api/assignment-vectors.json").read_text())


@pytest.mark.parametrize("case", VECTORS["assign"], ids=lambda c: f"{c['algorithm']}:{c['unitId'][:12]}")
def test_every_assign_vector(case: dict[str, Any]) -> None:
    assigner = LocalAssigner(case["salt"], [tuple(w) for w in case["weights"]], case["algorithm"])
    assert assigner.assign(case["unitId"]) == case["variant"]
    assert assigner(case["unitId"]) == case["variant"]


def manifest(**spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "variants": [
            {"name": "control", "weight": 50, "payload": {"a": 1}},
            {"name": "treat", "weight": 50, "payload": {"a": 2}},
        ],
        "control": "control",
        "assignment": {"unitKey": "userId"},
        "metric": {"name": "conversion", "type": "Binary"},
    }
    body.update(spec)
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "checkout", "namespace": "shop"},
        "spec": body,
    }


def test_from_manifest_takes_the_runtime_salt_and_epoch() -> None:
    document = manifest()
    local = LocalAssigner.from_manifest(document)
    served = parse_experiment(document)
    assert local.epoch == served.epoch
    assert local.experiment == "checkout"
    # The default salt is <namespace>/<name>: the same units as a hand-built assigner with that salt.
    by_hand = LocalAssigner("shop/checkout", [("control", 50), ("treat", 50)])
    units = [f"user-{i}" for i in range(200)]
    assert [local(u) for u in units] == [by_hand(u) for u in units]
    assert {local(u) for u in units} == {"control", "treat"}
    exposure = local.exposure("user-1")
    assert (exposure.unit_id, exposure.variant, exposure.epoch) == ("user-1", local("user-1"), local.epoch)


@pytest.mark.parametrize(
    ("spec", "status", "served"),
    [
        ({"state": "Paused"}, None, "control"),
        ({"state": "Concluded", "onConclude": "KeepWinner"}, {"winner": "treat"}, "treat"),
        ({"state": "Concluded", "onConclude": "KeepWinner"}, None, "control"),
        ({"state": "Concluded", "onConclude": "KeepControl"}, {"winner": "treat"}, "control"),
    ],
)
def test_not_running_serves_one_variant(spec: dict[str, Any], status: dict[str, Any] | None, served: str) -> None:
    document = manifest(**spec)
    if status:
        document["status"] = status
    local = LocalAssigner.from_manifest(document)
    assert {local(f"u{i}") for i in range(100)} == {served}


def test_concluded_with_nothing_keeps_each_unit_variant() -> None:
    running = LocalAssigner.from_manifest(manifest())
    concluded = LocalAssigner.from_manifest(manifest(state="Concluded", onConclude="Nothing"))
    assert [concluded(f"u{i}") for i in range(100)] == [running(f"u{i}") for i in range(100)]


def test_bad_configuration_is_refused_with_the_field() -> None:
    with pytest.raises(InvalidArgument) as weights:
        LocalAssigner("s", [("a", 60), ("b", 60)])
    assert weights.value.field == "weights"
    with pytest.raises(InvalidArgument) as algorithm:
        LocalAssigner("s", [("a", 50), ("b", 50)], "md5")
    assert algorithm.value.field == "algorithm"
    with pytest.raises(InvalidArgument) as spec:
        LocalAssigner.from_manifest(manifest(control="nobody"))
    assert spec.value.field == "spec"


@pytest.mark.parametrize("algorithm", ["fnv1a32-v2", "fnv1a32-v1", "sha256-v1"])
@pytest.mark.parametrize(
    "weights",
    [
        [("a", 50), ("b", 50)],
        [("control", 34), ("bandit", 33), ("ranker-v2", 33)],
        [("a", 0), ("b", 10), ("c", 0), ("d", 90)],
        [("a", 1), ("b", 1), ("c", 1), ("d", 97)],
        [("a", 33), ("b", 33), ("c", 33), ("d", 1), ("e", 0)],
    ],
)
def test_fast_path_equals_the_contract(algorithm: str, weights: list[tuple[str, int]]) -> None:
    """The C-hashed ASCII path of the GrowthBook schemes picks the contract's variant for every unit, including ids
    outside ASCII and a salt outside ASCII (both through the contract's own code)."""
    units = [f"user-{i}" for i in range(3000)] + ["ünit", "日本語", "emoji-\U0001f600", ""]
    for salt in ("checkout-2026", "", "sält"):
        local = LocalAssigner(salt, weights, algorithm)
        assert [local(u) for u in units] == [assignment.assign(u, salt, weights, algorithm) for u in units]
