"""The cross-language vectors (tests/data/router-vectors.json) are what the Python router computes today: unit points,
label sequences, route() answers, routing-table parsing, pin headers and model_spec rewrites. The compiled router's
Go tests (runtime/gorouter) check against the same file, so the two routers cannot drift apart unnoticed.
Regenerate after an intended change: `uv run python -m croupier.generators.router_vectors`."""

from __future__ import annotations

import json
from pathlib import Path

from croupier.generators import router_vectors

ROOT = Path(__file__).resolve().parents[4]
VECTORS = ROOT / "tests" / "data" / "router-vectors.json"


def test_the_vectors_file_is_what_the_python_router_computes() -> None:
    stored = json.loads(VECTORS.read_text())
    computed = json.loads(router_vectors.render())
    for section in ("unit_points", "sequences", "routes", "tables", "pins", "model_specs"):
        assert stored[section], section
        assert computed[section] == stored[section], f"{section}: regenerate (the module's docstring)"


def test_the_vectors_cover_both_outcomes() -> None:
    stored = json.loads(VECTORS.read_text())
    assert {t["ok"] for t in stored["tables"]} == {True, False}
    assert {p["ok"] for p in stored["pins"]} == {True, False}
    assert {m["malformed"] for m in stored["model_specs"]} == {True, False}
    assert {r["route"]["label"] for r in stored["routes"] if "route" in r} >= {"stable", "canary", "other", "none"}
    assert any("c" in s["labels"] and "s" in s["labels"] for s in stored["sequences"])
