"""Writes the hand-written health-check testdata: the states no real run can produce, each with the reason.

Every other test object is recorded by an integration test from a real operator on the local control plane
(tests/integration/ops/health_recorder.py; the first line of each file names the test). What is left:

- ModelDeployment ``StorageUnreadable``: TF Serving reports it for an object store or file system that refuses it
  (PERMISSION_DENIED, UNAUTHENTICATED, "access denied"). The local model server reads local folders only, and the
  tests run as root, for whom no folder is unreadable: no real run here gets that error.
- ModelDeployment ``VersionNotAvailable``: a version still START/LOADING past the progress deadline, or failed with an
  error TF Serving names no more precisely. The local model server loads a SavedModel in well under the API's
  smallest deadline (10 s) and names every load error it meets (NOT_FOUND, DATA_LOSS / INVALID_ARGUMENT).
- Experiment ``Running``: the operator declares it for a runtime serving without an analysis, but it analyses every
  statistics read it gets (operator/experiment/status.py: an analysis always exists once the runtime answered), so
  a running experiment is always InsufficientTraffic, WinnerFound, NoSignificantDifference or SampleRatioMismatch.
- Experiment ``NotImplemented``: written by an operator version that did not reconcile Experiments yet (the
  settled state of operator/core/unimplemented.py); this version reconciles every kind, so no run writes it. The
  reason stays declared in api/experiment.py for objects an older operator left with it.

Each object follows the condition patterns the operator writes (operator/<kind>/status.py). A file recorded by an
integration test (first line `# source: integration ...`) is never overwritten; replace an entry here by a
recording as soon as a test produces the state.

    uv run python hack/healthchecks/handwritten.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from integration.ops.health_recorder import file_stem  # noqa: E402

OUT = ROOT / "config" / "argocd" / "resource_customizations" / "croupier.dev"
HEADER = "# source: hand-written (no real run produces this state: hack/healthchecks/handwritten.py says why)\n"
T, F = "True", "False"

# kind -> [(Ready, Progressing, Degraded) as (status, reason) pairs, message]
# Specs from examples/ (valid objects); the health checks read only metadata and status.
EXAMPLES = {"DecisionPolicy": "decisionpolicy-thompson.yaml", "ModelDeployment": "modeldeployment-canary.yaml",
            "Experiment": "experiment-abn.yaml"}
SPEC = {kind: yaml.safe_load((ROOT / "examples" / name).read_text())["spec"] for kind, name in EXAMPLES.items()}


def blocked(reason: str, message: str) -> tuple:
    return (F, reason), (F, reason), (T, reason), message


def settled(reason: str, message: str) -> tuple:
    return (F, reason), (F, reason), (F, reason), message


def serving(reason: str, message: str, healthy: str) -> tuple:
    return (T, reason), (F, reason), (F, healthy), message


STATES: dict[str, list[tuple]] = {
    "ModelDeployment": [
        blocked("VersionNotAvailable", "canary version 2 not AVAILABLE after 600s: state LOADING"),
        blocked("StorageUnreadable", "stable version 1: s3://models/ranker: Access Denied"),
    ],
    "Experiment": [
        serving("Running", "2 variants serving, 5000 exposures", "Running"),
        settled("NotImplemented", "croupier-operator 0.1.0 does not reconcile Experiment objects yet: nothing is deployed for this one"),
    ],
}


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


if __name__ == "__main__":
    main()
