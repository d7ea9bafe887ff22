"""The API test cases (cases.yaml) as manifests: one source for the model tests and the admission tests, so pydantic
and the API server are held to the same valid and invalid inputs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = ROOT / "examples"
CASES: dict[str, list[dict[str, Any]]] = yaml.safe_load(Path(__file__).with_name("cases.yaml").read_text())


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def manifest(case: dict[str, Any]) -> dict[str, Any]:
    """The case's base example with its patch applied to spec, named after the case."""
    doc: dict[str, Any] = yaml.safe_load((EXAMPLES / case["base"]).read_text())
    doc["spec"] = merge_patch(doc["spec"], case.get("patch") or {})
    doc["metadata"] = {"name": case["name"][:63]}
    return doc
