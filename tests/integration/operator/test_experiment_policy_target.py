"""An Experiment whose variant targets a DecisionPolicy that is really Ready, end to end on the real control plane:
the operator, a real runtime process serving the policy (its address the policy's own, through the
`LoopbackDispatcher`) and another serving the Experiment. The Experiment waits (`TargetNotReady`, control served)
until the policy is Ready, then runs; `POST /v1/assign` answers the policy's own decision (decisionId, arm,
probabilities), and a reward on that decisionId reaches the policy: its runtime learns it and the operator writes it
into the policy's status. The policy's runtime has authentication on (the default): the Experiment's runtime sends
the decide token the operator mounts for it, the operator's probe the admin token of the labelled Secret. The
Experiment's runtime has it on too: assign needs its decide token, and the operator reads its stats with the admin
token of the Experiment's own Secret."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from integration.operator.conftest import Policies, condition
from integration.operator.test_experiment import Experiments, experiment
from integration.operator.test_experiment import experiments as experiments  # noqa: PLC0414 - a fixture, by name
from integration.runtime.conftest import RuntimeProcess
from integration.runtime.experiments.conftest import ExperimentProcess

from croupier.api.assignment import assign
from croupier.devcluster.dispatcher import LoopbackDispatcher
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

pytestmark = pytest.mark.integration

SALT = "it-salt"
VARIANTS = [
    {"name": "control", "weight": 50, "payload": {"banner": "static"}},
    {"name": "bandit", "weight": 50, "decisionPolicyRef": {"name": "banner"}},
]
TOKENS = {"decide": "it-decide-token", "rewards": "it-rewards-token", "admin": "it-admin-token"}
START_TIMEOUT = 120.0  # a runtime process's start, on a loaded 2-core machine


@pytest.fixture(scope="module")
def runtime_router() -> Iterator[LoopbackDispatcher]:
    with LoopbackDispatcher() as dispatcher:
        yield dispatcher


@pytest.fixture(scope="module")
def runtime_url_template(runtime_router: LoopbackDispatcher) -> str:
    """The operator reads each object's runtime at an address of its own (see `operator` in conftest.py)."""
    return runtime_router.url_template("service")


def _unit_of(variant: str) -> str:
    weights = [(str(v["name"]), int(str(v["weight"]))) for v in VARIANTS]
    return next(f"user-{i}" for i in range(10_000) if assign(f"user-{i}", SALT, weights) == variant)


