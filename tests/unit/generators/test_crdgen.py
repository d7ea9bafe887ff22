"""crdgen turns the models into structural CRDs, refuses what the API server would, and guards crds/ against drift."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import yaml
from pydantic import Field

from croupier.api.common import ApiModel, FreeFormObject, Quantity, cel, validated
from croupier.generators import crdgen

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def all_nodes(node: Any) -> list[Any]:
    found = [node]
    if isinstance(node, dict):
        for value in node.values():
            found += all_nodes(value)
    elif isinstance(node, list):
        for value in node:
            found += all_nodes(value)
    return found


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return {r.kind: crdgen.crd(r) for r in crdgen.RESOURCES}


def root_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_committed_crds_match_the_models() -> None:
    diffs = crdgen.drift(crdgen.default_output_dir(), crdgen.default_docs_dir())
    assert not diffs, "crds/ drift from the models; run `make crds`:\n" + "".join(diffs)


def test_crd_identity(crds: dict[str, dict[str, Any]]) -> None:
    expected = {"DecisionPolicy": ["dp"], "ModelDeployment": ["md"], "Experiment": ["exp"]}
    for kind, crd in crds.items():
        names = crd["spec"]["names"]
        assert crd["spec"]["group"] == "croupier.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert names["shortNames"] == expected[kind]
        assert names["categories"] == ["croupier"]
        assert crd["metadata"]["name"] == f"{names['plural']}.croupier.dev"
        (version,) = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        assert version["subresources"] == {"status": {}}
        columns = [c["name"] for c in version["additionalPrinterColumns"]]
        assert columns[0] == "Ready" and columns[-1] == "Age"
        assert root_schema(crd)["required"] == ["spec"]


def test_printer_columns(crds: dict[str, dict[str, Any]]) -> None:
    def columns(kind: str) -> dict[str, str]:
        version = crds[kind]["spec"]["versions"][0]
        return {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"] if not c.get("priority")}

    assert list(columns("ModelDeployment")) == ["Ready", "Stable", "Canary", "Weight", "Step", "Age"]
    assert columns("ModelDeployment")["Weight"] == ".status.canaryWeight"
    assert list(columns("Experiment")) == ["Ready", "State", "Variants", "Winner", "SRM", "Age"]


def test_schemas_are_structural_with_descriptions_everywhere(crds: dict[str, dict[str, Any]]) -> None:
    for kind, crd in crds.items():
        schema = root_schema(crd)
        for part in ("spec", "status"):
            assert crdgen.structural_problems(schema["properties"][part], part) == [], kind
        nodes = all_nodes(schema)
        assert not [n for n in nodes if isinstance(n, dict) and ({"$ref", "$defs", "title", "nullable"} & n.keys())]
        assert not [n for n in nodes if isinstance(n, dict) and n.get("type") == "null"]


def test_conditions_are_a_list_map_keyed_by_type(crds: dict[str, dict[str, Any]]) -> None:
    for crd in crds.values():
        conditions = root_schema(crd)["properties"]["status"]["properties"]["conditions"]
        assert conditions["x-kubernetes-list-type"] == "map"
        assert conditions["x-kubernetes-list-map-keys"] == ["type"]
        assert set(conditions["items"]["required"]) >= {"type", "status", "reason", "lastTransitionTime"}
        observed = root_schema(crd)["properties"]["status"]["properties"]["observedGeneration"]
        assert observed["type"] == "integer"


def test_cel_rules_are_carried_into_the_schema(crds: dict[str, dict[str, Any]]) -> None:
    spec = root_schema(crds["ModelDeployment"])["properties"]["spec"]
    assert any("canary.version != self.stable.version" in r["rule"] for r in spec["x-kubernetes-validations"])
    canary_rules = [r["rule"] for r in spec["properties"]["canary"]["x-kubernetes-validations"]]
    assert "has(self.weight) != has(self.steps)" in canary_rules
    exp = root_schema(crds["Experiment"])["properties"]["spec"]
    assert any(".sum() == 100" in r["rule"] for r in exp["x-kubernetes-validations"])


class _Limits(ApiModel):
    """Model exercising every translation."""

    model_config = validated(cel("self.count > 0 || !has(self.label)", "label needs a count", field_path=".label"))

    count: Annotated[int | None, Field(description="Optional with an exclusive bound.", gt=0)] = None
    label: Annotated[str, Field(description="Bounded string.", max_length=8)] = "x"
    size: Annotated[Quantity, Field(description="Int or string.")] = "1Gi"
    tags: Annotated[
        list[Annotated[str, Field(max_length=5)]],
        Field(description="A set.", max_length=4, json_schema_extra={"x-kubernetes-list-type": "set"}),
    ] = []
    labels: Annotated[dict[str, str] | None, Field(description="A map.")] = None
    blob: Annotated[FreeFormObject | None, Field(description="Anything.")] = None


class _Outer(ApiModel):
    """Outer model: a nested default with a null inside."""

    inner: Annotated[_Limits, Field(description="Nested.")] = _Limits()


def test_translation_of_optional_bounds_int_or_string_maps_and_free_form() -> None:
    schema = crdgen.structural_schema(_Outer)
    inner = schema["properties"]["inner"]
    assert inner["default"] == {"label": "x", "size": "1Gi", "tags": []}  # no nulls, camelCase
    assert inner["description"] == "Nested."
    assert inner["x-kubernetes-validations"][0]["fieldPath"] == ".label"
    props = inner["properties"]
    assert props["count"] == {
        "type": "integer",
        "description": "Optional with an exclusive bound.",
        "exclusiveMinimum": True,
        "minimum": 0,
    }
    assert props["size"]["x-kubernetes-int-or-string"] is True
    assert props["size"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "type" not in props["size"]
    assert props["tags"]["items"] == {"type": "string", "maxLength": 5}
    assert props["labels"] == {"type": "object", "description": "A map.", "additionalProperties": {"type": "string"}}
    assert props["blob"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "additionalProperties" not in props["blob"]
    assert "required" not in inner


def test_a_field_without_description_fails_generation_naming_it() -> None:
    class Undocumented(ApiModel):
        """Has a field without a description."""

        bare: int = 1

    with pytest.raises(crdgen.SchemaError, match=r"Undocumented\.bare: every field needs a description"):
        crdgen.structural_schema(Undocumented)


def test_an_unbounded_list_fails_generation() -> None:
    class Unbounded(ApiModel):
        """Has a list without maxItems."""

        items: Annotated[list[int], Field(description="No bound.")] = []

    with pytest.raises(crdgen.SchemaError, match=r"Unbounded\.items: array without maxItems"):
        crdgen.structural_schema(Unbounded)


def test_a_real_union_fails_generation() -> None:
    class Union(ApiModel):
        """Has an int | str without the int-or-string marker."""

        value: Annotated[int | str, Field(description="Ambiguous.")] = 1

    with pytest.raises(crdgen.SchemaError, match=r"Union\.value: a union of 2 non-null types"):
        crdgen.structural_schema(Union)


class Tree(ApiModel):
    """A recursive model."""

    children: Annotated[list[Tree], Field(description="Subtrees.", max_length=2)] = []


def test_a_recursive_model_fails_generation() -> None:
    with pytest.raises(crdgen.SchemaError, match="Tree contains itself"):
        crdgen.structural_schema(Tree)


def test_reference_lists_every_cel_rule_including_list_items(crds: dict[str, dict[str, Any]]) -> None:
    for resource in crdgen.RESOURCES:
        page = crdgen.render_docs()[f"{resource.plural}.md"]
        schema = root_schema(crds[resource.kind])["properties"]["spec"]
        rules = [r for n in all_nodes(schema) if isinstance(n, dict) for r in n.get("x-kubernetes-validations", [])]
        assert rules
        for rule in rules:
            assert rule["message"] in page, (resource.kind, rule["message"])
    assert "| `spec.variants[]` | set exactly one target" in crdgen.render_docs()["experiments.md"]


def test_kubectl_apply_f_on_the_folder_reads_the_crds_only() -> None:
    # `kubectl apply -f crds/` (tests, demo, benchmarks) reads every .yaml, .yml and .json file of the folder.
    read = [p for p in (ROOT / "crds").iterdir() if p.suffix in (".yaml", ".yml", ".json")]
    assert sorted(p.name for p in read) == sorted(r.filename for r in crdgen.RESOURCES)
    assert (ROOT / "crds" / crdgen.KUSTOMIZATION).is_file()


def test_committed_files_parse_and_carry_the_generated_header() -> None:
    for resource in crdgen.RESOURCES:
        text = (ROOT / "crds" / resource.filename).read_text()
        assert text.startswith("# Generated by `python -m croupier.generators.crdgen`")
        assert yaml.safe_load(text)["kind"] == "CustomResourceDefinition"
