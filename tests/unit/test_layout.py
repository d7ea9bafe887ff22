"""The repo's top-level folders must never shadow the standard library."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.unit


def test_import_operator_from_repo_root_is_the_standard_library() -> None:
    # `python -c` puts the current directory first on sys.path: exactly where a top-level operator/ package would win.
    code = "import collections, operator, sys; assert operator.eq(1, 1); print(getattr(operator, '__file__', 'builtin'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert str(ROOT / "operator") not in out.stdout


def test_operator_folder_has_no_top_level_init() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()


def test_architecture_folders_install_under_the_croupier_namespace() -> None:
    import croupier.api
    import croupier.operator
    import croupier.runtime

    assert Path(list(croupier.operator.__path__)[0]).resolve() == ROOT / "operator"
    assert Path(list(croupier.runtime.__path__)[0]).resolve() == ROOT / "runtime"
    assert Path(list(croupier.api.__path__)[0]).resolve() == ROOT / "api"


def test_every_subpackage_is_listed_for_the_wheel() -> None:
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    mapping = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    found = set(mapping)
    for package, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            if "__pycache__" not in relative.parts and relative.parts:
                found.add(".".join([package, *relative.parts]))
    assert found == listed, f"pyproject [tool.setuptools] packages must list exactly {sorted(found)}"


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    import zipfile

    uv = os.environ.get("UV") or shutil.which("uv")  # `uv run` exports UV
    assert uv, "uv is needed to build the wheel"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, package in (("api", "api"), ("operator", "operator"), ("runtime", "runtime")):
        for source in (ROOT / folder).rglob("*.py"):
            assert f"croupier/{package}/{source.relative_to(ROOT / folder)}" in names
