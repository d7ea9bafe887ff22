"""An Experiment runtime with authentication on: each route needs its scope from the keys `spec.auth.tokens` names
(assign decide, outcomes and exposures rewards, stats admin): 401 without a token, 403 with a wrong scope, 200 with
the right one; probes stay open and no token reaches the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from integration.runtime.experiments.conftest import ExperimentProcess, write_experiment
from integration.runtime.test_auth import headers, write_tokens

pytestmark = pytest.mark.integration

# Keys of the spec's own naming, so the test fails if the runtime used the default keys instead of spec.auth.tokens.
TOKENS = {"clients": "exp-tok-assign-31a7", "reporting": "exp-tok-rewards-c90e", "ops": "exp-tok-admin-6b52"}
AUTH = {
    "tokens": [
        {"key": "clients", "scopes": ["decide"]},
        {"key": "reporting", "scopes": ["rewards"]},
        {"key": "ops", "scopes": ["admin"]},
    ]
}


def test_experiment_routes_need_a_token_with_their_scope(
    tmp_path: Path, experiment_process: Callable[..., ExperimentProcess]
) -> None:
    secret = tmp_path / "auth"
    secret.mkdir()
    write_tokens(secret, TOKENS, 1)
    path = write_experiment(tmp_path / "experiment.yaml", auth=AUTH)
    runtime = experiment_process(path, args=["--auth-dir", str(secret)]).start(60)
    assign = {"unitId": "u-1"}
    exposure = {"unitId": "u-2", "variant": "control"}
    outcome = {"unitId": "u-1", "metric": "revenue", "value": 3}
    with httpx.Client(base_url=runtime.url, timeout=10, trust_env=False) as client:
        for probe in ("/healthz", "/readyz", "/metrics"):
            assert client.get(probe).status_code == 200, probe
        for route, body in (("/v1/assign", assign), ("/v1/exposures", exposure), ("/v1/outcomes", outcome)):
            missing = client.post(route, json=body)
            assert missing.status_code == 401, (route, missing.text)
            assert missing.json()["error"] == "Unauthorized"
            assert client.post(route, json=body, headers=headers("exp-tok-unknown")).status_code == 401, route
        assert client.get("/v1/stats").status_code == 401

        wrong = client.post("/v1/assign", json=assign, headers=headers(TOKENS["reporting"]))
        assert wrong.status_code == 403 and 'scope="decide"' in wrong.headers["www-authenticate"]
        assert client.post("/v1/exposures", json=exposure, headers=headers(TOKENS["clients"])).status_code == 403
        assert client.post("/v1/outcomes", json=outcome, headers=headers(TOKENS["ops"])).status_code == 403
        assert client.get("/v1/stats", headers=headers(TOKENS["clients"])).status_code == 403

        assigned = client.post("/v1/assign", json=assign, headers=headers(TOKENS["clients"]))
        assert assigned.status_code == 200, assigned.text
        exposed = client.post("/v1/exposures", json=exposure, headers=headers(TOKENS["reporting"]))
        assert exposed.status_code == 200, exposed.text
        reported = client.post("/v1/outcomes", json=outcome, headers=headers(TOKENS["reporting"]))
        assert reported.status_code == 200 and reported.json()["accepted"] == 1, reported.text
        stats = client.get("/v1/stats", headers=headers(TOKENS["ops"]))
        assert stats.status_code == 200, stats.text
    runtime.stop()
    log = runtime.log.read_text()
    assert "authentication tokens loaded" in log
    for token in [*TOKENS.values(), "exp-tok-unknown"]:
        assert token not in log
