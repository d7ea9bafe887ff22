"""The assignment vectors reproduced by a second implementation: hack/assignment/check-vectors.mjs, JavaScript written
the way GrowthBook's SDK hashes (charCodeAt, shift-and-add multiplication, double-precision ranges), run by Node."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[4]
VECTORS = ROOT / "docs" / "api" / "assignment-vectors.json"
CHECKER = ROOT / "hack" / "assignment" / "check-vectors.mjs"


def _check(path: Path) -> tuple[int, dict[str, object]]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs)")
    done = subprocess.run([node, str(CHECKER), str(path)], capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, json.loads(done.stdout)


def test_javascript_reproduces_every_vector() -> None:
    code, result = _check(VECTORS)
    document = json.loads(VECTORS.read_text())
    assert result == {"checked": len(document["hash"]) + len(document["assign"]), "failures": []}
    assert code == 0


def test_javascript_checker_catches_a_wrong_vector(tmp_path: Path) -> None:
    document = json.loads(VECTORS.read_text())
    document["hash"][0]["bucket"] += 1
    document["assign"][-1]["variant"] = "nobody"
    tampered = tmp_path / "vectors.json"
    tampered.write_text(json.dumps(document))
    code, result = _check(tampered)
    assert code == 1
    assert len(result["failures"]) == 2  # type: ignore[arg-type]
