"""An Experiment's life end to end on the real control plane with a real runtime process: a winner's Event, then
Concluded with KeepWinner serving the winner to every unit; a guardrail violation acting (Pause and Conclude) through
the served config, with its Warning Event; Redis storage reaching two pods (their budget keeps one up) and holding the
runtime's counts, which a second runtime process reports alike."""

from __future__ import annotations

import json
import random
from pathlib import Path

import httpx
import pytest
import redis
import yaml
from integration.operator.test_experiment import AB, Experiments, experiment
from integration.operator.test_experiment import experiments as experiments  # noqa: PLC0414 - a fixture, by name
from integration.ops.health_recorder import record
from integration.runtime.conftest import server_port, start_redis
from integration.runtime.experiments.conftest import ExperimentProcess

from croupier.api.assignment import assign
from croupier.devcluster.waiting import wait_for

pytestmark = pytest.mark.integration

SALT = "it-salt"


@pytest.fixture
def lifecycle(request: pytest.FixtureRequest) -> Experiments:
    """`test_experiment.py`'s helper (the operator, a namespace, the runtime port), under a name of this module."""
    helper: Experiments = request.getfixturevalue("experiments")
    return helper


def _events(helper: Experiments, name: str) -> dict[str, str]:
    items = helper.kubectl.json("get", "events", "-n", helper.namespace)["items"]
    return {str(e["reason"]): str(e["message"]) for e in items if e["involvedObject"].get("name") == name}


def _wait_event(helper: Experiments, name: str, reason: str) -> str:
    try:
        wait_for(lambda: reason in _events(helper, name), timeout=20, what=f"the {reason} Event")
    except TimeoutError:
        raise AssertionError(f"Event reasons of {name}: {sorted(_events(helper, name))}") from None
    return _events(helper, name)[reason]


def test_a_winner_posts_its_event_and_concluded_keeps_the_winner(lifecycle: Experiments) -> None:
    experiments = lifecycle
    experiments.apply(experiment("shoes", experiments.namespace, AB, onConclude="KeepWinner"))
    experiments.serve("shoes", "Running")
    experiments.wait_condition("shoes", "Ready", "True", "InsufficientTraffic")
    experiments.traffic(4000, {"a": 0.10, "b": 0.16})
    experiments.wait_condition("shoes", "Ready", "True", "WinnerFound")
    assert _wait_event(experiments, "shoes", "WinnerFound").startswith("b beats a")

    patch = json.dumps({"spec": {"state": "Concluded"}})
    experiments.kubectl("patch", "experiment", "shoes", "-n", experiments.namespace, "--type=merge", "-p", patch)
    served = yaml.safe_load(experiments.served("shoes", "Concluded"))
    assert served["status"]["winner"] == "b"
    experiments.serve("shoes", "Concluded")  # the pods roll to the concluded config
    body = experiments.wait_condition("shoes", "Ready", "True", "Concluded")
    record(body)
    assert body["status"]["split"] == "b=100" and body["status"]["winner"] == "b"
    assert "serving b=100" in _wait_event(experiments, "shoes", "Concluded")
    with httpx.Client(base_url=experiments.runtime.url, timeout=10, trust_env=False) as http:
        variants = {http.post("/v1/assign", json={"unitId": f"late-{i}"}).json()["variant"] for i in range(40)}
    assert variants == {"b"}  # every unit, including those hashed to a, gets the winner


