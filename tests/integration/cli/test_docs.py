"""The examples of docs/cli.md for `get`, `decide`, `reward` and the kubectl plugin, run as written: against the local
control plane (the doc's namespace `games` is the test's namespace here, holding the examples with a status) and a
runtime serving examples/decisionpolicy-thompson.yaml (the doc's http://127.0.0.1:8080)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest

from ..runtime.conftest import RuntimeProcess
from .conftest import ROOT

DOC = (ROOT / "docs" / "cli.md").read_text()
COMMANDS = ("croupier get", "croupier decide", "croupier reward", "kubectl croupier")


def console_blocks() -> list[list[tuple[str, list[str]]]]:
    """Each console block with our commands: (command, the lines the doc shows as its output)."""
    blocks = []
    for block in re.findall(r"```console\n(.*?)```", DOC, re.DOTALL):
        steps: list[tuple[str, list[str]]] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            elif steps:
                steps[-1][1].append(line)
        if steps and all(command.startswith(COMMANDS) for command, _ in steps):
            blocks.append(steps)
    return blocks


def get_output() -> str:
    """The output block the doc shows for `croupier get -n games`."""
    match = re.search(r"prints one summary table per kind, then a table per resource:\n\n```\n(.*?)```", DOC, re.DOTALL)
    assert match is not None
    return match.group(1)


@pytest.fixture
def policy_runtime(tmp_path: Path) -> object:
    runtime = RuntimeProcess(ROOT / "examples" / "decisionpolicy-thompson.yaml", tmp_path / "state").start(120)
    yield runtime
    runtime.stop()


def run(env: dict[str, str], command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(shlex.split(command), env=env, capture_output=True, text=True, timeout=120, check=False)


def test_the_doc_has_the_examples() -> None:
    commands = [command for block in console_blocks() for command, _ in block]
    for prefix in COMMANDS:
        assert any(command.startswith(prefix) for command in commands), prefix


def test_doc_examples(
    cli_env: dict[str, str],
    namespace: str,
    resources: dict[str, str],
    policy_runtime: RuntimeProcess,
) -> None:
    ids: dict[str, str] = {}
    for block in console_blocks():
        for command, shown in block:
            real = command.replace("-n games", f"-n {namespace}").replace("http://127.0.0.1:8080", policy_runtime.url)
            for documented, actual in ids.items():
                real = real.replace(documented, actual)
            result = run(cli_env, real)
            assert result.returncode == 0, f"{real}\n{result.stderr}"
            if command.startswith("croupier get") and not shown:
                printed = result.stdout.replace(namespace, "games")
                assert [line.rstrip() for line in printed.splitlines()] == [
                    line.rstrip() for line in get_output().splitlines()
                ], printed
            elif command.startswith("kubectl croupier get"):
                assert "red-banner" in result.stdout
            if shown:
                expected, answer = json.loads(shown[0]), json.loads(result.stdout)
                assert set(answer) == set(expected), command
                if "decisionId" in expected:
                    ids[expected["decisionId"]] = answer["decisionId"]
                    assert answer["arm"] in answer["probabilities"]
                    assert set(answer["probabilities"]) == set(expected["probabilities"])
                else:
                    assert answer == {**expected, "results": answer["results"]}
                    assert [r["outcome"] for r in answer["results"]] == [r["outcome"] for r in expected["results"]]
