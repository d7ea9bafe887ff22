"""The production wheel holds the product only, and works installed: templates ship as package data.

The wheel is built once per module, listed, and installed with the locked dependencies into a fresh venv outside the
checkout (offline, from uv's cache); a DecisionPolicy's children are rendered there from the installed templates and
compared with the golden manifests of tests/unit/operator.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
OPERATOR_TESTS = ROOT / "tests" / "unit" / "operator"

# The one place that knows which operator function renders a DecisionPolicy's children: given `body` (the object)
# and `settings` (OperatorSettings), it binds `children`. When the operator's modules move, only this changes.
RENDER_CHILDREN = """
from croupier.operator.decisionpolicy.children import desired_children
from croupier.operator.decisionpolicy.model import parse_policy
children = desired_children(parse_policy(body), settings)
"""

RENDER_SCRIPT = f"""
import json, sys
import yaml
from croupier.operator.settings import OperatorSettings
body = yaml.safe_load(open(sys.argv[1]))
settings = OperatorSettings(runtime_image="ghcr.io/croupier-dev/croupier-runtime:0.1.0")
{RENDER_CHILDREN}
print(json.dumps({{"templates_dir": str(settings.templates_dir), "children": children}}))
"""

# Development tools and anything else that is not the product.
NOT_SHIPPED = ("croupier/devcluster/", "croupier/generators/", "benchmarks/", "tests/", "hack/", "devtools/")


def _uv() -> str:
    # `uv run` exports UV; hack/bootstrap.sh installs uv into ~/.local/bin, which is often not on PATH.
    fallback = Path.home() / ".local" / "bin" / "uv"
    uv = os.environ.get("UV") or shutil.which("uv") or (str(fallback) if fallback.exists() else None)
    if uv is None:
        pytest.fail("uv is needed to build and install the wheel (it lives in ~/.local/bin after `make bootstrap`)")
    return uv


def _clean_env() -> dict[str, str]:
    """The environment without anything that could point the venv back at the checkout."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("CROUPIER_")}


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    bin: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    uv = _uv()
    work = tmp_path_factory.mktemp("wheel")
    # Build from a copy of exactly the files a clone would have (tracked or new, never ignored): setuptools reuses a
    # stale build/ folder in the checkout, which could ship a module that no longer exists, or hide a missing one.
    source = work / "source"
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    for name in filter(None, listed.split("\0")):
        if (ROOT / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    dist = work / "dist"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(dist), str(source)], check=True, capture_output=True, timeout=300
    )
    (wheel,) = dist.glob("croupier-*.whl")
    venv = work / "venv"
    env = _clean_env()
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], env=env, check=True, capture_output=True)
    # The locked third-party dependencies (offline: `uv sync` fetched these very files into uv's cache), then the
    # wheel itself without dependencies: the venv holds exactly what a production install holds.
    locked = subprocess.run(
        [uv, "sync", "--frozen", "--offline", "--no-dev", "--no-install-workspace", "--inexact"],
        cwd=ROOT,
        check=False,
        env={**env, "UV_PROJECT_ENVIRONMENT": str(venv)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert locked.returncode == 0, f"offline install from uv's cache failed (run `make sync` first):\n{locked.stderr}"
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--offline", "--no-deps", "--python", str(python), str(wheel)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    yield Installed(wheel, python, venv / "bin")


def _names(wheel: Path) -> set[str]:
    return set(zipfile.ZipFile(wheel).namelist())


def test_the_wheel_holds_the_product_and_no_development_tools(installed: Installed) -> None:
    names = _names(installed.wheel)
    for package, folder in SETUPTOOLS["package-dir"].items():
        prefix = package.replace(".", "/")
        for source in (ROOT / folder).rglob("*"):
            if source.is_file() and source.suffix in (".py", ".j2") and "__pycache__" not in source.parts:
                assert f"{prefix}/{source.relative_to(ROOT / folder)}" in names
    assert {"croupier/api", "croupier/operator", "croupier/runtime", "croupier/templates"} <= {
        name.rsplit("/", 1)[0] for name in names if name.startswith("croupier/") and name.count("/") == 2
    }
    assert "croupier/templates/decisionpolicy/deployment.yaml.j2" in names
    shipped_tools = sorted(n for n in names if n.startswith(NOT_SHIPPED) or "crdgen" in n or n.endswith("reference.py"))
    assert shipped_tools == [], "development tools leaked into the production wheel"
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    scripts = zipfile.ZipFile(installed.wheel).read(entry_points).decode()
    assert "croupier-runtime" in scripts and "croupier-operator" in scripts
    assert "croupier-devcluster" not in scripts
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def _in_venv(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    # Run from a folder outside the checkout: nothing of the repository is importable from there.
    cwd = installed.python.parents[2]
    return subprocess.run(
        [str(installed.python), *args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_installed_operator_renders_a_decisionpolicy_from_its_packaged_templates(installed: Installed) -> None:
    source = OPERATOR_TESTS / "policies" / "minimal.yaml"
    result = _in_venv(installed, "-c", RENDER_SCRIPT, str(source))
    assert result.returncode == 0, result.stderr
    rendered: dict[str, Any] = json.loads(result.stdout)
    site = installed.python.parents[1] / "lib"
    assert Path(rendered["templates_dir"]).is_relative_to(site), rendered["templates_dir"]
    golden = [d for d in yaml.safe_load_all((OPERATOR_TESTS / "golden" / "minimal.yaml").read_text()) if d]
    assert rendered["children"] == golden


def test_development_tools_are_not_installed_with_the_product(installed: Installed) -> None:
    for module in ("croupier.devcluster", "croupier.generators.crdgen"):
        result = _in_venv(installed, "-c", f"import {module}")
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr, (module, result.stderr)
    assert not (installed.bin / "croupier-devcluster").exists()
    runtime = subprocess.run(
        [str(installed.bin / "croupier-runtime"), "--help"],
        env=_clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert runtime.returncode == 0 and "--policy" in runtime.stdout, runtime.stderr