def test_a_ready_policy_target_answers_assign_with_its_decision_and_gets_the_reward(
    experiments: Experiments, policies: Policies, runtime_router: LoopbackDispatcher, kubectl: Kubectl, tmp_path: Path
) -> None:
    namespace = experiments.namespace
    started: list[RuntimeProcess] = []
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "banner-auth", "namespace": namespace, "labels": {"croupier.dev/runtime-auth": "true"}},
        "data": {k: base64.b64encode(f"{v}\n".encode()).decode() for k, v in TOKENS.items()},
    }
    kubectl.apply(json.dumps(secret))
    own = {**secret, "metadata": {**secret["metadata"], "name": "checkout-auth"}}
    kubectl.apply(json.dumps(own))
    auth_dir = tmp_path / "policy-auth"  # the kubelet's part: the policy pod's Secret volume
    auth_dir.mkdir()
    for key, token in TOKENS.items():
        (auth_dir / key).write_text(f"{token}\n")
    served = ConfigMapWatch(kubectl, namespace, "checkout-experiment", tmp_path / "configmap-watch.json")
    try:
        # No policy yet: children are rendered before the first observation, and that first render must not serve
        # the unchecked target either (the watch sees every version of the ConfigMap from its creation on).
        experiments.apply(experiment("checkout", namespace, VARIANTS))
        missing = experiments.wait_condition("checkout", "Ready", "False", "TargetNotFound")
        assert "banner" in condition(missing, "Ready")["message"]
        assert "readyTargets" not in missing["status"]
        # The policy exists but nothing serves it yet: not Ready, so the Experiment serves control and says why.
        policies.apply("banner")
        waiting = experiments.wait_condition("checkout", "Ready", "False", "TargetNotReady")
        assert "banner" in condition(waiting, "Ready")["message"]
        assert yaml.safe_load(experiments.served("checkout", "Paused"))["spec"]["state"] == "Paused"
        time.sleep(2 * policies.resync_seconds)  # a few more passes of the operator while the policy is not Ready
        states = served.states()
        assert states and set(states) == {"Paused"}, states

        # The kubelet's part for the policy: a runtime process serves the ConfigMap's policy.yaml at the policy's own
        # address; the operator reads it there and the policy becomes Ready.
        policy = _serve_policy(policies, runtime_router, tmp_path, auth_dir, started)

        # Now the Experiment runs: its runtime (the pod's part) asks the policy's runtime for decisions, with the
        # decide token of the policy's Secret that the operator mounts into its pod (the kubelet's part: the file).
        (tmp_path / "experiment.yaml").write_text(experiments.served("checkout", "Running"))
        deployment = kubectl.json("get", "deployment", "checkout-experiment", "-n", namespace, "-o", "json")
        pod = deployment["spec"]["template"]["spec"]
        container_env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
        token_dir = container_env["CROUPIER_RUNTIME_POLICY_TOKEN_DIR"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "policy-tokens"]
        (source,) = volume["projected"]["sources"]
        assert source["secret"]["name"] == "banner-auth", volume
        assert source["secret"]["items"] == [{"key": "decide", "path": "banner"}], volume
        assert {"name": "policy-tokens", "mountPath": token_dir, "readOnly": True} in pod["containers"][0][
            "volumeMounts"
        ]
        tokens = tmp_path / "policy-tokens"
        tokens.mkdir()
        (tokens / "banner").write_text(f"{TOKENS['decide']}\n")
        env = {
            "CROUPIER_RUNTIME_POLICY_URL_TEMPLATE": policy.url,
            "CROUPIER_RUNTIME_POLICY_TOKEN_DIR": str(tokens),
            "CROUPIER_RUNTIME_AUTH_DIR": str(auth_dir),  # the same keys and tokens as the policy's, for brevity
        }
        assert container_env["CROUPIER_RUNTIME_AUTH_DIR"] == "/var/run/croupier/auth"
        assert any(v.get("secret", {}).get("secretName") == "checkout-auth" for v in pod["volumes"]), pod["volumes"]
        runtime = ExperimentProcess(tmp_path / "experiment.yaml", tmp_path / "experiment-state", env=env)
        started.append(runtime)
        runtime.start(START_TIMEOUT)
        runtime_router.route(namespace, "checkout-experiment", runtime.url)
        ready = experiments.wait_condition("checkout", "Ready", "True", "InsufficientTraffic", timeout=90)
        assert ready["status"]["split"] == "control=50,bandit=50"
        assert ready["status"]["readyTargets"] == ["DecisionPolicy/banner"]
        assert served.states()[-1] == "Running" and served.states()[0] == "Paused", served.states()

        with httpx.Client(timeout=30, trust_env=False) as http:
            assert http.post(f"{policy.url}/v1/decide", json={"unitId": "u"}).status_code == 401  # auth is on
            decide = {"authorization": f"Bearer {TOKENS['decide']}"}
            assert http.post(f"{runtime.url}/v1/assign", json={"unitId": "u"}).status_code == 401
            answer = http.post(f"{runtime.url}/v1/assign", json={"unitId": _unit_of("bandit")}, headers=decide).json()
            assert answer["variant"] == "bandit" and answer["counted"] is True, answer
            decision: dict[str, Any] = answer["decision"]
            assert decision["policy"] == "banner" and decision["decisionId"]
            assert decision["arm"] in {"blue", "red", "green"}
            assert set(decision["probabilities"]) == {"blue", "red", "green"}
            assert sum(decision["probabilities"].values()) == pytest.approx(1)
            assert decision["probabilities"][decision["arm"]] > 0
            static = http.post(f"{runtime.url}/v1/assign", json={"unitId": _unit_of("control")}, headers=decide).json()
            assert static["variant"] == "control" and static["payload"] == {"banner": "static"}

            # The reward goes to the policy on the Experiment's decisionId, as any client's would.
            reward = http.post(
                f"{policy.url}/v1/rewards",
                json={"decisionId": decision["decisionId"], "reward": 1},
                headers={"authorization": f"Bearer {TOKENS['rewards']}"},
            )
            assert reward.status_code == 200 and reward.json()["accepted"] == 1, reward.text
            admin = {"authorization": f"Bearer {TOKENS['admin']}"}
            totals = http.get(f"{policy.url}/v1/stats", headers=admin).json()["totals"]
            assert totals["decisions"] == 1 and totals["rewards"] == 1

        def rewarded() -> dict[str, Any] | None:
            status = policies.status("banner")
            return status if (status.get("totals") or {}).get("rewards") == 1 else None

        status = wait_for(rewarded, timeout=30, what="the reward in the policy's status")
        arm = next(a for a in status["arms"] if a["name"] == decision["arm"])
        assert arm["pulls"] == 1 and arm["rewards"] == 1, status["arms"]

        # The Experiment's own count: one exposure each, read by the operator from its runtime.
        def exposed() -> dict[str, Any] | None:
            body = experiments.get("checkout")
            return body if (body.get("status") or {}).get("totalExposures") == 2 else None

        body = wait_for(exposed, timeout=30, what="two exposures in the Experiment's status")
        assert {v["name"]: v["exposures"] for v in body["status"]["variants"]} == {"control": 1, "bandit": 1}
    finally:
        served.stop()
        for process in started:
            process.stop()


