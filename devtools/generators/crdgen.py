"""Generate Croupier's CustomResourceDefinitions from the pydantic models (the models are the source of truth).

    python -m croupier.generators.crdgen            # write crds/*.yaml and docs/api/*.md
    python -m croupier.generators.crdgen --check    # exit 1 with a diff when either drifts from the models

Pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3 schema
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#specifying-a-structural-schema).
The translation, node by node:

- ``$ref``/``$defs`` are inlined; the referencing property's own keys (description, default) win over the target's.
- ``Optional[X]`` (``anyOf: [X, {type: null}]``) becomes plain ``X``: unset fields are omitted, never ``null``.
- ``int | str`` marked ``x-kubernetes-int-or-string`` becomes that extension with the
  ``anyOf: [{type: integer}, {type: string}]`` the API server allows, constraints of the string branch hoisted.
- JSON Schema 2020-12 ``exclusiveMinimum: n`` becomes OpenAPI v3.0 ``minimum: n, exclusiveMinimum: true``.
- ``const`` becomes a one-value ``enum``; ``title``, ``$defs``, ``additionalProperties: false`` and other keys that
  structural schemas do not allow are dropped; ``null`` inside defaults is dropped.
- ``x-kubernetes-*`` keys from ``json_schema_extra`` pass through.

Generation fails (:class:`SchemaError`, naming the field) when a field has no description, a list has no ``maxItems``
(the API server's CEL cost estimator rejects rules over unbounded lists), or a union is not representable.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml
from pydantic import BaseModel

from croupier.api import decisionpolicy, experiment, modeldeployment
from croupier.api.common import CATEGORY, GROUP, VERSION
from croupier.generators import reference

Schema = dict[str, Any]

# Keys an apiextensions.k8s.io/v1 JSONSchemaProps may carry; anything else pydantic emits is dropped.
_ALLOWED_KEYS = frozenset(
    {
        "type",
        "format",
        "description",
        "default",
        "enum",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        "maxLength",
        "minLength",
        "pattern",
        "maxItems",
        "minItems",
        "uniqueItems",
        "multipleOf",
        "maxProperties",
        "minProperties",
        "required",
        "items",
        "properties",
        "additionalProperties",
        "anyOf",
        "allOf",
        "oneOf",
        "not",
        "nullable",
        "example",
        "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-int-or-string",
        "x-kubernetes-list-map-keys",
        "x-kubernetes-list-type",
        "x-kubernetes-map-type",
        "x-kubernetes-validations",
    }
)
_DROPPED_KEYS = frozenset({"title", "$defs", "$schema", "examples", "readOnly", "writeOnly", "deprecated"})


class SchemaError(ValueError):
    """A model cannot be expressed as a structural CRD schema (the message names the field)."""


@dataclass(frozen=True)
class Resource:
    """One Kind: its API module (KIND, PLURAL, SINGULAR, SHORT_NAMES, PRINTER_COLUMNS) and its spec/status models."""

    module: ModuleType
    spec: type[BaseModel]
    status: type[BaseModel]
    required_spec: bool = field(default=True)

    @property
    def kind(self) -> str:
        return str(self.module.KIND)

    @property
    def plural(self) -> str:
        return str(self.module.PLURAL)

    @property
    def filename(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"

    @property
    def description(self) -> str:
        doc = (self.module.__doc__ or "").strip()
        if not doc:
            raise SchemaError(f"{self.module.__name__} needs a module docstring (the Kind's description)")
        return "\n\n".join(" ".join(paragraph.split()) for paragraph in doc.split("\n\n"))


RESOURCES: tuple[Resource, ...] = (
    Resource(decisionpolicy, decisionpolicy.DecisionPolicySpec, decisionpolicy.DecisionPolicyStatus),
    Resource(modeldeployment, modeldeployment.ModelDeploymentSpec, modeldeployment.ModelDeploymentStatus),
    Resource(experiment, experiment.ExperimentSpec, experiment.ExperimentStatus),
)


# ---------------------------------------------------------------------------------------------------------------------
# JSON Schema (pydantic) -> structural OpenAPI v3


def _strip_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _is_null(node: Schema) -> bool:
    return node.get("type") == "null"


class _Converter:
    def __init__(self, defs: dict[str, Schema]) -> None:
        self.defs = defs
        self.expanding: list[str] = []  # refs being inlined on the current path: a repeat means recursion

    def _deref(self, node: Schema, path: str) -> Schema:
        """Replace a ``$ref`` (or a one-element ``allOf`` of one) by its target, the referrer's own keys winning."""
        ref = node.get("$ref")
        if (
            ref is None
            and isinstance(node.get("allOf"), list)
            and len(node["allOf"]) == 1
            and "$ref" in node["allOf"][0]
        ):
            ref = node["allOf"][0]["$ref"]
            node = {k: v for k, v in node.items() if k != "allOf"}
        if ref is None:
            return node
        name = ref.rsplit("/", 1)[-1]
        if name not in self.defs:
            raise SchemaError(f"{path}: unresolvable reference {ref}")
        if name in self.expanding:
            raise SchemaError(f"{path}: {name} contains itself; a structural schema cannot be recursive")
        target = self._deref(dict(self.defs[name]), path)
        target["x-croupier-ref"] = name
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        rules = [*target.get("x-kubernetes-validations", []), *node.get("x-kubernetes-validations", [])]
        if rules:
            merged["x-kubernetes-validations"] = rules
        return merged

    def _collapse_union(self, node: Schema, path: str) -> Schema:
        branches = [b for b in node["anyOf"] if not _is_null(b)]
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        if node.get("x-kubernetes-int-or-string"):
            types = sorted(self._deref(b, path).get("type", "?") for b in branches)
            if types != ["integer", "string"]:
                raise SchemaError(f"{path}: x-kubernetes-int-or-string needs exactly int | str, got {types}")
            result: Schema = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
            for branch in branches:
                hoisted = {k: v for k, v in self._deref(branch, path).items() if k not in ("type", "title")}
                result.update(hoisted)
            result.update({k: v for k, v in outer.items() if k != "type"})
            return result
        if len(branches) != 1:
            raise SchemaError(
                f"{path}: a union of {len(branches)} non-null types is not a structural schema; "
                "use Optional[X], int | str with x-kubernetes-int-or-string, or separate fields"
            )
        inner = self._deref(branches[0], path)
        merged = {**inner, **outer}
        rules = [*inner.get("x-kubernetes-validations", []), *outer.get("x-kubernetes-validations", [])]
        if rules:
            merged["x-kubernetes-validations"] = rules
        return merged

    def convert(self, node: Schema, path: str) -> Schema:
        node = self._deref(dict(node), path)
        while "anyOf" in node and not (
            node.get("x-kubernetes-int-or-string") and "type" not in node and _plain_ios(node)
        ):
            node = self._deref(self._collapse_union(node, path), path)
        ref = node.pop("x-croupier-ref", None)
        if ref is not None:
            self.expanding.append(ref)
        try:
            return self._convert_keys(node, path)
        finally:
            if ref is not None:
                self.expanding.pop()

    def _convert_keys(self, node: Schema, path: str) -> Schema:
        out: Schema = {}
        for key, value in node.items():
            if key in _DROPPED_KEYS:
                continue
            if key == "const":
                out["enum"] = [value]
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                bound = "minimum" if key == "exclusiveMinimum" else "maximum"
                out[bound] = value
                out[key] = True
            elif key == "default":
                if value is not None:
                    out["default"] = _strip_nulls(value)
            elif key == "properties":
                out["properties"] = {name: self._property(sub, f"{path}.{name}") for name, sub in value.items()}
            elif key == "items":
                out["items"] = self.convert(value, f"{path}[*]")
            elif key == "additionalProperties":
                if isinstance(value, dict):
                    out["additionalProperties"] = self.convert(value, f"{path}[*]")
                elif value is True and not node.get("x-kubernetes-preserve-unknown-fields"):
                    raise SchemaError(
                        f"{path}: a free-form object needs x-kubernetes-preserve-unknown-fields (use FreeFormObject)"
                    )
                # additionalProperties: false (extra="forbid") is implied by `properties` in a structural schema.
            elif key in _ALLOWED_KEYS:
                out[key] = value
            else:
                raise SchemaError(f"{path}: schema key {key!r} has no place in a CRD schema")
        if "properties" in out and "type" not in out:
            out["type"] = "object"
        return _ordered(out)

    def _property(self, node: Schema, path: str) -> Schema:
        converted = self.convert(node, path)
        if not str(converted.get("description", "")).strip():
            raise SchemaError(f"{path}: every field needs a description (it is what `kubectl explain` shows)")
        return converted


