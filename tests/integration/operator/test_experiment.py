"""Experiments on the real control plane with real runtime processes.

The test plays the kubelet's part: it runs ``croupier-runtime --experiment`` on the operator's runtime port with the
``experiment.yaml`` of the Experiment's ConfigMap (what the pod would mount), sends simulated traffic (exposures and
outcomes) to it, and the operator reads ``/v1/stats``, runs the statistics and writes status.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from integration.operator.conftest import LocalRuntime, OperatorProcess, Policies, condition
from integration.ops.health_recorder import record

from croupier.api.assignment import assign
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

pytestmark = pytest.mark.integration

SALT = "it-salt"


def experiment(name: str, namespace: str, variants: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "croupier.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "variants": variants,
            "control": variants[0]["name"],
            "assignment": {"unitKey": "userId", "salt": SALT},
            "metric": {"name": "conversion", "type": "Binary", "direction": "Increase"},
            "analysis": {"method": "Sequential", "minimumSamplesPerVariant": 200},
            **spec,
        },
    }


AB = [
    {"name": "a", "weight": 50, "payload": {"color": "blue"}},
    {"name": "b", "weight": 50, "payload": {"color": "green"}},
]


class Experiments:
    def __init__(self, kubectl: Kubectl, namespace: str, runtime: LocalRuntime) -> None:
        self.kubectl, self.namespace, self.runtime = kubectl, namespace, runtime
        self.process: subprocess.Popen[bytes] | None = None
        self.volumes: list[str] = []

    def apply(self, body: dict[str, Any]) -> None:
        name = body["metadata"]["name"]
        # A volume for the state claim to bind (the test cluster has no provisioner); binder and scheduler are real.
        volume = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": f"{self.namespace}-{name}"[:63]},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "hostPath": {"path": f"/tmp/{self.namespace}-{name}"},
                "claimRef": {"namespace": self.namespace, "name": f"{name}-experiment-state"},
            },
        }
        self.kubectl.apply(json.dumps(volume))
        self.volumes.append(volume["metadata"]["name"])
        self.kubectl("apply", "-f", "-", input=json.dumps(body))

    def get(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.kubectl.json("get", "experiment", name, "-n", self.namespace)
        return found

    def wait_condition(self, name: str, kind: str, status: str, reason: str, timeout: float = 60) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            body = self.get(name)
            found = condition(body, kind)
            ok = found.get("status") == status and found.get("reason") == reason
            return body if ok and found.get("observedGeneration") == body["metadata"]["generation"] else None

        try:
            result: dict[str, Any] = wait_for(check, timeout=timeout, what=f"{kind}={status} ({reason}) on {name}")
        except TimeoutError:
            now = json.dumps(self.get(name).get("status"), indent=1)
            raise AssertionError(f"{kind} never became {status}/{reason} on {name}; status: {now}") from None
        return result

    def served(self, name: str, state: str | None = None) -> str:
        """The ConfigMap's experiment.yaml (once it serves ``state``, if given)."""

        def check() -> str | None:
            configmap = self.kubectl.json("get", "configmap", f"{name}-experiment", "-n", self.namespace)
            data: str = configmap["data"]["experiment.yaml"]
            return data if state is None or yaml.safe_load(data)["spec"]["state"] == state else None

        text: str = wait_for(check, timeout=30, what=f"ConfigMap {name}-experiment serving {state}")
        return text

    def serve(self, name: str, state: str | None = None, env: dict[str, str] | None = None) -> None:
        """Play the kubelet: run the experiment runtime with what the pod would mount (and ``env``, the pod's)."""
        self.stop()
        self.runtime.stop()
        workdir = self.runtime.workdir / "experiment"
        shutil.rmtree(workdir, ignore_errors=True)
        (workdir / "state").mkdir(parents=True)
        (workdir / "experiment.yaml").write_text(self.served(name, state))
        manifest = workdir / "experiment.yaml"
        runtime = str(Path(sys.executable).parent / "croupier-runtime")
        argv = [runtime, "--experiment", str(manifest), "--port", str(self.runtime.port),
                "--state-dir", str(workdir / "state"), "--host", "127.0.0.1"]  # fmt: skip
        log = (workdir / "runtime.log").open("wb")
        environment = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=workdir, env=environment)
        wait_for(
            lambda: httpx.get(f"{self.runtime.url}/readyz", timeout=1, trust_env=False).status_code == 200,
            timeout=30,
            what="the experiment runtime",
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def traffic(self, users: int, rates: dict[str, float], *, drop: dict[str, float] | None = None) -> None:
        """Exposures computed with the hash contract (an SDK's local assignment), then conversions at ``rates``;
        ``drop`` loses that share of a variant's exposures (a broken logging path: a broken split)."""
        rng = random.Random(7)
        weights = [("a", 50), ("b", 50)] if "c" not in rates else [("a", 34), ("b", 33), ("c", 33)]
        exposures, outcomes = [], []
        for i in range(users):
            unit = f"user-{i}"
            variant = assign(unit, SALT, weights)
            if rng.random() < (drop or {}).get(variant, 0.0):
                continue
            exposures.append({"unitId": unit, "variant": variant})
            if rng.random() < rates[variant]:
                outcomes.append({"unitId": unit, "metric": "conversion", "value": 1, "eventId": f"e-{i}"})
        with httpx.Client(base_url=self.runtime.url, timeout=30, trust_env=False) as http:
            for start in range(0, len(exposures), 1000):
                http.post("/v1/exposures", json={"exposures": exposures[start : start + 1000]}).raise_for_status()
            for start in range(0, len(outcomes), 1000):
                http.post("/v1/outcomes", json={"outcomes": outcomes[start : start + 1000]}).raise_for_status()


@pytest.fixture
def experiments(kubectl: Kubectl, namespace: str, operator: OperatorProcess, local_runtime: LocalRuntime) -> Any:
    helper = Experiments(kubectl, namespace, local_runtime)
    try:
        yield helper
    finally:
        helper.stop()
        for volume in helper.volumes:
            kubectl("delete", "pv", volume, "--ignore-not-found", "--wait=false")


def test_b_truly_wins_and_the_numbers_reach_status_then_no_writes_when_settled(
    experiments: Experiments, policies: Policies
) -> None:
    experiments.apply(experiment("buttons", experiments.namespace, AB))
    experiments.serve("buttons", "Running")
    record(experiments.wait_condition("buttons", "Ready", "True", "InsufficientTraffic"))
    experiments.traffic(4000, {"a": 0.10, "b": 0.16})
    body = experiments.wait_condition("buttons", "Ready", "True", "WinnerFound")
    record(body)
    status = body["status"]
    assert status["winner"] == "b" and status["split"] == "a=50,b=50"
    a, b = status["variants"]
    assert a["exposures"] + b["exposures"] == status["totalExposures"] == 4000
    assert b["mean"] > a["mean"] and b["lift"]["lower"] > 0 and b["pValue"] < 0.05
    assert b["metrics"][0]["name"] == "conversion" and b["metrics"][0]["sum"] == b["outcomes"]
    assert status["srmPValue"] > 0.001 and status["epoch"]

    # Settled: nothing changes at the runtime, so nothing is written over several resyncs. On a loaded machine the
    # last outcomes may still be on their way when WinnerFound is first written: wait (bounded) until one resync
    # writes nothing, then require three more that write nothing.
    def quiet() -> bool:
        start = policies.operator_writes()
        time.sleep(policies.resync_seconds)
        return policies.operator_writes() == start

    wait_for(quiet, timeout=60, what="a resync of the settled experiment without writes")
    settled = experiments.get("buttons")["status"]
    before = policies.operator_writes()
    time.sleep(3 * policies.resync_seconds)
    assert policies.operator_writes() == before
    after = experiments.get("buttons")["status"]
    assert after == settled, json.dumps([settled["conditions"], after["conditions"]], indent=1)


def test_a_broken_split_reaches_sample_ratio_mismatch(experiments: Experiments, operator: OperatorProcess) -> None:
    experiments.apply(experiment("broken", experiments.namespace, AB))
    experiments.serve("broken", "Running")
    experiments.traffic(3000, {"a": 0.1, "b": 0.1}, drop={"b": 0.3})
    body = experiments.wait_condition("broken", "Degraded", "True", "SampleRatioMismatch")
    record(body)
    assert body["status"]["srmPValue"] < 0.001 and "winner" not in body["status"]
    # What the SRM alert reads (config/prometheus/croupier.rules.yaml): the operator's per-object gauges.
    srm = {"object_namespace": experiments.namespace, "object_name": "broken"}
    degraded = {**srm, "kind": "Experiment", "type": "Degraded", "status": "True", "reason": "SampleRatioMismatch"}
    assert operator.metric("croupier_operator_condition", **degraded) == 1
    srm_p_value = operator.metric("croupier_operator_experiment_srm_p_value", **srm)
    assert srm_p_value == pytest.approx(body["status"]["srmPValue"])
    exposures = {v["name"]: v["exposures"] for v in body["status"]["variants"]}
    for variant, count in exposures.items():
        assert operator.metric("croupier_operator_experiment_exposures", **srm, variant=variant) == count

    def reasons() -> set[str]:
        items = experiments.kubectl.json("get", "events", "-n", experiments.namespace)["items"]
        return {str(e.get("reason")) for e in items if e["involvedObject"].get("name") == "broken"}

    try:
        wait_for(lambda: "SampleRatioMismatch" in reasons(), timeout=15, what="the SampleRatioMismatch Event")
    except TimeoutError:
        raise AssertionError(f"Event reasons: {sorted(reasons())}") from None


def test_a_missing_target_policy_is_target_not_found_and_control_is_served(experiments: Experiments) -> None:
    variants = [AB[0], {"name": "bandit", "weight": 50, "decisionPolicyRef": {"name": "no-such-policy"}}]
    experiments.apply(experiment("orphan", experiments.namespace, variants))
    body = experiments.wait_condition("orphan", "Ready", "False", "TargetNotFound")
    record(body)
    assert "no-such-policy" in condition(body, "Ready")["message"]
    assert yaml.safe_load(experiments.served("orphan", "Paused"))["spec"]["state"] == "Paused"


def test_paused_serves_control_and_stops_counting(experiments: Experiments) -> None:
    experiments.apply(experiment("paused", experiments.namespace, AB, state="Paused"))
    experiments.serve("paused", "Paused")
    body = experiments.wait_condition("paused", "Ready", "True", "Paused")
    record(body)
    assert body["status"]["split"] == "a=100"
    with httpx.Client(base_url=experiments.runtime.url, timeout=10, trust_env=False) as http:
        answer = http.post("/v1/assign", json={"unitId": "user-1"}).json()
    assert answer["variant"] == "a" and answer["counted"] is False


def test_a_paused_change_of_the_analysis_settings_resumes_in_a_new_epoch(experiments: Experiments) -> None:
    """Running -> Paused -> alpha changed (admitted: Paused on both sides) -> Running: the runtime serves a new epoch
    and status records it, instead of continuing the old epoch's sequential test under another alpha."""
    name, namespace = "resume", experiments.namespace

    def patch(spec: dict[str, Any]) -> None:
        body = json.dumps({"spec": spec})
        experiments.kubectl("patch", "experiment", name, "-n", namespace, "--type=merge", "-p", body)

    experiments.apply(experiment(name, namespace, AB))
    experiments.serve(name, "Running")
    first = experiments.wait_condition(name, "Ready", "True", "InsufficientTraffic")["status"]
    assert first["epoch"]
    patch({"state": "Paused"})
    experiments.serve(name, "Paused")
    paused = experiments.wait_condition(name, "Ready", "True", "Paused")["status"]
    assert paused["epoch"] == first["epoch"], "pausing alone keeps the epoch"
    patch({"analysis": {"alpha": 0.1}})
    patch({"state": "Running"})
    experiments.serve(name, "Running")
    resumed = experiments.wait_condition(name, "Ready", "True", "InsufficientTraffic")["status"]
    record(experiments.get(name))
    assert resumed["epoch"] != first["epoch"]
    assert resumed["epochStartTime"] >= first["epochStartTime"]
    assert yaml.safe_load(experiments.served(name, "Running"))["spec"]["analysis"]["alpha"] == 0.1
