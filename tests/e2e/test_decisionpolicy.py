"""The README's walk-through on a real cluster: apply the example, wait for Ready, decide and reward over HTTP."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .kind import KindCluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "decisionpolicy-thompson.yaml"
POLICY = "homepage-banner"

# Image builds and a cold kind cluster take minutes; the session fixture's time counts towards the first test.
pytestmark = pytest.mark.timeout(3600)


@pytest.fixture
def namespace(kind_cluster: KindCluster) -> Iterator[str]:
    name = f"e2e-{uuid.uuid4().hex[:8]}"
    kind_cluster.kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        # Delete the policy while the operator runs (it releases its finalizer), then the namespace.
        kind_cluster.kubectl("-n", name, "delete", "dp", "--all", "--wait=true", "--timeout=120s")
        kind_cluster.kubectl("delete", "namespace", name, "--wait=false")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _status(cluster: KindCluster, namespace: str) -> dict[str, object]:
    body = json.loads(cluster.kubectl("-n", namespace, "get", "dp", POLICY, "-o", "json").stdout)
    status: dict[str, object] = body.get("status", {})
    return status


TOKENS = {"decide": "e2e-decide-3d1f", "rewards": "e2e-rewards-8a2c", "admin": "e2e-admin-5b9e"}


def test_a_decisionpolicy_becomes_ready_decides_and_learns(kind_cluster: KindCluster, namespace: str) -> None:
    # spec.auth's defaults: the Secret <name>-auth with keys decide, rewards and admin (the operator probes with admin,
    # once the Secret carries the opt-in label).
    literals = [f"--from-literal={key}={token}" for key, token in TOKENS.items()]
    kind_cluster.kubectl("-n", namespace, "create", "secret", "generic", f"{POLICY}-auth", *literals)
    kind_cluster.kubectl("-n", namespace, "label", "secret", f"{POLICY}-auth", "croupier.dev/runtime-auth=true")
    kind_cluster.kubectl("-n", namespace, "apply", "-f", str(EXAMPLE))
    kind_cluster.kubectl(
        "-n", namespace, "wait", "--for=condition=Ready", f"dp/{POLICY}", "--timeout=300s", timeout=330
    )
    assert _status(kind_cluster, namespace)["endpoint"] == f"http://{POLICY}.{namespace}.svc:80"

    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", "--kubeconfig", str(kind_cluster.kubeconfig), "-n", namespace, "port-forward",
         f"svc/{POLICY}", f"{port}:80", "--address", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        assert "Forwarding from" in forward.stdout.readline(), "kubectl port-forward did not start"
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10, trust_env=False) as http:
            assert http.post("/v1/decide", json={"unitId": "user-42"}).status_code == 401
            decide = {"authorization": f"Bearer {TOKENS['decide']}"}
            decision = http.post("/v1/decide", json={"unitId": "user-42"}, headers=decide)
            assert decision.status_code == 200, decision.text
            body = decision.json()
            arms = {"blue-banner", "green-banner", "red-banner"}
            assert body["arm"] in arms and set(body["probabilities"]) == arms
            assert abs(sum(body["probabilities"].values()) - 1) < 1e-6
            assert re.fullmatch(r"g1-\S+", body["policyVersion"]), body["policyVersion"]
            rewards = {"authorization": f"Bearer {TOKENS['rewards']}"}
            reward = http.post("/v1/rewards", json={"decisionId": body["decisionId"], "reward": 1}, headers=rewards)
            assert reward.status_code == 200, reward.text
            assert reward.json()["accepted"] == 1
    finally:
        forward.terminate()
        forward.wait(timeout=10)

    # The operator reads the runtime's counters on its resync (15 s by default) and writes them into status.
    deadline = time.monotonic() + 120
    totals: object = None
    while time.monotonic() < deadline:
        totals = _status(kind_cluster, namespace).get("totals")
        if isinstance(totals, dict) and totals.get("decisions") == 1 and totals.get("rewards") == 1:
            break
        time.sleep(3)
    assert isinstance(totals, dict), totals
    assert (totals.get("decisions"), totals.get("rewards"), totals.get("defaultRewards", 0)) == (1, 1, 0), totals
