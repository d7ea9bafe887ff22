"""`unitId` on the assign contract: optional (the unit may be `attributes[spec.assignment.unitKey]`) but never null,
in the wire model and in the OpenAPI document the runtime publishes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from croupier.api import wire
from croupier.runtime.experiments.config import parse_experiment
from croupier.runtime.experiments.http import experiment_openapi_document

ROOT = Path(__file__).resolve().parents[4]
EXAMPLE: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "experiment-abn.yaml").read_text())


def _nulls(node: object) -> list[object]:
    """Every place in a schema that admits null: a null type, a null const or enum member, a null default."""
    found: list[object] = []
    if isinstance(node, dict):
        if node.get("type") == "null" or (isinstance(node.get("type"), list) and "null" in node["type"]):
            found.append(node)
        if "const" in node and node["const"] is None:
            found.append(node)
        if None in (node.get("enum") or ()):
            found.append(node)
        if "default" in node and node["default"] is None:
            found.append(node)
        for value in node.values():
            found += _nulls(value)
    elif isinstance(node, list):
        for value in node:
            found += _nulls(value)
    return found


def test_the_wire_model_makes_unit_id_optional_and_not_nullable() -> None:
    schema = wire.AssignRequest.model_json_schema(by_alias=True)
    assert "unitId" not in schema.get("required", [])
    unit = schema["properties"]["unitId"]
    assert unit["type"] == "string" and not _nulls(unit), unit
    assert wire.AssignRequest.model_validate({"attributes": {"userId": "u7"}}).unit_id is None
    assert wire.AssignRequest.model_validate({"unitId": "u1"}).unit_id == "u1"


@pytest.mark.parametrize(
    ("body", "loc", "message"),
    [
        ({"unitId": None}, ("unitId",), "got null"),
        ({"unitId": None, "attributes": {"userId": "u7"}}, ("unitId",), "got null"),
        ({}, (), "unitId or attributes"),
        ({"context": [1.0]}, (), "unitId or attributes"),
    ],
)
def test_the_wire_model_refuses_a_null_or_missing_unit(
    body: dict[str, Any], loc: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        wire.AssignRequest.model_validate(body)
    error = raised.value.errors()[0]
    assert error["loc"] == loc and message in error["msg"], error


def test_the_published_document_admits_no_null_unit_id_and_requires_one_of_the_two() -> None:
    served = parse_experiment(EXAMPLE)
    key = served.spec.assignment.unit_key
    schemas = experiment_openapi_document(served)["components"]["schemas"]
    assign = schemas["AssignRequest"]
    assert "required" not in assign
    assert not _nulls(assign["properties"]["unitId"]), assign["properties"]["unitId"]
    by_attribute = assign["anyOf"][1]["properties"]["attributes"]["properties"][key]
    assert by_attribute["type"] == "string" and not _nulls(by_attribute)
    assert assign["anyOf"][0] == {"required": ["unitId"]}
    assert assign["anyOf"][1]["required"] == ["attributes"]
