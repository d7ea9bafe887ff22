"""The cross-language vectors (tests/data/router-vectors.json) are what the Python router computes today: unit points,
label sequences, route() answers, routing-table parsing, pin headers and model_spec rewrites. The compiled router's
Go tests (runtime/gorouter) check against the same file, so the two routers cannot drift apart unnoticed.
Regenerate after an intended change: `.venv/bin/python runtime/gorouter/vectors.py`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[4]
VECTORS = ROOT / "tests" / "data" / "router-vectors.json"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("router_vectors", ROOT / "runtime" / "gorouter" / "vectors.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_vectors_file_is_what_the_python_router_computes() -> None:
    stored = json.loads(VECTORS.read_text())
    computed = json.loads(_generator().render())
    for section in ("unit_points", "sequences", "routes", "tables", "pins", "model_specs"):
        assert stored[section], section
        assert computed[section] == stored[section], f"{section}: regenerate with runtime/gorouter/vectors.py"


def test_the_vectors_cover_both_outcomes() -> None:
    stored = json.loads(VECTORS.read_text())
    assert {t["ok"] for t in stored["tables"]} == {True, False}
    assert {p["ok"] for p in stored["pins"]} == {True, False}
    assert {m["malformed"] for m in stored["model_specs"]} == {True, False}
    assert {r["route"]["label"] for r in stored["routes"] if "route" in r} >= {"stable", "canary", "other", "none"}
    assert any("c" in s["labels"] and "s" in s["labels"] for s in stored["sequences"])
