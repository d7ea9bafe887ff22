"""Every Python example of docs/sdk-python.md runs as written against real runtimes started from the repository's
examples (the policy runtime the doc calls at :8080, the experiment runtime at :8090, on free ports here)."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import START_TIMEOUT, ExperimentProcess, RuntimeProcess

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "sdk-python.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 7


@pytest.fixture(scope="module")
def runtimes(tmp_path_factory: pytest.TempPathFactory) -> object:
    state = tmp_path_factory.mktemp("docs")
    policy = RuntimeProcess(ROOT / "examples" / "decisionpolicy-thompson.yaml", state / "policy").start(START_TIMEOUT)
    experiment = ExperimentProcess(
        ROOT / "examples" / "experiment-abn.yaml",
        state / "experiment",
        args=["--policy-url", f"homepage-banner={policy.url}"],
    ).start(START_TIMEOUT)
    yield {"http://127.0.0.1:8080": policy.url, "http://127.0.0.1:8090": experiment.url}
    experiment.stop()
    policy.stop()


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, runtimes: dict[str, str], run_example: Callable[[str], str]) -> None:
    code = BLOCKS[index]
    for documented, real in runtimes.items():
        code = code.replace(documented, real)
    run_example(code)


@pytest.fixture
def run_example() -> Callable[[str], str]:
    def run(code: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
        )
        assert result.returncode == 0, f"{code}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        return result.stdout

    return run