# Reading order of a schema node in the YAML: what it is, what it means, its constraints, then its children.
_KEY_ORDER = {
    key: index
    for index, key in enumerate(
        (
            "type",
            "format",
            "x-kubernetes-int-or-string",
            "x-kubernetes-preserve-unknown-fields",
            "anyOf",
            "description",
            "default",
            "enum",
        )
    )
}
_CHILD_KEYS = ("required", "properties", "items", "additionalProperties")


def _ordered(node: Schema) -> Schema:
    def rank(key: str) -> tuple[int, str]:
        if key in _KEY_ORDER:
            return (0, f"{_KEY_ORDER[key]:03d}")
        if key in _CHILD_KEYS:
            return (2, f"{_CHILD_KEYS.index(key):03d}")
        if key.startswith("x-kubernetes-"):
            return (3, key)
        return (1, key)

    return {key: node[key] for key in sorted(node, key=rank)}


def _plain_ios(node: Schema) -> bool:
    return node.get("anyOf") == [{"type": "integer"}, {"type": "string"}]


def structural_schema(model: type[BaseModel], path: str = "") -> Schema:
    """The structural OpenAPI v3 schema of a model; raises :class:`SchemaError` naming the offending field."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    converter = _Converter(raw.get("$defs", {}))
    schema = converter.convert(raw, path or model.__name__)
    problems = structural_problems(schema, path or model.__name__)
    if problems:
        raise SchemaError("; ".join(problems))
    return schema


# ---------------------------------------------------------------------------------------------------------------------
# Structural checks (also used by the unit tests on the generated files)


def _walk(schema: Schema, path: str) -> Iterator[tuple[str, Schema]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from _walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from _walk(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}[*]")


def structural_problems(schema: Schema, root: str = "") -> list[str]:
    """What makes a schema non-structural, or unfit for CEL cost estimation, as messages naming the node."""
    problems: list[str] = []
    for path, node in _walk(schema, root):
        for key in node:
            if key not in _ALLOWED_KEYS:
                problems.append(f"{path}: key {key!r} is not allowed in a CRD schema")
        typed = "type" in node
        ios = bool(node.get("x-kubernetes-int-or-string"))
        preserve = bool(node.get("x-kubernetes-preserve-unknown-fields"))
        if not (typed or ios or preserve):
            problems.append(f"{path}: has no type (nor int-or-string / preserve-unknown-fields)")
        if ios and typed:
            problems.append(f"{path}: int-or-string must not set type")
        for junctor in ("anyOf", "allOf", "oneOf", "not"):
            if junctor in node and not (ios and junctor == "anyOf" and _plain_ios(node)):
                problems.append(f"{path}: {junctor} is only allowed as int-or-string's anyOf [integer, string]")
        if node.get("nullable"):
            problems.append(f"{path}: nullable fields are not used in Croupier's API (omit unset fields)")
        if node.get("type") == "array":
            if "items" not in node:
                problems.append(f"{path}: array without items")
            if "maxItems" not in node:
                problems.append(f"{path}: array without maxItems (the CEL cost estimator needs a bound)")
        if "properties" in node and "additionalProperties" in node:
            problems.append(f"{path}: properties and additionalProperties are mutually exclusive")
        for name, sub in node.get("properties", {}).items():
            if not str(sub.get("description", "")).strip():
                problems.append(f"{path}.{name}: no description")
        keys = node.get("x-kubernetes-list-map-keys", [])
        for key in keys:
            item = node.get("items", {})
            if key not in item.get("properties", {}):
                problems.append(f"{path}: list-map key {key!r} is not a property of the items")
            elif key not in item.get("required", []) and "default" not in item["properties"][key]:
                problems.append(f"{path}: list-map key {key!r} must be required or defaulted")
    return problems


# ---------------------------------------------------------------------------------------------------------------------
# CRDs


_OBJECT_META = {
    "apiVersion": {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object "
        f"(here {GROUP}/{VERSION}).",
    },
    "kind": {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    },
    # The API server owns ObjectMeta's schema: only `type` (and limits on name/generateName) may be given here.
    "metadata": {"type": "object"},
}


def crd(resource: Resource) -> dict[str, Any]:
    """The CustomResourceDefinition of one Kind."""
    spec = structural_schema(resource.spec, "spec")
    spec["description"] = str(spec.get("description") or f"Desired state of the {resource.kind}.")
    status = structural_schema(resource.status, "status")
    status["description"] = str(status.get("description") or f"Observed state of the {resource.kind}.")
    metadata: Schema = dict(_OBJECT_META["metadata"])
    name_schema = getattr(resource.module, "NAME_SCHEMA", None)
    if name_schema:
        # Kinds whose name becomes a Service name are held to what a Service accepts, at admission.
        metadata["properties"] = {"name": {"type": "string", **name_schema}}
    root: Schema = {
        "type": "object",
        "description": resource.description,
        "properties": {**_OBJECT_META, "metadata": metadata, "spec": spec, "status": status},
    }
    if resource.required_spec:
        root["required"] = ["spec"]
    module = resource.module
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{resource.plural}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "croupier"},
        },
        "spec": {
            "group": GROUP,
            "names": {
                "kind": resource.kind,
                "listKind": f"{resource.kind}List",
                "plural": resource.plural,
                "singular": str(module.SINGULAR),
                "shortNames": list(module.SHORT_NAMES),
                "categories": [CATEGORY],
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(module.PRINTER_COLUMNS),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


_HEADER = (
    "# Generated by `python -m croupier.generators.crdgen` from api/{module}.py.\n"
    "# Do not edit: change the model, then regenerate.\n"
)


class _Dumper(yaml.SafeDumper):
    """Block style, long lines kept whole, multi-line strings as literal blocks."""


def _str_representer(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def render(resource: Resource) -> str:
    """The CRD of one Kind as the YAML text committed in crds/."""
    module = resource.module.__name__.rsplit(".", 1)[-1]
    body = yaml.dump(crd(resource), Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)
    return _HEADER.format(module=module) + body


# kustomize also reads a file named `Kustomization`; `kubectl apply -f crds/` skips it (no .yaml/.yml/.json
# extension), so both `-k crds` and `-f crds/` work.
KUSTOMIZATION = "Kustomization"


def render_kustomization() -> str:
    """``crds/Kustomization``: the CRDs as one kustomize resource (``config/default`` refers to the folder)."""
    body = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(resource.filename for resource in RESOURCES),
    }
    header = (
        "# Generated by `python -m croupier.generators.crdgen`: every CRD, for `kubectl apply --server-side -k crds`\n"
        "# (named without .yaml so that `kubectl apply -f crds/` reads the CRDs only).\n"
        "# Do not edit: change the models in api/, then regenerate.\n"
    )
    return header + yaml.dump(body, Dumper=_Dumper, sort_keys=False)


def render_all() -> dict[str, str]:
    """File name -> YAML text for every Kind, and the kustomization that lists them."""
    files = {resource.filename: render(resource) for resource in RESOURCES}
    files[KUSTOMIZATION] = render_kustomization()
    return files


def render_docs() -> dict[str, str]:
    """File name -> Markdown API reference for every Kind (docs/api/)."""
    return {
        f"{resource.plural}.md": reference.render(crd(resource), resource.module.__name__.rsplit(".", 1)[-1])
        for resource in RESOURCES
    }


# devtools/generators/crdgen.py: a development tool, only ever run from a checkout.
_REPO = Path(__file__).resolve().parents[2]


def default_output_dir() -> Path:
    """``crds/`` of the checkout this package lives in (the one place the CRDs live; kustomize reads it too)."""
    return _REPO / "crds"


def default_docs_dir() -> Path:
    """``docs/api/`` of the checkout this package lives in."""
    return _REPO / "docs" / "api"


_GENERATED_MARK = "Generated by `python -m croupier.generators.crdgen`"


def _diff(directory: Path, expected: dict[str, str], owned_glob: str) -> list[str]:
    diffs: list[str] = []
    for name, text in expected.items():
        path = directory / name
        current = path.read_text() if path.exists() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"{path} (committed)",
                        tofile=f"{path} (generated)",
                    )
                )
                or f"{path}: differs\n"
            )
    for stale in sorted(directory.glob(owned_glob)):
        if stale.name not in expected and _GENERATED_MARK in stale.read_text()[:200]:
            diffs.append(f"{stale}: no model generates this file any more; delete it\n")
    return diffs


def drift(directory: Path, docs_directory: Path | None = None) -> list[str]:
    """Unified diffs between the committed CRDs (and, if given, the API reference) and freshly generated ones."""
    diffs = _diff(directory, render_all(), f"{GROUP}_*.yaml")
    if docs_directory is not None:
        diffs += _diff(docs_directory, render_docs(), "*.md")
    return diffs


def _write(directory: Path, files: dict[str, str]) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in files.items():
        path = directory / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def write(directory: Path, docs_directory: Path | None = None) -> list[Path]:
    """Write the CRDs (and the API reference); returns the files that changed."""
    written = _write(directory, render_all())
    if docs_directory is not None:
        written += _write(docs_directory, render_docs())
    return written


_PROG = "python -m croupier.generators.crdgen"


def main(argv: list[str] | None = None, out: Callable[[str], object] = sys.stdout.write) -> int:
    parser = argparse.ArgumentParser(prog=_PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 with a diff when the files drift from the models"
    )
    parser.add_argument(
        "--output-dir", type=Path, default=None, help="where the CRDs live (default: crds/ of this checkout)"
    )
    parser.add_argument(
        "--docs-dir",
        type=Path,
        default=None,
        help="where the Markdown API reference lives (default: docs/api/ of this checkout; with --output-dir: none)",
    )
    args = parser.parse_args(argv)
    directory: Path = args.output_dir or default_output_dir()
    docs: Path | None = args.docs_dir or (None if args.output_dir else default_docs_dir())
    try:
        if args.check:
            diffs = drift(directory, docs)
            for diff in diffs:
                out(diff)
            if diffs:
                out(f"crdgen: {len(diffs)} file(s) drift from the models; regenerate with {_PROG}\n")
                return 1
            where = f"{directory}" + (f" and {docs}" if docs else "")
            out(f"crdgen: {len(RESOURCES)} CRDs in {where} match the models\n")
            return 0
        for path in write(directory, docs):
            out(f"crdgen: wrote {path}\n")
        return 0
    except SchemaError as error:
        out(f"crdgen: {error}\n")
        return 2


if __name__ == "__main__":
    sys.exit(main())
