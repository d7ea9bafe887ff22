"""The README shows the very files it tells people to apply."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(heading: str) -> str:
    start = README.index(f"\n## {heading}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_readme_shows_the_example_it_applies() -> None:
    section = _section("A DecisionPolicy")
    (applied,) = set(re.findall(r"kubectl apply -f (examples/\S+\.yaml)", section))
    shown = re.search(r"```yaml\n(.*?)```", section, re.DOTALL)
    assert shown is not None, "the section shows no YAML"
    assert shown.group(1) == (ROOT / applied).read_text(), f"the README's YAML differs from {applied}"


def test_every_endpoint_the_readme_uses_is_defined_first() -> None:
    section = _section("A DecisionPolicy")
    first_use = section.index("$ENDPOINT/")
    assert re.search(r"^\$ ENDPOINT=http://127\.0\.0\.1:\d+$", section[:first_use], re.MULTILINE)