def _serve_policy(
    policies: Policies, runtime_router: LoopbackDispatcher, tmp_path: Path, auth_dir: Path, started: list[Any]
) -> RuntimeProcess:
    """The kubelet's part for policy `banner`: a runtime process serves its ConfigMap's policy.yaml with the token files
    of its Secret (``auth_dir``) at the policy's own address; returns once the operator reports it Ready."""
    (tmp_path / "policy.yaml").write_text(policies.policy_yaml("banner", 1))
    policy = RuntimeProcess(
        tmp_path / "policy.yaml", tmp_path / "policy-state", env={"CROUPIER_RUNTIME_AUTH_DIR": str(auth_dir)}
    )
    started.append(policy)
    policy.start(START_TIMEOUT)
    runtime_router.route(policies.namespace, "banner", policy.url)
    policies.wait_condition("banner", "Ready", "True", "Available", timeout=90)
    return policy


def _token_sources(kubectl: Kubectl, namespace: str) -> list[dict[str, Any]] | None:
    deployment = kubectl.json("get", "deployment", "checkout-experiment", "-n", namespace, "-o", "json")
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    found = [v for v in volumes if v["name"] == "policy-tokens"]
    return list(found[0]["projected"]["sources"]) if found else None


def test_a_policy_with_its_own_secret_and_key_is_called_with_that_token_once_the_secret_opts_in(
    experiments: Experiments, policies: Policies, runtime_router: LoopbackDispatcher, kubectl: Kubectl, tmp_path: Path
) -> None:
    """The target policy names its own Secret (spec.auth.secretName) and decide key (spec.auth.tokens): the operator
    derives both from the policy as it observes it. A Secret without the runtime-auth label is not mounted and the
    Experiment's Ready message names it and the label; once labelled, the token is mounted and the policy's runtime
    (a real process, authentication on) answers the Experiment's runtime (a real process) with its decision."""
    namespace = experiments.namespace
    tokens = {"frontend": "it-frontend-token", "ops": "it-ops-token"}
    auth = {
        "secretName": "banner-keys",
        "tokens": [{"key": "frontend", "scopes": ["decide"]}, {"key": "ops", "scopes": ["rewards", "admin"]}],
    }
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "banner-keys", "namespace": namespace},  # no runtime-auth label yet
        "data": {k: base64.b64encode(f"{v}\n".encode()).decode() for k, v in tokens.items()},
    }
    kubectl.apply(json.dumps(secret))
    own = {**secret, "metadata": {"name": "checkout-auth", "namespace": namespace,
                                  "labels": {"croupier.dev/runtime-auth": "true"}},
           "data": {k: base64.b64encode(f"{v}\n".encode()).decode() for k, v in TOKENS.items()}}  # fmt: skip
    kubectl.apply(json.dumps(own))
    auth_dir = tmp_path / "policy-auth"
    auth_dir.mkdir()
    for key, token in tokens.items():
        (auth_dir / key).write_text(f"{token}\n")
    started: list[RuntimeProcess] = []
    try:
        policies.apply("banner", auth=auth)
        experiments.apply(experiment("checkout", namespace, VARIANTS))

        def named() -> str | None:
            ready = condition(experiments.get("checkout"), "Ready") if experiments.get("checkout").get("status") else {}
            message = str(ready.get("message", ""))
            return message if f"Secret {namespace}/banner-keys" in message else None

        message = wait_for(named, timeout=60, what="the unlabelled Secret named in Ready")
        assert "lacks the label croupier.dev/runtime-auth=true" in message and "DecisionPolicy banner" in message
        assert _token_sources(kubectl, namespace) is None, "an unlabelled Secret is never mounted"

        kubectl("label", "secret", "banner-keys", "-n", namespace, "croupier.dev/runtime-auth=true")
        sources = wait_for(
            lambda: _token_sources(kubectl, namespace), timeout=90, what="the policy's token mounted after the label"
        )
        assert sources == [
            {"secret": {"name": "banner-keys", "items": [{"key": "frontend", "path": "banner"}], "optional": True}}
        ]
        assert experiments.get("checkout")["status"]["policyTokens"] == [
            {"policy": "banner", "secretName": "banner-keys", "key": "frontend"}
        ]

        # The kubelet's part: the policy's pod gets its Secret's files, the Experiment's pod the projected key.
        policy = _serve_policy(policies, runtime_router, tmp_path, auth_dir, started)
        (tmp_path / "experiment.yaml").write_text(experiments.served("checkout", "Running"))
        mounted = tmp_path / "policy-tokens"
        mounted.mkdir()
        (mounted / "banner").write_text(f"{tokens['frontend']}\n")  # the Secret's key `frontend`, at path `banner`
        own_dir = tmp_path / "experiment-auth"
        own_dir.mkdir()
        for key, token in TOKENS.items():
            (own_dir / key).write_text(f"{token}\n")
        env = {
            "CROUPIER_RUNTIME_POLICY_URL_TEMPLATE": policy.url,
            "CROUPIER_RUNTIME_POLICY_TOKEN_DIR": str(mounted),
            "CROUPIER_RUNTIME_AUTH_DIR": str(own_dir),
        }
        runtime = ExperimentProcess(tmp_path / "experiment.yaml", tmp_path / "experiment-state", env=env)
        started.append(runtime)
        runtime.start(START_TIMEOUT)
        with httpx.Client(timeout=30, trust_env=False) as http:
            decide = {"authorization": f"Bearer {TOKENS['decide']}"}
            answer = http.post(f"{runtime.url}/v1/assign", json={"unitId": _unit_of("bandit")}, headers=decide)
            assert answer.status_code == 200, answer.text
            assert answer.json()["decision"]["policy"] == "banner", answer.text
            # The control: the default key `decide` of `<policy>-auth` is not a token this policy accepts.
            denied = http.post(f"{policy.url}/v1/decide", json={"unitId": "u"}, headers=decide)
            assert denied.status_code == 401
    finally:
        for process in started:
            process.stop()


