"""The parts of the layout and install checks that run a process: a fresh interpreter from the repo root, the CRD
generator's command line, kustomize (the kubectl built with the local control plane)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from croupier.devcluster.binaries import locate_binaries
from croupier.generators import crdgen

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"


def test_import_operator_from_repo_root_is_the_standard_library() -> None:
    # `python -c` puts the current directory first on sys.path: exactly where a top-level operator/ package would win.
    code = "import collections, operator; assert operator.eq(1, 1); print(getattr(operator, '__file__', 'builtin'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert str(ROOT / "operator") not in out.stdout


def test_check_cli_exits_zero_on_the_repo_and_one_with_a_diff_on_drift(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "croupier.generators.crdgen", "--check"]
    ok = subprocess.run(command, check=False, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr

    out = io.StringIO()
    assert crdgen.main(["--output-dir", str(tmp_path), "--docs-dir", str(tmp_path / "docs")], out=out.write) == 0
    assert (tmp_path / "docs" / "modeldeployments.md").exists()
    target = tmp_path / "croupier.dev_experiments.yaml"
    target.write_text(target.read_text().replace("sha256-v1", "md5"))
    (tmp_path / "croupier.dev_olds.yaml").write_text(f"# {crdgen._GENERATED_MARK} from api/old.py\n")
    (tmp_path / "croupier.dev_handwritten.yaml").write_text("{}\n")  # not ours: never reported
    kustomization = tmp_path / crdgen.KUSTOMIZATION
    kustomization.write_text(kustomization.read_text().replace("- croupier.dev_experiments.yaml\n", ""))
    out = io.StringIO()
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)], out=out.write) == 1
    report = out.getvalue()
    assert any(line.startswith("-") and line.endswith("- md5") for line in report.splitlines()), report
    assert any(line.startswith("+") and line.endswith("- sha256-v1") for line in report.splitlines()), report
    assert "croupier.dev_olds.yaml" in report
    assert "+- croupier.dev_experiments.yaml" in report.splitlines()  # kustomize would skip a CRD
    assert "handwritten" not in report


def test_kustomize_renders_the_default_install() -> None:
    kubectl = str(locate_binaries().path("kubectl"))
    out = subprocess.run([kubectl, "kustomize", str(CONFIG / "default")], capture_output=True, text=True, check=True)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(out.stdout) if d)
    assert ("Deployment", "croupier-operator") in kinds
    assert ("ClusterRole", "croupier-operator") in kinds
    assert ("CustomResourceDefinition", "decisionpolicies.croupier.dev") in kinds
