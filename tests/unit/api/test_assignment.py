"""The assignment hash contract (croupier.api.assignment) against its vector file, GrowthBook's published vectors and
the recipes spelled out independently of the implementation."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from croupier.api import assignment
from croupier.api.assignment import Assigner, HashAlgorithm

ROOT = Path(__file__).resolve().parents[3]
VECTORS: dict[str, Any] = json.loads((ROOT / "docs" / "api" / "assignment-vectors.json").read_text())

# GrowthBook's published hash() vectors (seed, value, version -> n), restated here so the file cannot drift from them.
GROWTHBOOK = [
    ("", "a", 1, 0.22),
    ("", "b", 1, 0.077),
    ("", "ab", 1, 0.946),
    ("", "def", 1, 0.652),
    ("", "8952klfjas09ujkasdf", 1, 0.549),
    ("", "123", 1, 0.011),
    ("", '___)((*":&', 1, 0.563),
    ("seed", "a", 2, 0.0505),
]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [f"{v['algorithm']}:{v['salt']!r}:{v['unitId'][:20]!r}" for v in vectors]


@pytest.mark.parametrize(("seed", "value", "version", "n"), GROWTHBOOK)
def test_growthbook_published_vectors(seed: str, value: str, version: int, n: float) -> None:
    algorithm = HashAlgorithm.FNV1A32_V2 if version == 2 else HashAlgorithm.FNV1A32_V1
    assert assignment.fraction(value, seed, algorithm) == n
    assert {"algorithm": algorithm.value, "salt": seed, "unitId": value, "fraction": n} in [
        {k: v[k] for k in ("algorithm", "salt", "unitId", "fraction")} for v in VECTORS["hash"]
    ]


@pytest.mark.parametrize("vector", VECTORS["hash"], ids=_ids(VECTORS["hash"]))
def test_hash_vectors(vector: dict[str, Any]) -> None:
    algorithm, salt, unit = vector["algorithm"], vector["salt"], vector["unitId"]
    assert assignment.bucket(unit, salt, algorithm) == vector["bucket"]
    assert assignment.fraction(unit, salt, algorithm) == vector["fraction"]


@pytest.mark.parametrize("vector", VECTORS["assign"], ids=_ids(VECTORS["assign"]))
def test_assign_vectors(vector: dict[str, Any]) -> None:
    weights = [(name, weight) for name, weight in vector["weights"]]
    assert assignment.assign(vector["unitId"], vector["salt"], weights, vector["algorithm"]) == vector["variant"]
    assert Assigner(vector["salt"], weights, vector["algorithm"])(vector["unitId"]) == vector["variant"]


def test_every_algorithm_and_a_range_edge_have_vectors() -> None:
    assert {v["algorithm"] for v in VECTORS["hash"]} == set(HashAlgorithm)
    assert {v["algorithm"] for v in VECTORS["assign"] if "note" in v} == set(HashAlgorithm)
    assert any(not v["unitId"].isascii() and max(v["unitId"]) > "\uffff" for v in VECTORS["hash"])


def _fnv_reference(text: str) -> int:
    """FNV-1a 32 over UTF-16 code units, written from the published constants."""
    h = 2166136261
    data = text.encode("utf-16-le")
    for i in range(0, len(data), 2):
        h ^= int.from_bytes(data[i : i + 2], "little")
        h = (h * 16777619) % 2**32
    return h


@pytest.mark.parametrize("text", ["", "a", "seeda", "ünïcode", "😀 outside the BMP", "x" * 300])
def test_fnv1a32_hashes_utf16_code_units(text: str) -> None:
    assert assignment.fnv1a32(text) == _fnv_reference(text)


def test_sha256_v1_is_the_documented_recipe() -> None:
    for vector in (v for v in VECTORS["hash"] if v["algorithm"] == HashAlgorithm.SHA256_V1):
        digest = hashlib.sha256((vector["salt"] + ":" + vector["unitId"]).encode("utf-8")).hexdigest()
        assert int(digest[:16], 16) % 10_000 == vector["bucket"]


@pytest.mark.parametrize("algorithm", list(HashAlgorithm))
def test_assignment_follows_the_weights_and_skips_zero_weight(algorithm: HashAlgorithm) -> None:
    assign = Assigner("salt", [("a", 20), ("b", 0), ("c", 80)], algorithm)
    counts = Counter(assign(f"u{i}") for i in range(20_000))
    assert counts["b"] == 0
    assert abs(counts["a"] / 20_000 - 0.2) < 0.015


def test_bad_weights_and_unknown_algorithm_are_errors() -> None:
    with pytest.raises(ValueError, match="md5"):
        assignment.bucket("u", "s", algorithm="md5")
    with pytest.raises(ValueError, match="md5"):
        Assigner("s", [("a", 100)], "md5")
    with pytest.raises(ValueError, match="sum to 100"):
        assignment.assign("u", "s", [("a", 50), ("b", 40)])


@pytest.mark.parametrize(("prefix", "rest"), [("seed", "a"), ("", "ünï"), ("salt/x", "😀-unit"), ("ñ", "")])
def test_fnv1a32_continues_from_a_prefix_state(prefix: str, rest: str) -> None:
    assert assignment.fnv1a32(rest, assignment.fnv1a32(prefix)) == assignment.fnv1a32(prefix + rest)
