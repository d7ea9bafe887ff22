"""Records the statuses integration tests observe as Argo CD health-check testdata.

With ``CROUPIER_RECORD_HEALTH_TESTDATA`` set to a folder (normally
``config/argocd/resource_customizations/croupier.dev``), :func:`record` writes each observed object, stripped of what
the server adds (uid, resourceVersion, managedFields, Kopf's annotations) and with the test's namespace replaced by
``example``, every timestamp by one fixed time and the test's temporary folder by ``/models`` (so a new recording
changes only what changed), to
``<folder>/<Kind>/testdata/<reasons>.yaml``. The first line names the test that produced it; a unit
test (tests/unit/ops/test_health_testdata.py) keeps the checked-in files valid against the status models. Without
the variable :func:`record` does nothing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

RECORD_ENV = "CROUPIER_RECORD_HEALTH_TESTDATA"
NAMESPACE = "example"
SOURCE_PREFIX = "# source: integration "
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
RECORDED_AT = "2026-11-30T12:00:00Z"
"""Every timestamp of a recorded object (conditions' lastTransitionTime, start and analysis times) becomes this."""
REPLICA_SET = re.compile(r"(ReplicaSet \\?\"[-a-z0-9]+)-[bcdfghjklmnpqrstvwxz2456789]{6,10}")
TMP_PATH = re.compile(r"/tmp/pytest-of-[^/]+/pytest-\d+/[^/\s'\"]+")
SETTLED_PROGRESS = ("AsExpected", "Available", "RolloutComplete")
"""Progressing reasons of an object with nothing in progress: they add nothing to a Ready object's file name."""


def kebab(reason: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", reason).lower()


def file_stem(body: dict[str, Any]) -> str:
    """The object's state in a file name: the Ready reason, plus (when Ready) Progressing's when it says what is in
    progress, plus Degraded's when it differs; `no-status` without."""
    conditions = {c["type"]: c for c in (body.get("status") or {}).get("conditions") or ()}
    if "Ready" not in conditions:
        return "no-status"
    ready = conditions["Ready"]
    parts = [kebab(ready["reason"])]
    if ready["status"] == "True":
        parts[0] = f"ready-{parts[0]}"
        progressing = conditions.get("Progressing")
        if progressing is not None and progressing["reason"] not in (ready["reason"], *SETTLED_PROGRESS):
            parts.append(f"progressing-{kebab(progressing['reason'])}")  # e.g. a canary step while serving
    degraded = conditions.get("Degraded")
    if degraded is not None and degraded["status"] == "True" and degraded["reason"] != ready["reason"]:
        parts.append(f"degraded-{kebab(degraded['reason'])}")
    return "-".join(parts)


def normalise(body: dict[str, Any]) -> dict[str, Any]:
    metadata = body.get("metadata") or {}
    kept: dict[str, Any] = {
        "apiVersion": body["apiVersion"],
        "kind": body["kind"],
        "metadata": {"name": metadata["name"], "namespace": NAMESPACE, "generation": metadata.get("generation")},
        "spec": body.get("spec") or {},
    }
    if body.get("status"):
        kept["status"] = body["status"]
    text = yaml.safe_dump(kept, sort_keys=False)
    namespace = metadata.get("namespace")
    if namespace:
        text = text.replace(namespace, NAMESPACE)
    loaded: dict[str, Any] = yaml.safe_load(stable_text(text))
    return loaded


def stable_text(text: str) -> str:
    """What differs between two runs of one test, made the same: free ports, temporary folders, pod template hashes
    (they cover the test's namespace), timestamps. Measurements (counts, rates, latencies) stay as they were."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:8080", text)  # the test's free port
    text = TMP_PATH.sub("/models", text)  # the test's tmp_path, e.g. a SavedModel repository
    text = REPLICA_SET.sub(r"\1-6d5f8b7c9d", text)  # the pod template's hash covers the test's namespace
    return TIMESTAMP.sub(RECORDED_AT, text)


def record(body: dict[str, Any], stem: str | None = None) -> Path | None:
    """Write ``body`` as testdata when recording is on; returns the file written."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return None
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown test").rsplit(" (", 1)[0]
    path = Path(folder) / body["kind"] / "testdata" / f"{stem or file_stem(body)}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{SOURCE_PREFIX}{test}\n" + yaml.safe_dump(normalise(body), sort_keys=False))
    return path


def main(folder: str) -> None:
    """Apply :func:`stable_text` to every recorded file under ``folder`` (after a change of its rules)."""
    for path in sorted(Path(folder).glob("*/testdata/*.yaml")):
        text = path.read_text()
        if text.startswith(SOURCE_PREFIX) and stable_text(text) != text:
            path.write_text(stable_text(text))
            print(path)


if __name__ == "__main__":
    import sys

    main(sys.argv[1])
