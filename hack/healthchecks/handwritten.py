"""Writes the hand-written health-check testdata: the states no real run can produce, each with the reason.

Every test object is recorded by an integration test from a real operator on the local control plane
(tests/integration/ops/health_recorder.py; the first line of each file names the test), and no state is left that
only a hand-written object could show. The last ones found real runs:

- ModelDeployment ``StorageUnreadable``: the local model server runs without CAP_DAC_OVERRIDE (as TF Serving in a
  restricted pod does) and a canary's saved_model.pb is mode 000: PERMISSION_DENIED from TensorFlow's loader
  (tests/integration/ops/test_health_states_modeldeployment.py).
- ModelDeployment ``VersionNotAvailable``: a model server that holds the version in LOADING past the progress
  deadline (same file).
- Experiment ``Running`` and ``NotImplemented``: no operator of this version writes them (every statistics read is
  analysed; every kind is reconciled), so they left the API instead.

Should a state appear that no real run here can produce, add it to STATES with the reason in this docstring; each
object follows the condition patterns the operator writes (operator/<kind>/status.py), Reconciling and Stalled
included. A file recorded by an integration test (first line `# source: integration ...`) is never overwritten, and
the integration tests fail on a hand-written file whose state they produce.

    uv run python hack/healthchecks/handwritten.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from integration.ops.health_recorder import file_stem  # noqa: E402

from croupier.operator.decisionpolicy.status import STALLS as POLICY_STALLS  # noqa: E402
from croupier.operator.experiment.status import STALLS as EXPERIMENT_STALLS  # noqa: E402
from croupier.operator.modeldeployment.status import STALLS as MODEL_STALLS  # noqa: E402

STALLS = {"DecisionPolicy": POLICY_STALLS, "ModelDeployment": MODEL_STALLS, "Experiment": EXPERIMENT_STALLS}

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


STATES: dict[str, list[tuple]] = {}
"""kind -> states written by hand; stalled: whether Degraded's reason is one of the kind's STALLS."""


def main() -> None:
    for kind, states in STATES.items():
        for ready, progressing, degraded, message in states:
            stalled = degraded[0] == T and degraded[1] in STALLS[kind]
            reconciling = T if progressing[0] == T and not stalled else F
            decided = (("Ready", *ready), ("Progressing", *progressing), ("Degraded", *degraded),
                       ("Reconciling", reconciling, progressing[1]), ("Stalled", T if stalled else F, degraded[1]))
            conditions = [
                {"type": kind_, "status": status, "reason": reason, "message": message, "observedGeneration": 1,
                 "lastTransitionTime": "2026-11-30T12:00:00Z"}
                for kind_, status, reason in decided
            ]
            if degraded[0] == F and degraded[1] != ready[1]:
                conditions[2]["message"] = conditions[4]["message"] = ""
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
