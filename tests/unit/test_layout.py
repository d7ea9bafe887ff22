"""The repo's top-level folders never shadow the standard library, and every package is listed for the wheel.

What the wheel holds, built and installed, is tests/integration/test_wheel.py's.
"""

import tomllib
from pathlib import Path

import pytest

import croupier.api
import croupier.devcluster.cli
import croupier.generators.crdgen
import croupier.operator
import croupier.runtime
import croupier.templates

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def test_operator_folder_has_no_top_level_init() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()


@pytest.mark.parametrize(
    ("package", "folder"),
    [(croupier.operator, "operator"), (croupier.runtime, "runtime"), (croupier.api, "api")],
    ids=["operator", "runtime", "api"],
)
def test_architecture_folders_install_under_the_croupier_namespace(package: object, folder: str) -> None:
    assert Path(next(iter(package.__path__))).resolve() == ROOT / folder  # type: ignore[attr-defined]


@pytest.mark.parametrize("project", [ROOT, ROOT / "devtools"], ids=["croupier", "croupier-devtools"])
def test_every_subpackage_is_listed_for_the_wheel(project: Path) -> None:
    setuptools = tomllib.loads((project / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools["package-dir"]
    found = set(mapping)
    for package, folder in mapping.items():
        for init in (project / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(project / folder)
            if relative.parts and "__pycache__" not in relative.parts:
                found.add(".".join([package, *relative.parts]))
    assert found == set(setuptools["packages"]), f"[tool.setuptools] packages must list exactly {sorted(found)}"


def test_development_tools_keep_their_import_names_from_their_own_folder() -> None:
    assert Path(croupier.devcluster.cli.__file__).parent == ROOT / "devtools" / "devcluster"
    assert Path(croupier.generators.crdgen.__file__).parent == ROOT / "devtools" / "generators"
    assert croupier.templates.directory() == ROOT / "templates"
