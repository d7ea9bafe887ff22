"""Fixtures for the `croupier` command against the real local control plane: the CRDs installed, and one resource of
each kind in the test's namespace with a status as the operator writes it (through the status subresource)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from croupier.api.common import GROUP, VERSION
from croupier.devcluster.kubectl import Kubectl

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def crds(kubectl: Kubectl) -> Iterator[None]:
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=croupier-tests", "-f", str(ROOT / "crds"))
    names = [f"crd/{p}.{GROUP}" for p in ("decisionpolicies", "experiments", "modeldeployments")]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *names)
    yield


def _ready(reason: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [{"type": "Ready", "status": "True", "reason": reason, "message": "serving", "lastTransitionTime": now}]


STATUSES: dict[str, dict[str, Any]] = {
    "decisionpolicies": {
        "observedGeneration": 1,
        "conditions": _ready("RuntimeReady"),
        "replicas": 1,
        "readyReplicas": 1,
        "armCount": 3,
        "arms": [
            {"name": "blue-banner", "pulls": 5120, "rewards": 5003, "rewardSum": 251.0, "mean": 0.0502,
             "probability": 0.31},
            {"name": "green-banner", "pulls": 9990, "rewards": 9800, "rewardSum": 686.0, "mean": 0.07,
             "probability": 0.67},
            {"name": "red-banner", "pulls": 232, "rewards": 198, "rewardSum": 4.0, "mean": 0.0202,
             "probability": 0.02},
        ],
        "totals": {"decisions": 15342, "rewards": 15001, "defaultRewards": 14210},
        "bestArm": "green-banner",
    },
    "experiments": {
        "observedGeneration": 1,
        "conditions": _ready("Running"),
        "split": "control=34,bandit=33,ranker-v2=33",
        "totalExposures": 3000,
        "srmPValue": 0.41,
        "variants": [
            {"name": "control", "exposures": 1010, "outcomes": 101.0, "mean": 0.1},
            {"name": "bandit", "exposures": 995, "outcomes": 129.0, "mean": 0.1296,
             "lift": {"estimate": 0.296, "lower": 0.05, "upper": 0.54}, "pValue": 0.012,
             "guardrails": [{"name": "latency_ms", "violated": False}, {"name": "refunds", "violated": True}]},
            {"name": "ranker-v2", "exposures": 995, "outcomes": 99.0, "mean": 0.0995,
             "lift": {"estimate": -0.005, "lower": -0.2, "upper": 0.19}, "pValue": 0.97},
        ],
        "winner": "bandit",
    },
    "modeldeployments": {
        "observedGeneration": 1,
        "conditions": _ready("Available"),
        "versions": [
            {"version": 1, "role": "stable", "state": "AVAILABLE", "weight": 90},
            {"version": 2, "role": "canary", "state": "AVAILABLE", "weight": 10},
        ],
        "canaryWeight": 10,
    },
}  # fmt: skip

EXAMPLES = {
    "decisionpolicies": "decisionpolicy-thompson.yaml",
    "experiments": "experiment-abn.yaml",
    "modeldeployments": "modeldeployment-canary.yaml",
}


@pytest.fixture
def resources(k8s_api: client.ApiClient, namespace: str, crds: None) -> dict[str, str]:
    """The examples' three resources created in the namespace, each with a status; returns plural -> name."""
    custom = client.CustomObjectsApi(k8s_api)
    names = {}
    for plural, example in EXAMPLES.items():
        document = yaml.safe_load((ROOT / "examples" / example).read_text())
        document["metadata"]["namespace"] = namespace
        created = custom.create_namespaced_custom_object(GROUP, VERSION, namespace, plural, document)
        name = created["metadata"]["name"]
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, plural, name, {"status": STATUSES[plural]}
        )
        names[plural] = name
    return names


@pytest.fixture(scope="session")
def cli_env(kube_env: dict[str, str]) -> dict[str, str]:
    """KUBECONFIG set, and on PATH: the built kubectl and this environment's scripts (croupier, kubectl-croupier)."""
    scripts = Path(sys.executable).parent
    assert (scripts / "kubectl-croupier").exists(), "kubectl-croupier is not installed (uv sync)"
    env = dict(kube_env)
    env["PATH"] = os.pathsep.join([str(scripts), env["PATH"]])
    env.pop("CROUPIER_URL", None)
    return env


def croupier_binary() -> str:
    found = shutil.which("croupier", path=str(Path(sys.executable).parent))
    assert found is not None
    return found
