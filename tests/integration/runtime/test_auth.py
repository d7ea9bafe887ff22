"""A runtime process with authentication on: scopes per route, 401/403 in the JSON error shape, open probes and
metrics, a token rotation picked up without a restart, and no token in the log."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import RuntimeProcess, write_policy

TOKENS = {"decide": "tok-decide-5f1c9a", "rewards": "tok-rewards-77d0e2", "admin": "tok-admin-c4b8a1"}


def write_tokens(directory: Path, tokens: dict[str, str], version: int) -> None:
    """As the kubelet writes a Secret volume: a new timestamped folder, ..data swapped atomically, key symlinks."""
    data = directory / f"..2026_11_30_v{version}"
    data.mkdir()
    for key, value in tokens.items():
        (data / key).write_text(value + "\n")
    tmp = directory / "..data_tmp"
    tmp.symlink_to(data.name)
    tmp.replace(directory / "..data")
    for key in tokens:
        if not (directory / key).is_symlink():
            (directory / key).symlink_to(f"..data/{key}")


def headers(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_routes_need_a_token_with_their_scope(tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]) -> None:
    secret = tmp_path / "auth"
    secret.mkdir()
    write_tokens(secret, TOKENS, 1)
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml"), args=["--auth-dir", str(secret)]).start()
    with httpx.Client(base_url=runtime.url, timeout=5) as client:
        for path in ("/healthz", "/readyz", "/metrics", "/openapi.json"):
            assert client.get(path).status_code == 200, path

        # The served document declares the scheme and each operation's scope, so generated clients send the token.
        document = client.get("/openapi.json").json()
        assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
        needs = {
            path: ops["post" if "post" in ops else "get"].get("security") for path, ops in document["paths"].items()
        }
        assert needs["/v1/decide"] == [{"bearer": ["decide"]}]
        assert needs["/v1/rewards"] == [{"bearer": ["rewards"]}]
        assert needs["/v1/stats"] == [{"bearer": ["admin"]}]
        assert needs["/healthz"] is None and needs["/metrics"] is None
        assert set(document["paths"]["/v1/decide"]["post"]["responses"]) >= {"401", "403"}

        missing = client.post("/v1/decide", json={})
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="croupier"'
        assert missing.json()["status"] == 401
        assert missing.json()["error"] == "Unauthorized"

        unknown = client.get("/v1/stats", headers=headers("tok-admin-wrong"))
        assert unknown.status_code == 401
        assert 'error="invalid_token"' in unknown.headers["www-authenticate"]

        wrong_scope = client.post("/v1/decide", json={}, headers=headers(TOKENS["admin"]))
        assert wrong_scope.status_code == 403
        assert wrong_scope.json() == {
            "status": 403,
            "error": "Forbidden",
            "message": "the token does not grant the decide scope this route needs",
        }
        assert 'scope="decide"' in wrong_scope.headers["www-authenticate"]

        decision = client.post("/v1/decide", json={}, headers=headers(TOKENS["decide"]))
        assert decision.status_code == 200, decision.text
        decision_id = decision.json()["decisionId"]
        assert (
            client.post(
                "/v1/rewards", json={"decisionId": decision_id, "reward": 1}, headers=headers(TOKENS["decide"])
            ).status_code
            == 403
        )
        reward = client.post(
            "/v1/rewards", json={"decisionId": decision_id, "reward": 1}, headers=headers(TOKENS["rewards"])
        )
        assert reward.status_code == 200, reward.text
        assert client.get("/v1/stats", headers=headers(TOKENS["rewards"])).status_code == 403
        stats = client.get("/v1/stats", headers=headers(TOKENS["admin"]))
        assert stats.status_code == 200
        assert stats.json()["totals"]["decisions"] >= 1

        # Rotation: the new token goes in beside the old one, the clients move, the old one goes; no restart.
        write_tokens(secret, {**TOKENS, "decide": "tok-decide-next-8e2b\n" + TOKENS["decide"]}, 2)
        wait_until(
            lambda: client.post("/v1/decide", json={}, headers=headers("tok-decide-next-8e2b")).status_code == 200
        )
        assert client.post("/v1/decide", json={}, headers=headers(TOKENS["decide"])).status_code == 200
        write_tokens(secret, {**TOKENS, "decide": "tok-decide-next-8e2b"}, 3)
        wait_until(lambda: client.post("/v1/decide", json={}, headers=headers(TOKENS["decide"])).status_code == 401)
        assert client.post("/v1/decide", json={}, headers=headers("tok-decide-next-8e2b")).status_code == 200
    assert runtime.process is not None and runtime.process.poll() is None  # the same process all along
    runtime.stop()
    log = runtime.log.read_text()
    assert "authentication tokens loaded" in log
    for token in [*TOKENS.values(), "tok-decide-next-8e2b", "tok-admin-wrong"]:
        assert token not in log


def test_without_a_token_directory_the_runtime_serves_openly_and_says_so(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess]
) -> None:
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml")).start()
    assert httpx.post(f"{runtime.url}/v1/decide", json={}, timeout=5).status_code == 200
    document = httpx.get(f"{runtime.url}/openapi.json", timeout=5).json()
    assert "securitySchemes" not in document["components"]
    assert "security" not in document["paths"]["/v1/decide"]["post"]
    runtime.stop()
    assert "authentication is off" in runtime.log.read_text()


@pytest.mark.parametrize(
    ("spec", "argv", "message"),
    [
        ({"auth": {"mode": "Disabled"}}, ["--auth-dir", "."], "spec.auth.mode is Disabled"),
        ({}, ["--auth-dir", "/nonexistent/croupier-auth"], "does not exist"),
    ],
)
def test_contradictory_or_missing_auth_refuses_to_start(
    tmp_path: Path, runtime_process: Callable[..., RuntimeProcess], spec: dict[str, Any], argv: list[str], message: str
) -> None:
    runtime = runtime_process(write_policy(tmp_path / "policy.yaml", **spec), args=argv).launch()
    assert runtime.process is not None
    assert runtime.process.wait(timeout=30) == 2
    assert message in runtime.log.read_text()


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("the condition did not hold in time")
        time.sleep(0.1)