class ConfigMapWatch:
    """`kubectl get --watch` of the namespace's ConfigMaps, every version to a file; `states` reads one ConfigMap's.
    The watch is running once it printed the namespace's kube-root-ca.crt (so no version of ours is missed)."""

    def __init__(self, kubectl: Kubectl, namespace: str, name: str, path: Path) -> None:
        self.path, self.name = path, name
        argv = [str(kubectl.binary), "get", "configmaps", "-n", namespace, "--watch", "--output", "json"]
        with path.open("wb") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=kubectl.env)
        wait_for(lambda: bool(self._versions()), timeout=30, what="the ConfigMap watch's first list")

    def _versions(self) -> list[dict[str, Any]]:
        text, decoder, found, at = self.path.read_text(), json.JSONDecoder(), [], 0
        while (at := _skip_space(text, at)) < len(text):
            try:
                item, at = decoder.raw_decode(text, at)
            except json.JSONDecodeError:
                break  # a version still being written
            found.extend(item.get("items", [item]))
        return found

    def states(self) -> list[str]:
        """The served state of every version of the ConfigMap seen so far, in order."""
        return [
            str(yaml.safe_load(c["data"]["experiment.yaml"])["spec"]["state"])
            for c in self._versions()
            if c["metadata"]["name"] == self.name
        ]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at