@pytest.mark.parametrize(("action", "serves"), [("Pause", "Paused"), ("Conclude", "Concluded")])
def test_a_violated_guardrail_acts_through_the_served_config(lifecycle: Experiments, action: str, serves: str) -> None:
    experiments = lifecycle
    name = f"guard-{action.lower()}"
    guardrail = {"name": "latency_ms", "type": "Continuous", "direction": "Decrease", "threshold": 0.05}
    experiments.apply(experiment(name, experiments.namespace, AB, guardrails=[guardrail], onGuardrailViolation=action))
    experiments.serve(name, "Running")
    # b is 40% slower: far beyond the 5% the guardrail tolerates.
    rng = random.Random(3)
    exposures, outcomes = [], []
    for i in range(2000):
        unit = f"user-{i}"
        variant = assign(unit, SALT, [("a", 50), ("b", 50)])
        exposures.append({"unitId": unit, "variant": variant})
        latency = rng.gauss(100.0 if variant == "a" else 140.0, 10.0)
        outcomes.append({"unitId": unit, "metric": "latency_ms", "value": latency, "eventId": f"l-{i}"})
    with httpx.Client(base_url=experiments.runtime.url, timeout=30, trust_env=False) as http:
        for start in range(0, 2000, 1000):
            http.post("/v1/exposures", json={"exposures": exposures[start : start + 1000]}).raise_for_status()
            http.post("/v1/outcomes", json={"outcomes": outcomes[start : start + 1000]}).raise_for_status()
    # The operator acts through the served config, never the spec; the pods roll to it.
    assert yaml.safe_load(experiments.served(name, serves))["spec"]["state"] == serves
    experiments.serve(name, serves)
    body = experiments.wait_condition(name, "Degraded", "True", "GuardrailViolated")
    if action == "Pause":  # health-check testdata (one object per state)
        record(body)
    assert body["spec"].get("state", "Running") == "Running"
    recorded = body["status"]["guardrailAction"]
    assert (recorded["variant"], recorded["metric"], recorded["action"]) == ("b", "latency_ms", action)
    assert recorded["lift"]["lower"] > 0.05  # the numbers that tripped it
    message = _wait_event(experiments, name, "GuardrailViolated")
    assert f"action {action}" in message and f"serving {serves}" in message


def test_redis_storage_reaches_the_pod_and_the_runtime_counts_in_redis(lifecycle: Experiments, tmp_path: Path) -> None:
    experiments = lifecycle
    port = server_port()
    redis_server = start_redis(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        storage = {"backend": "Redis", "redis": {"url": url, "keyPrefix": "it:exp:shared"}}
        serving = {"replicas": 2}  # shared Redis state: two pods, one budget that keeps one of them up
        experiments.apply(experiment("shared", experiments.namespace, AB, storage=storage, serving=serving))
        deployment = wait_for(
            lambda: experiments.kubectl.json("get", "deployment", "shared-experiment", "-n", experiments.namespace),
            timeout=30,
            what="the runtime Deployment",
        )
        assert deployment["spec"]["replicas"] == 2
        budget = experiments.kubectl.json("get", "pdb", "shared-experiment", "-n", experiments.namespace)
        assert budget["spec"]["minAvailable"] == 1 and "maxUnavailable" not in budget["spec"]
        pod = deployment["spec"]["template"]["spec"]
        env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
        assert (env["CROUPIER_RUNTIME_REDIS_URL"], env["CROUPIER_RUNTIME_REDIS_KEY_PREFIX"]) == (url, "it:exp:shared")
        assert {"name": "state", "emptyDir": {}} in pod["volumes"]
        claims = experiments.kubectl.json("get", "pvc", "-n", experiments.namespace)["items"]
        assert [c["metadata"]["name"] for c in claims] == []  # no claim with Redis state
        # Play the kubelet with the pod's environment: the runtime keeps its counts in the real Redis. No Secret is
        # mounted here (authentication has its own tests), so the token directory the pod names is left out.
        assert env.pop("CROUPIER_RUNTIME_AUTH_DIR") == "/var/run/croupier/auth"
        experiments.serve("shared", "Running", env=env)
        experiments.traffic(4000, {"a": 0.10, "b": 0.16})
        body = experiments.wait_condition("shared", "Ready", "True", "WinnerFound")
        assert body["status"]["winner"] == "b" and body["status"]["totalExposures"] == 4000
        with httpx.Client(base_url=experiments.runtime.url, timeout=10, trust_env=False) as http:
            assert http.get("/v1/stats").json()["backend"] == "Redis"
        keys = redis.Redis.from_url(url).keys("it:exp:shared*")
        assert keys, "the runtime wrote nothing under the key prefix"
        # The second pod (another runtime process on the same Redis) reports the same totals: whichever pod the
        # Service picks, the operator's one read is the whole experiment's, never to be summed over the pods.
        manifest = tmp_path / "second" / "experiment.yaml"
        manifest.parent.mkdir()
        manifest.write_text(experiments.served("shared", "Running"))
        second = ExperimentProcess(manifest, tmp_path / "second" / "state", env=env).start(60)
        try:
            stats = httpx.get(f"{second.url}/v1/stats", timeout=10, trust_env=False).json()
            assert stats["totalExposures"] == body["status"]["totalExposures"] == 4000
            by_name = {v["name"]: v["exposures"] for v in stats["variants"]}
            assert by_name == {v["name"]: v["exposures"] for v in body["status"]["variants"]}
        finally:
            second.stop()
    finally:
        experiments.stop()
        redis_server.terminate()
        redis_server.wait(timeout=10)
