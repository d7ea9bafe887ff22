"""Render child manifests from ``templates/<kind>/*.yaml.j2``.

Values enter the YAML only through ``|tojson`` (a JSON value is a valid YAML flow value), so a name or an image can
never change the document's structure; an undefined variable is an error (``StrictUndefined``), never an empty string.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
import yaml

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class TemplateError(RuntimeError):
    """A template failed to render or did not produce one YAML mapping."""


def _tojson(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


@lru_cache(maxsize=8)
def environment(templates_dir: Path) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tojson"] = _tojson
    return env


def render_manifest(templates_dir: Path, name: str, context: dict[str, Any]) -> dict[str, Any]:
    """Render one template into one Kubernetes object (a dict)."""
    try:
        text = environment(templates_dir).get_template(name).render(**context)
    except jinja2.TemplateError as error:
        raise TemplateError(f"{name}: {error}") from error
    document = yaml.load(text, Loader=_Loader)
    if not isinstance(document, dict):
        raise TemplateError(f"{name}: rendered to {type(document).__name__}, expected one YAML mapping")
    return document
