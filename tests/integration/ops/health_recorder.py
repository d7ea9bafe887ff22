"""Records the statuses integration tests observe as Argo CD health-check testdata.

With ``CROUPIER_RECORD_HEALTH_TESTDATA`` set to a folder (normally
``config/argocd/resource_customizations/croupier.dev``), :func:`record` writes each observed object, stripped of what
the server adds (uid, resourceVersion, managedFields, Kopf's annotations) and with the test's namespace replaced by
``example``, every timestamp by one fixed time and the test's temporary folder by ``/models`` (so a new recording
changes only what changed), to
``<folder>/<Kind>/testdata/<reasons>.yaml``. The first line names the test that produced it; a unit
test (tests/unit/ops/test_health_testdata.py) keeps the checked-in files valid against the status models. Without
the variable :func:`record` checks instead: the object must equal the committed file of its state
(:func:`comparable`: everything but measurements), or the test fails and names the difference. The integration runs
that produce the objects are the check, so a status change cannot leave stale testdata behind.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# libyaml's safe loader and dumper when PyYAML has them (a check per record() call runs in every integration run).
FastLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FastDumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
RECORD_ENV = "CROUPIER_RECORD_HEALTH_TESTDATA"
COMMITTED = Path(__file__).resolve().parents[3] / "config" / "argocd" / "resource_customizations" / "croupier.dev"
"""The committed testdata, which recordings go to and checks compare with."""
RECORD_COMMAND = (
    "CROUPIER_RECORD_HEALTH_TESTDATA=$PWD/config/argocd/resource_customizations/croupier.dev uv run pytest <the test>"
)
NUMBER = re.compile(r"\d+(\.\d+)?(e[-+]?\d+)?")
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
    text = yaml.dump(kept, Dumper=FastDumper, sort_keys=False)
    namespace = metadata.get("namespace")
    if namespace:
        text = text.replace(namespace, NAMESPACE)
    loaded: dict[str, Any] = yaml.load(stable_text(text), Loader=FastLoader)
    return loaded


def stable_text(text: str) -> str:
    """What differs between two runs of one test, made the same: free ports, temporary folders, pod template hashes
    (they cover the test's namespace), timestamps. Measurements (counts, rates, latencies) stay as they were."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:8080", text)  # the test's free port
    text = TMP_PATH.sub("/models", text)  # the test's tmp_path, e.g. a SavedModel repository
    text = REPLICA_SET.sub(r"\1-6d5f8b7c9d", text)  # the pod template's hash covers the test's namespace
    return TIMESTAMP.sub(RECORDED_AT, text)


def _shape(value: Any) -> Any:
    """What a measured value must keep: its keys and types, and its text with the numbers taken out; a list, the
    distinct shapes of its items (the number of analysis intervals kept so far may differ)."""
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        shapes = {json.dumps(_shape(item), sort_keys=True, default=str) for item in value}
        return sorted(shapes)
    if isinstance(value, str):
        return NUMBER.sub("N", value)
    if isinstance(value, bool) or value is None:
        return value
    return type(value).__name__ if not isinstance(value, int | float) else "number"


def comparable(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of a normalised object a new run must reproduce: metadata, spec and observedGeneration as they are;
    each condition's type, status, reason and observedGeneration as they are and its message with the numbers taken
    out; the other status fields with :func:`_shape` (counts, rates and latencies are measured, and may differ from
    run to run)."""
    status = dict(obj.get("status") or {})
    generation = status.pop("observedGeneration", None)
    conditions = [
        {
            "type": c.get("type"),
            "status": c.get("status"),
            "reason": c.get("reason"),
            "observedGeneration": c.get("observedGeneration"),
            "message": NUMBER.sub("N", str(c.get("message") or "")),
        }
        for c in status.pop("conditions", None) or ()
    ]
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": obj.get("metadata"),
        "spec": obj.get("spec"),
        "status": {"observedGeneration": generation, "conditions": conditions, **_shape(status)}
        if obj.get("status")
        else None,
    }


def differences(expected: Any, found: Any, where: str = "") -> list[str]:
    """Where two :func:`comparable` values differ, as `path: committed -> produced` lines."""
    if isinstance(expected, dict) and isinstance(found, dict):
        lines = []
        for key in sorted(set(expected) | set(found), key=str):
            lines += differences(expected.get(key), found.get(key), f"{where}.{key}" if where else str(key))
        return lines
    if isinstance(expected, list) and isinstance(found, list) and len(expected) == len(found):
        return [
            line
            for i, pair in enumerate(zip(expected, found, strict=True))
            for line in differences(*pair, f"{where}[{i}]")
        ]
    return [] if expected == found else [f"{where}: {expected!r} -> {found!r}"]


class StaleTestdataError(AssertionError):
    """An integration test produced a state whose committed testdata is missing or says something else."""


def current_test() -> str:
    """The running test's node id, as the first line of a recorded file names it."""
    return os.environ.get("PYTEST_CURRENT_TEST", "unknown test").rsplit(" (", 1)[0]


def check(body: dict[str, Any], stem: str | None = None, folder: Path = COMMITTED, test: str | None = None) -> Path:
    """Fail unless the committed testdata of ``body``'s state exists, was recorded, and, when ``test`` (default: the
    running one) is the test that recorded it, matches it (:func:`comparable`); returns the file.

    Two tests may reach one state with different objects (names, specs): the file is the last recording's, and only
    its own test compares with it."""
    path = folder / body["kind"] / "testdata" / f"{stem or file_stem(body)}.yaml"
    relative = path.relative_to(folder.parent) if folder.parent in path.parents else path
    if not path.exists():
        raise StaleTestdataError(f"{relative}: no committed testdata for this state; record it: {RECORD_COMMAND}")
    text = path.read_text()
    if not text.startswith(SOURCE_PREFIX):
        raise StaleTestdataError(
            f"{relative} is hand-written, but a test produced its state: record it ({RECORD_COMMAND}) and remove it "
            "from hack/healthchecks/handwritten.py"
        )
    if text.splitlines()[0] != f"{SOURCE_PREFIX}{test or current_test()}":
        return path
    committed = yaml.load(text, Loader=FastLoader)
    produced = normalise(body)
    found = differences(comparable(committed), comparable(produced))
    if found and _settles(body, comparable(committed)):
        return path
    if found:
        source = text.splitlines()[0] if text else ""
        raise StaleTestdataError(
            f"{relative} ({source}) no longer matches what the operator writes; record it again: {RECORD_COMMAND}\n"
            + "\n".join(found[:20])
        )
    return path


SETTLE_SECONDS = 30.0
"""How long :func:`check` reads a differing object again before it calls the testdata stale."""
SETTLE_POLL_SECONDS = 1.0
Fetch = Callable[[dict[str, Any]], dict[str, Any] | None]
_fetch: Fetch | None = None


def read_again_with(fetch: Fetch | None) -> None:
    """How :func:`check` reads an object again: the integration session's kubectl (tests/integration/conftest.py).

    Under load a test may pass an object from the operator's pass before last, still in the state the test waited for
    but with an older message (pods not yet counted, a target not yet seen): the operator's next pass writes the
    committed one. So a differing object is read again for up to ``SETTLE_SECONDS``; it passes only if it settles on
    the committed file, in the same state."""
    global _fetch  # noqa: PLW0603 - one fetcher per test session
    _fetch = fetch


def _settles(body: dict[str, Any], committed: dict[str, Any]) -> bool:
    if _fetch is None:
        return False
    deadline = time.monotonic() + SETTLE_SECONDS
    while time.monotonic() < deadline:
        time.sleep(SETTLE_POLL_SECONDS)
        try:
            again = _fetch(body)
        except Exception:
            return False
        if again is None or file_stem(again) != file_stem(body):
            return False  # moved on to another state: the object the test passed is what it is
        if not differences(committed, comparable(normalise(again))):
            return True
    return False


def record(body: dict[str, Any], stem: str | None = None) -> Path | None:
    """Write ``body`` as testdata when recording is on; otherwise :func:`check` it against the committed file.
    Returns the file written or checked."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return check(body, stem)
    test = current_test()
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
