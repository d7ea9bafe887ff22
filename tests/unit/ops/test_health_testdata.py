"""The Argo CD / Flux health-check testdata (config/argocd/resource_customizations/croupier.dev/<Kind>/) stays in step
with the API: every condition reason of every kind has a test object, every object is valid against the kind's status
model, and each one says where it came from (an integration test's recording, or written by hand)."""

from __future__ import annotations

import importlib.util
import re
from enum import StrEnum
from pathlib import Path
from typing import Any

import pytest
import yaml
from integration.ops import health_recorder
from integration.ops.health_recorder import StaleTestdataError, check, stable_text
from pydantic import BaseModel

from croupier.api import decisionpolicy, experiment, modeldeployment
from croupier.api.common import ChildReason

ROOT = Path(__file__).resolve().parents[3]
CHECKS = ROOT / "config" / "argocd" / "resource_customizations" / "croupier.dev"
EXPECTATIONS = ROOT / "hack" / "healthchecks" / "kstatus_expectations.yaml"
KINDS: dict[str, tuple[type[StrEnum], type[BaseModel]]] = {
    "DecisionPolicy": (decisionpolicy.Reason, decisionpolicy.DecisionPolicyStatus),
    "ModelDeployment": (modeldeployment.Reason, modeldeployment.ModelDeploymentStatus),
    "Experiment": (experiment.Reason, experiment.ExperimentStatus),
}
SOURCES = ("# source: integration ", "# source: hand-written")
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def _testdata(kind: str) -> dict[str, tuple[str, dict[str, Any]]]:
    found = {}
    for path in sorted((CHECKS / kind / "testdata").glob("*.yaml")):
        text = path.read_text()
        found[f"testdata/{path.name}"] = (text.splitlines()[0], yaml.safe_load(text))
    return found


def _health_tests(kind: str) -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((CHECKS / kind / "health_test.yaml").read_text())["tests"]
    return tests


def test_one_check_per_kind_and_no_other_kind() -> None:
    assert sorted(p.name for p in CHECKS.iterdir()) == sorted(KINDS)
    scripts = {kind: (CHECKS / kind / "health.lua").read_text() for kind in KINDS}
    # One rule set for every kind (docs/gitops.md): the copies Argo CD's layout needs stay identical.
    assert len(set(scripts.values())) == 1


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_reason_has_a_test_object(kind: str) -> None:
    reasons, _ = KINDS[kind]
    declared = {r.value for r in reasons} | {r.value for r in ChildReason}
    seen = {
        condition["reason"]
        for _, obj in _testdata(kind).values()
        for condition in (obj.get("status") or {}).get("conditions") or ()
    }
    missing = sorted(declared - seen)
    assert not missing, f"{kind}: no health-check test object with reason {missing} (add one to testdata/)"
    unknown = sorted(seen - declared)
    assert not unknown, f"{kind}: testdata uses reasons the API does not declare: {unknown}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_testdata_matches_the_status_model_and_names_its_source(kind: str) -> None:
    _, model = KINDS[kind]
    for name, (first_line, obj) in _testdata(kind).items():
        assert first_line.startswith(SOURCES), f"{kind}/{name}: first line must say its source"
        assert obj["kind"] == kind and obj["apiVersion"] == "croupier.dev/v1alpha1", name
        assert isinstance(obj["metadata"].get("generation"), int), name
        if "status" in obj:
            model.model_validate(obj["status"])


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_test_object_is_in_health_test_yaml_and_kstatus_expectations(kind: str) -> None:
    tests = _health_tests(kind)
    listed = [t["inputPath"] for t in tests]
    assert sorted(listed) == sorted(_testdata(kind)), f"{kind}/health_test.yaml and testdata/ differ"
    assert all(t["healthStatus"]["status"] in ARGO_STATUSES for t in tests)
    expected = {e["inputPath"] for e in yaml.safe_load(EXPECTATIONS.read_text())["tests"]}
    assert {f"croupier.dev/{kind}/{path}" for path in listed} <= expected


def test_the_rules_the_issue_asks_for() -> None:
    """Healthy only when observedGeneration is current and Ready is True; Degraded on Degraded=True."""
    for kind in KINDS:
        data = _testdata(kind)
        for test in _health_tests(kind):
            _, obj = data[test["inputPath"]]
            status = obj.get("status") or {}
            conditions = {c["type"]: c for c in status.get("conditions") or ()}
            current = status.get("observedGeneration") == obj["metadata"]["generation"]
            verdict = test["healthStatus"]["status"]
            if verdict == "Healthy":
                assert current and conditions["Ready"]["status"] == "True", test
            if current and conditions.get("Degraded", {}).get("status") == "True":
                assert verdict == "Degraded", test


