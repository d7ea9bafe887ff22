"""Writes the hand-written health-check testdata: states no integration test produces yet (the Experiment reconciler
is not there, the ModelDeployment's canary engine not wired; some states cannot be reached against kwok pods).

Each object follows the condition patterns the operator writes (operator/decisionpolicy/status.py): ready (Ready True),
waiting (Ready False, Progressing True), blocked (Ready/Progressing False, Degraded True), settled (all False), and for
canaries and experiments serving while they progress or degrade, Ready True with Progressing or Degraded True.
A file recorded by an integration test (first line `# source: integration ...`) is never overwritten; replace an
entry here by a recording as soon as a test produces the state.

    uv run python hack/healthchecks/handwritten.py
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from integration.ops.health_recorder import file_stem  # noqa: E402

OUT = ROOT / "config" / "argocd" / "resource_customizations" / "croupier.dev"
HEADER = "# source: hand-written (no integration test produces this state yet)\n"
T, F = "True", "False"

# kind -> [(Ready, Progressing, Degraded) as (status, reason) pairs, message]
# Specs from examples/ (valid objects); the health checks read only metadata and status.
EXAMPLES = {"DecisionPolicy": "decisionpolicy-thompson.yaml", "ModelDeployment": "modeldeployment-canary.yaml",
            "Experiment": "experiment-abn.yaml"}
SPEC = {kind: yaml.safe_load((ROOT / "examples" / name).read_text())["spec"] for kind, name in EXAMPLES.items()}


def waiting(reason: str, message: str, healthy: str) -> tuple:
    return (F, reason), (T, reason), (F, healthy), message


def blocked(reason: str, message: str) -> tuple:
    return (F, reason), (F, reason), (T, reason), message


def serving_progress(reason: str, message: str, healthy: str) -> tuple:
    return (T, reason), (T, reason), (F, healthy), message


def serving(reason: str, message: str, healthy: str) -> tuple:
    return (T, reason), (F, reason), (F, healthy), message


def settled(reason: str, message: str, healthy: str) -> tuple:
    return (F, reason), (F, reason), (F, healthy), message


def canary(reason: str, progressing: bool, message: str) -> tuple:
    """A ModelDeployment serving its split (Ready True, reason Available) while its rollout is in ``reason``."""
    return (T, "Available"), (T if progressing else F, reason), (F, "AsExpected"), message


def serving_degraded(reason: str, message: str) -> tuple:
    return (T, reason), (F, reason), (T, reason), message


CHILD = {
    "ChildConflict": "Service example already exists and is not owned by this object",
    "ApplyRejected": "the API server refused the child: spec.resources.requests: Forbidden",
    "ApplyFailed": "applying the child failed: the server was unable to return a response in the time allotted",
}

STATES: dict[str, list[tuple]] = {
    "DecisionPolicy": [
        waiting("RolloutInProgress", "0/1 runtime pods updated, 0 available", "AsExpected"),
        blocked("RolloutStalled", 'ReplicaSet "banner-6d5f" has timed out progressing.'),
        blocked("InvalidName", "metadata.name '1banner' must be a DNS-1035 label"),
        blocked("InvalidSpec", "spec.exploration.minProbability: minProbability x arms must be <= 1"),
        blocked("ApplyRejected", CHILD["ApplyRejected"]),
        blocked("ApplyFailed", CHILD["ApplyFailed"]),
        # Serving, with decisions mostly falling back (the ModelDeployment is Ready, its model errs or is slow).
        ((T, "Available"), (F, "RolloutComplete"), (T, "ScoringFallbacks"),
         "73% of the last 1200 scored decisions fell back (timeout 640, unavailable 236): check the model"),
    ],
    "ModelDeployment": [
        serving("Available", "TF Serving reports every version with traffic AVAILABLE; serving stable 1 90%, canary 2 10%",
                "AsExpected"),
        waiting("VersionLoading", "canary version 2 is LOADING in TF Serving (12s of the 600s progress deadline)",
                "AsExpected"),
        waiting("PodsStarting", "Deployment ranker: no TF Serving pod available yet", "AsExpected"),
        waiting("Promoting", "the previous stable version serves until version 2 is AVAILABLE", "AsExpected"),
        waiting("WeightNotServed", "TF Serving has not applied the labels yet (ranker: canary)", "AsExpected"),
        settled("ScaledToZero", "spec.serving.replicas is 0: no TF Serving pod serves", "AsExpected"),
        blocked("InvalidName", "metadata.name 'Ranker' must be a DNS-1035 label of at most 49 characters"),
        blocked("InvalidSpec", "spec.stable.version: Input should be greater than or equal to 1"),
        blocked("VersionNotAvailable", "canary version 2 not AVAILABLE after 600s: state LOADING"),
        blocked("VersionNotFound", "canary version 3 not AVAILABLE after 600s: TF Serving does not list canary version 3"),
        blocked("SavedModelInvalid", "stable version 2: Can't parse /models/ranker/2/saved_model.pb as binary proto"),
        blocked("StorageUnreadable", "stable version 1: s3://models/ranker: Access Denied"),
        blocked("ModelServerUnreachable",
                "GetModelStatus on ranker.example.svc:8500 failed: UNAVAILABLE: failed to connect to all addresses"),
        # A halted rollout (operator/modeldeployment/rollout.py: HALTED) and a paused one; the other canary states
        # (steps, waiting for analysis, complete, rolled back) are recorded by the canary integration tests.
        blocked("AnalysisFailed", "canary version 2 halted: error rate 0.08 > maxErrorRate 0.05 (onFailure: Pause)"),
        blocked("InsufficientData", "InsufficientData: 3 intervals in a row with fewer than 100 requests"),
        canary("Paused", False, "canary.paused is set"),
        canary("WaitingForAnalysis", True, "step 1 of 3 at 20%: waits for an interval with enough requests"),
        blocked("RouteNotAccepted", "Gateway edge did not accept the route: NotAllowedByListeners: no listener matches"),
        *(blocked(reason, message) for reason, message in CHILD.items()),
    ],
    "Experiment": [
        serving("Running", "2 variants serving, 5000 exposures", "Running"),
        serving("Paused", "paused: control=100", "Paused"),
        serving("Concluded", "concluded: treatment keeps 100% of traffic", "Concluded"),
        serving_progress("InsufficientTraffic", "120 exposures per variant, 1000 needed", "InsufficientTraffic"),
        serving_degraded("SampleRatioMismatch", "SRM p-value 0.0001 below 0.001: winner withheld"),
        serving_degraded("GuardrailViolated", "treatment: latency_ms up 14% (threshold 10%)"),
        serving("WinnerFound", "treatment beats control: lift 4.1% [1.2%, 7.0%]", "WinnerFound"),
        serving("NoSignificantDifference", "no variant differs from control at alpha 0.05", "NoSignificantDifference"),
        blocked("TargetNotFound", "decisionPolicyRef homepage-banner: DecisionPolicy not found"),
        waiting("TargetNotReady", "decisionPolicyRef homepage-banner: DecisionPolicy not Ready; serving control",
                "TargetNotReady"),
        blocked("TargetNotSupported", "variant canary: ModelDeployment targets need the model router; serving control"),
        waiting("RolloutInProgress", "0/1 runtime pods updated, 0 available", "RolloutInProgress"),
        blocked("RolloutStalled", 'ReplicaSet "example-experiment-6d5f" has timed out progressing.'),
        blocked("RuntimeUnreachable", "GET http://example-experiment.example.svc:80/v1/stats failed: ConnectError"),
        blocked("InvalidName", "metadata.name '1example' must be a DNS-1035 label of at most 52 characters"),
        blocked("InvalidSpec", "spec.variants: weights must sum to 100"),
        *(blocked(reason, message) for reason, message in CHILD.items()),
    ],
}


def kebab(reason: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", reason).lower()


def main() -> None:
    for kind, states in STATES.items():
        for ready, progressing, degraded, message in states:
            conditions = [
                {"type": kind_, "status": status, "reason": reason, "message": message, "observedGeneration": 1,
                 "lastTransitionTime": "2026-11-30T12:00:00Z"}
                for kind_, (status, reason) in zip(("Ready", "Progressing", "Degraded"), (ready, progressing, degraded))
            ]
            if degraded[0] == F and degraded[1] != ready[1]:
                conditions[2]["message"] = ""
            obj = {
                "apiVersion": "croupier.dev/v1alpha1",
                "kind": kind,
                "metadata": {"name": "example", "namespace": "example", "generation": 1},
                "spec": SPEC[kind],
                "status": {"observedGeneration": 1, "conditions": conditions},
            }
            path = OUT / kind / "testdata" / f"{file_stem(obj)}.yaml"
            if path.exists() and path.read_text().startswith("# source: integration"):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(HEADER + yaml.safe_dump(obj, sort_keys=False))
            print(path.relative_to(ROOT))
    # A spec change the operator has not seen yet: the recorded Ready policy with the next generation.
    for kind, ready in (("DecisionPolicy", "ready-available"), ("ModelDeployment", "ready-available"),
                        ("Experiment", "ready-running")):
        source = OUT / kind / "testdata" / f"{ready}.yaml"
        obj = yaml.safe_load(source.read_text())
        obj["metadata"]["generation"] = obj["status"]["observedGeneration"] + 1
        path = source.with_name("stale-observed-generation.yaml")
        header = f"# source: hand-written ({source.name} with metadata.generation bumped: not observed yet)\n"
        path.write_text(header + yaml.safe_dump(obj, sort_keys=False))
        print(path.relative_to(ROOT))


if __name__ == "__main__":
    main()
