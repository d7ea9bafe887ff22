"""`croupier get` and `kubectl croupier get` against the local control plane: resources with their status tables,
the kubeconfig, context and namespace chosen as kubectl chooses them, and clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import yaml

from .conftest import croupier_binary


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_get_shows_every_kind_with_its_tables(
    cli_env: dict[str, str], namespace: str, resources: dict[str, str]
) -> None:
    result = run(cli_env, croupier_binary(), "get", "-n", namespace)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for title in ("decisionpolicies in", "experiments in", "modeldeployments in"):
        assert title in out
    # per-arm table
    assert "DecisionPolicy homepage-banner: arms" in out
    green = next(line for line in out.splitlines() if "green-banner" in line and "9990" in line)
    assert "0.07" in green and "0.67" in green
    assert "15342" in out
    # per-variant table
    assert f"Experiment {resources['experiments']}: variants" in out
    bandit = next(line for line in out.splitlines() if line.count("bandit") and "995" in line)
    assert "+29.60%" in bandit and "0.012" in bandit and "violated: refunds" in bandit
    assert "control=34,bandit=33,ranker-v2=33" in out
    # per-version table
    assert f"ModelDeployment {resources['modeldeployments']}: versions" in out
    assert any("canary" in line and "AVAILABLE" in line and "10%" in line for line in out.splitlines())


def test_kubectl_plugin(cli_env: dict[str, str], namespace: str, resources: dict[str, str]) -> None:
    result = run(cli_env, "kubectl", "croupier", "get", "dp", resources["decisionpolicies"], "-n", namespace)
    assert result.returncode == 0, result.stderr
    assert "red-banner" in result.stdout
    assert "experiments in" not in result.stdout
    listed = run(cli_env, "kubectl", "plugin", "list")
    assert "kubectl-croupier" in listed.stdout


def test_kubeconfig_context_and_namespace_as_kubectl(
    cli_env: dict[str, str], namespace: str, resources: dict[str, str], tmp_path: Path
) -> None:
    config = yaml.safe_load(Path(cli_env["KUBECONFIG"]).read_text())
    current = config["current-context"]
    # A second context in another file whose namespace is the test's: chosen with --kubeconfig and --context.
    other = dict(next(c for c in config["contexts"] if c["name"] == current))
    other = {"name": "tests", "context": {**other["context"], "namespace": namespace}}
    config["contexts"].append(other)
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in cli_env.items() if k != "KUBECONFIG"}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config to fall back on

    result = run(env, croupier_binary(), "get", "--kubeconfig", str(path), "--context", "tests", "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert [i["metadata"]["name"] for i in document["DecisionPolicy"]] == [resources["decisionpolicies"]]
    assert document["Experiment"][0]["status"]["winner"] == "bandit"

    # The current context has no namespace: `default` is empty of Croupier resources.
    result = run({**env, "KUBECONFIG": str(path)}, croupier_binary(), "get", "md")
    assert result.returncode == 0, result.stderr
    assert "No Croupier resources in namespace default" in result.stdout

    bad = run(env, croupier_binary(), "get", "--kubeconfig", str(path), "--context", "nope")
    assert bad.returncode == 2
    assert "no context 'nope'" in bad.stderr

    missing = run(env, croupier_binary(), "get", "--kubeconfig", str(path), "--context", "tests", "dp", "absent")
    assert missing.returncode == 1
    assert "DecisionPolicy 'absent' not found" in missing.stderr

    unknown = run(cli_env, croupier_binary(), "get", "pods")
    assert unknown.returncode == 2
    assert "unknown kind 'pods'" in unknown.stderr
