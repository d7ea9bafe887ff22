"""The repo's top-level folders must never shadow the standard library."""

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
