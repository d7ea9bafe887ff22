"""Writes each kind's health_test.yaml and hack/healthchecks/kstatus_expectations.yaml from the verdicts below.

The verdict per test object is decided here, by hand (the table); messages follow the documented rules
(docs/gitops.md): Argo CD shows the deciding condition's `reason: message`, kstatus the Ready condition's message.
The Go tests then check that health.lua and kstatus agree. A new testdata file needs a verdict here first.

    uv run python hack/healthchecks/expectations.py
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
os.chdir(REPO)
ROOT = "config/argocd/resource_customizations/croupier.dev"
H, P, D, S = "Healthy", "Progressing", "Degraded", "Suspended"
ARGO = {
 "DecisionPolicy": {"apply-failed": D, "apply-rejected": D, "invalid-name": D, "invalid-spec": D, "rollout-stalled": D,
   "runtime-unreachable": D, "child-conflict": D, "no-status": P, "ready-available": H,
   "ready-available-degraded-runtime-unreachable": D, "ready-available-degraded-model-not-ready": D,
   "ready-available-degraded-scoring-fallbacks": D, "rollout-in-progress-degraded-model-deployment-not-found": D, "ready-paused": H, "rollout-in-progress": P, "scaled-to-zero": S,
   "stale-generation": P, "stale-observed-generation": P},
 "ModelDeployment": {"apply-failed": D, "apply-rejected": D, "child-conflict": D, "route-not-accepted": D,
   "version-not-available": D, "version-not-found": D, "saved-model-invalid": D, "storage-unreadable": D,
   "model-server-unreachable": D, "invalid-name": D, "invalid-spec": D, "no-status": P, "pods-starting": P,
   "promoting": P, "weight-not-served": P, "scaled-to-zero": S, "analysis-failed": D, "insufficient-data": D,
   "ready-available": H, "ready-available-progressing-canary-complete": H, "ready-available-progressing-paused": H,
   "rolled-back": D, "ready-available-progressing-step-in-progress": P,
   "ready-available-progressing-waiting-for-analysis": P, "version-loading": P, "stale-observed-generation": P},
 "Experiment": {"apply-failed": D, "apply-rejected": D, "child-conflict": D, "target-not-found": D, "target-not-ready": P,
   "target-not-supported": D, "no-status": P,
   "rollout-in-progress": P, "rollout-stalled": D, "runtime-unreachable": D, "invalid-name": D, "invalid-spec": D,
   "ready-concluded": H, "ready-guardrail-violated": D, "ready-insufficient-traffic": P,
   "ready-no-significant-difference": H, "ready-paused": H, "ready-sample-ratio-mismatch": D,
   "ready-winner-found": H, "stale-observed-generation": P},
}
# kstatus's Stalled, decided by hand per kind (docs/gitops.md's table): Degraded reasons that clear only with a spec
# change or another human action. Plain kstatus answers Failed for them; other Degraded reasons are retried.
STALLED = {
 "DecisionPolicy": {"InvalidName", "InvalidSpec", "RolloutStalled", "ChildConflict", "ApplyRejected"},
 "ModelDeployment": {"InvalidName", "InvalidSpec", "PodsStarting", "VersionNotAvailable", "VersionNotFound",
   "SavedModelInvalid", "StorageUnreadable", "RouteNotAccepted", "AnalysisFailed", "InsufficientData", "RolledBack",
   "ChildConflict", "ApplyRejected"},
 "Experiment": {"InvalidName", "InvalidSpec", "RolloutStalled", "TargetNotSupported", "SampleRatioMismatch",
   "GuardrailViolated", "ChildConflict", "ApplyRejected"},
}
def describe(c):
    return f"{c['reason']}: {c['message']}" if c.get("message") else c["reason"]
kst = []
for kind, table in ARGO.items():
    files = sorted(os.path.basename(f)[:-5] for f in glob.glob(f"{ROOT}/{kind}/testdata/*.yaml"))
    assert sorted(table) == files, (kind, set(table) ^ set(files))
    tests = []
    for name in files:
        obj = yaml.safe_load(open(f"{ROOT}/{kind}/testdata/{name}.yaml"))
        st = obj.get("status") or {}
        conds = {c["type"]: c for c in st.get("conditions") or ()}
        gen = obj["metadata"]["generation"]
        verdict = table[name]
        if not conds:
            msg = "Waiting for the operator's first status"
        elif st.get("observedGeneration") != gen:
            msg = f"Waiting for the operator to observe generation {gen}"
        elif verdict == D: msg = describe(conds["Degraded"])
        elif verdict == P: msg = describe(conds["Progressing"])
        else: msg = describe(conds["Ready"])
        tests.append({"healthStatus": {"status": verdict, "message": msg}, "inputPath": f"testdata/{name}.yaml"})
        # Plain kstatus, as documented: generation; then Stalled (Degraded for a reason in STALLED): Failed;
        # Reconciling (Progressing True): InProgress; then Ready (True: Current; False: InProgress); no status: Current.
        # Decided from Ready/Progressing/Degraded, not from the Reconciling/Stalled the operator wrote: the Go test
        # checks those against this.
        stalled = conds.get("Degraded", {}).get("status") == "True" and conds["Degraded"]["reason"] in STALLED[kind]
        if not conds:
            k = ("Current", "Resource is current")
        elif st.get("observedGeneration") != gen:
            k = ("InProgress", f"{kind} generation is {gen}, but latest observed generation is {st['observedGeneration']}")
        elif stalled:
            k = ("Failed", conds["Degraded"]["message"])
        elif conds["Progressing"]["status"] == "True":
            k = ("InProgress", conds["Progressing"]["message"])
        elif conds["Ready"]["status"] == "True":
            k = ("Current", "Resource is Ready")
        else:
            k = ("InProgress", conds["Ready"]["message"])
        # Flux with flux-healthcheckexprs.yaml: no status cannot be evaluated (Unknown: Flux keeps waiting);
        # stale generation InProgress; Degraded Failed; Ready or settled (all False) Current; else InProgress.
        values = {c["status"] for c in conds.values()}
        if not conds:
            flux = "Unknown"
        elif st.get("observedGeneration") != gen:
            flux = "InProgress"
        elif conds["Degraded"]["status"] == "True":
            flux = "Failed"
        elif conds["Ready"]["status"] == "True" or values == {"False"}:
            flux = "Current"
        else:
            flux = "InProgress"
        kst.append({"inputPath": f"croupier.dev/{kind}/testdata/{name}.yaml", "status": k[0], "message": k[1],
                    "flux": flux})
    with open(f"{ROOT}/{kind}/health_test.yaml", "w") as f:
        f.write("# Argo CD's format (resource_customizations/<group>/<Kind>/health_test.yaml); run by hack/healthchecks.\n")
        yaml.safe_dump({"tests": tests}, f, sort_keys=False, width=200)
with open("hack/healthchecks/kstatus_expectations.yaml", "w") as f:
    f.write("# What kstatus (github.com/fluxcd/cli-utils, Flux's health checks) computes for each health-check object.\n"
            "# The operator writes kstatus's Reconciling and Stalled: Failed for a stalled object (Degraded for a reason that\n"
            "# needs a spec change), InProgress while Progressing or not Ready, Current when Ready (or without any status:\n"
            "# the operator writes one within seconds): docs/gitops.md.\n"
            "# `flux`: what Flux reports with the CEL checks of flux-healthcheckexprs.yaml (Failed on Degraded).\n")
    yaml.safe_dump({"tests": kst}, f, sort_keys=False, width=200)