def test_gitops_doc_shows_the_tested_flux_expressions() -> None:
    tested = yaml.safe_load((ROOT / "hack" / "healthchecks" / "flux-healthcheckexprs.yaml").read_text())
    doc = (ROOT / "docs" / "gitops.md").read_text()
    blocks = [yaml.safe_load(b.split("```", 1)[0]) for b in doc.split("```yaml\n")[1:]]
    (kustomization,) = [b for b in blocks if b.get("kind") == "Kustomization"]
    assert kustomization["spec"]["healthCheckExprs"] == tested["healthCheckExprs"]
    kinds = {check["kind"] for check in tested["healthCheckExprs"]}
    assert kinds == set(KINDS)


def test_the_three_kinds_share_one_health_check() -> None:
    # Argo CD's layout wants one health.lua per kind; the rules are the same for all three: copies must not drift.
    folder = ROOT / "config" / "argocd" / "resource_customizations" / "croupier.dev"
    checks = {
        kind: (folder / kind / "health.lua").read_text() for kind in ("DecisionPolicy", "ModelDeployment", "Experiment")
    }
    assert len(set(checks.values())) == 1, "health.lua differs between kinds: edit one and copy it to the others"


def _handwritten_states() -> dict[str, set[str]]:
    """Reason of each state hack/healthchecks/handwritten.py writes (the ones no real run can produce), per kind."""
    spec = importlib.util.spec_from_file_location("handwritten", ROOT / "hack" / "healthchecks" / "handwritten.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {kind: {ready[1] for ready, *_ in states} for kind, states in module.STATES.items()}


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_only_states_no_real_run_produces_are_hand_written(kind: str) -> None:
    allowed = _handwritten_states().get(kind, set())
    for name, (first_line, obj) in _testdata(kind).items():
        if first_line.startswith("# source: hand-written"):
            ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
            assert ready["reason"] in allowed, f"{kind}/{name} is hand-written; record it from an integration test"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_recorded_objects_carry_nothing_that_changes_between_runs(kind: str) -> None:
    for name in _testdata(kind):
        text = (CHECKS / kind / name).read_text()
        assert stable_text(text) == text, f"{kind}/{name}: run-specific values (time, port, folder) left in"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_recorded_object_passes_the_staleness_check_against_itself(kind: str) -> None:
    for name, (first_line, obj) in _testdata(kind).items():
        if first_line.startswith(SOURCES[0]):
            test = first_line.removeprefix(SOURCES[0])
            assert check(obj, Path(name).stem, test=test) == CHECKS / kind / name


TEST = "tests/integration/ops/test_health_states_blocked.py::test_a_rollout_past_its_progress_deadline_is_stalled"


def _recorded(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    source = CHECKS / "DecisionPolicy" / "testdata" / "rollout-stalled.yaml"
    folder = tmp_path / "croupier.dev"
    (folder / "DecisionPolicy" / "testdata").mkdir(parents=True)
    recorded = f"# source: integration {TEST}\n" + source.read_text().split("\n", 1)[1]
    (folder / "DecisionPolicy" / "testdata" / source.name).write_text(recorded)
    body: dict[str, Any] = yaml.safe_load(source.read_text())
    body["metadata"]["namespace"] = "it-7f3a"  # as the integration test saw it, before normalise()
    return body, folder


def test_a_changed_condition_fails_the_check_and_names_what_changed(tmp_path: Path) -> None:
    body, folder = _recorded(tmp_path)
    stalled = next(c for c in body["status"]["conditions"] if c["type"] == "Stalled")
    stalled["status"] = "False"
    with pytest.raises(
        StaleTestdataError, match=r"rollout-stalled.yaml .* record it again(.|\n)*status: 'True' -> 'False'"
    ):
        check(body, folder=folder, test=TEST)


def test_a_condition_or_status_field_that_appears_or_goes_fails_the_check(tmp_path: Path) -> None:
    body, folder = _recorded(tmp_path)
    body["status"]["conditions"] = [c for c in body["status"]["conditions"] if c["type"] != "Reconciling"]
    with pytest.raises(StaleTestdataError, match="conditions"):
        check(body, folder=folder, test=TEST)
    body, folder = _recorded(tmp_path / "again")
    body["status"]["newField"] = "x"
    with pytest.raises(StaleTestdataError, match="newField: None -> 'x'"):
        check(body, folder=folder, test=TEST)


def test_measurements_may_differ_between_runs(tmp_path: Path) -> None:
    body, folder = _recorded(tmp_path)
    body["status"]["replicas"] = 7
    for condition in body["status"]["conditions"]:
        condition["lastTransitionTime"] = "2031-01-02T03:04:05.123Z"
        condition["message"] = condition["message"].replace("6d5f8b7c9d", "1d2f3b4c5d")  # numbers are masked
    assert check(body, folder=folder, test=TEST).name == "rollout-stalled.yaml"


@pytest.fixture
def read_again(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the API server answers when the check reads the object again, one body per read (the last repeats)."""
    answers: list[dict[str, Any]] = []
    monkeypatch.setattr(health_recorder, "SETTLE_SECONDS", 0.5)
    monkeypatch.setattr(health_recorder, "SETTLE_POLL_SECONDS", 0.01)
    monkeypatch.setattr(health_recorder, "_fetch", lambda _body: answers.pop(0) if len(answers) > 1 else answers[0])
    return answers


def test_an_object_from_an_older_pass_passes_once_it_settles_on_the_committed_state(
    tmp_path: Path, read_again: list[dict[str, Any]]
) -> None:
    body, folder = _recorded(tmp_path)
    older = yaml.safe_load(yaml.safe_dump(body))
    for condition in older["status"]["conditions"]:
        condition["message"] = "an older pass's message"
    read_again += [older, older, body]
    assert check(older, folder=folder, test=TEST).name == "rollout-stalled.yaml"


def test_an_object_that_stays_different_or_moves_on_fails(tmp_path: Path, read_again: list[dict[str, Any]]) -> None:
    body, folder = _recorded(tmp_path)
    different = yaml.safe_load(yaml.safe_dump(body))
    different["status"]["conditions"][0]["message"] = "something else"
    read_again.append(different)
    with pytest.raises(StaleTestdataError, match="no longer matches"):
        check(different, folder=folder, test=TEST)
    moved = yaml.safe_load(yaml.safe_dump(body))
    for condition in moved["status"]["conditions"]:
        condition["reason"] = "Available"  # another state: its own file, never this one's
    read_again[:] = [moved, body]
    with pytest.raises(StaleTestdataError, match="no longer matches"):
        check(different, folder=folder, test=TEST)


def test_a_state_without_committed_testdata_or_only_hand_written_fails(tmp_path: Path) -> None:
    body, folder = _recorded(tmp_path)
    with pytest.raises(StaleTestdataError, match="no committed testdata for this state"):
        check(body, "never-recorded", folder=folder, test=TEST)
    path = folder / "DecisionPolicy" / "testdata" / "rollout-stalled.yaml"
    path.write_text("# source: hand-written\n" + path.read_text().split("\n", 1)[1])
    with pytest.raises(StaleTestdataError, match="is hand-written, but a test produced its state"):
        check(body, folder=folder, test=TEST)


def test_only_the_recording_test_compares_with_a_state_two_tests_reach(tmp_path: Path) -> None:
    body, folder = _recorded(tmp_path)
    body["spec"]["arms"] = [{"name": "another"}]
    assert check(body, folder=folder, test="tests/integration/operator/test_other.py::test_same_state").exists()
    with pytest.raises(StaleTestdataError, match=r"spec\.arms"):
        check(body, folder=folder, test=TEST)


def test_the_stalling_reasons_in_gitops_md_are_the_operators() -> None:
    """docs/gitops.md's table says which Degraded reasons make kstatus's Stalled True; each kind's STALLS decides."""
    from croupier.operator.decisionpolicy.status import STALLS as POLICY  # noqa: PLC0415
    from croupier.operator.experiment.status import STALLS as EXPERIMENT  # noqa: PLC0415
    from croupier.operator.modeldeployment.status import STALLS as MODEL  # noqa: PLC0415

    stalls = {"DecisionPolicy": POLICY, "ModelDeployment": MODEL, "Experiment": EXPERIMENT}
    rows = {}
    for line in (ROOT / "docs" / "gitops.md").read_text().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) == 3 and cells[0] in KINDS:
            rows[cells[0]] = cells
    for kind, (reasons, _) in KINDS.items():
        _, stalled, retried = rows[kind]
        named = {word for word in re.findall(r"`(\w+)`", stalled)}
        assert named == {str(r) for r in stalls[kind]}, kind
        declared = {r.value for r in reasons} | {r.value for r in ChildReason}
        assert named | set(re.findall(r"`(\w+)`", retried)) <= declared, kind
