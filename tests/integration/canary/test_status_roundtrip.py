"""The engine's rollout status through a real kube-apiserver: the CRD's status schema admits what the engine writes
(every state, analysis history, rollback record), and what comes back parses to the same model, so the next pass
with nothing new computes an identical status (no writes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from croupier.api.common import GROUP, VERSION
from croupier.api.modeldeployment import ModelDeploymentSpec, ModelDeploymentStatus, RolloutState, RolloutStatus
from croupier.devcluster.kubectl import Kubectl
from croupier.operator.core.status import merge_patch
from croupier.operator.modeldeployment.canary.engine import advance
from croupier.operator.modeldeployment.canary.measurement import Measurement, VersionSample

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC: dict[str, Any] = {
    "model": {"name": "ranker", "storageUri": "file:///models/ranker"},
    "stable": {"version": 1},
    "canary": {
        "version": 2,
        "steps": [{"weight": 10, "pauseSeconds": 60}, {"weight": 50, "pauseSeconds": 60}],
        "analysis": {"maxErrorRate": 0.01, "maxP99LatencyRatio": 2, "intervalSeconds": 60, "failureLimit": 1},
    },
}
GOOD = Measurement(VersionSample(500, 0.001, 40.0), VersionSample(4500, 0.001, 35.0))
BAD = Measurement(VersionSample(500, 0.3, 40.0, gaps=()), VersionSample(4500, 0.001, 35.0))


@pytest.fixture(scope="module")
def custom(kubectl: Kubectl, k8s_api: client.ApiClient) -> Iterator[client.CustomObjectsApi]:
    crd = ROOT / "crds" / "croupier.dev_modeldeployments.yaml"
    kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=croupier-tests", "-f", str(crd))
    kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/modeldeployments.{GROUP}")
    yield client.CustomObjectsApi(k8s_api)


def rollouts() -> list[RolloutStatus]:
    """A rollout through Waiting, Progressing (with history), Complete-bound steps and a rollback."""
    spec = ModelDeploymentSpec.model_validate(SPEC)
    seen: list[RolloutStatus] = []
    rollout = advance(spec, None, None, T0, False).rollout
    assert rollout is not None
    seen.append(rollout)
    now = T0
    for available, observation in [(True, None), (True, GOOD), (True, GOOD), (True, BAD), (True, BAD)]:
        if observation is not None:
            assert rollout.next_analysis_time is not None
            now = rollout.next_analysis_time
        rollout = advance(spec, rollout, observation, now + timedelta(microseconds=1), available).rollout
        assert rollout is not None
        seen.append(rollout)
    assert [r.state for r in seen][-1] == RolloutState.ROLLED_BACK
    return seen


def test_every_rollout_status_the_engine_writes_is_admitted_and_reads_back_equal(
    custom: client.CustomObjectsApi, namespace: str
) -> None:
    doc = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": "ranker"}, "spec": SPEC}
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", doc)
    spec = ModelDeploymentSpec.model_validate(SPEC)
    stored: dict[str, Any] = {}
    for rollout in rollouts():
        status = ModelDeploymentStatus(canary_weight=rollout.weight, current_step=rollout.step, rollout=rollout)
        patch = merge_patch(stored.get("status") or {}, status.to_wire())
        custom.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "modeldeployments", "ranker", {"status": patch}
        )
        stored = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", "ranker")
        back = ModelDeploymentStatus.model_validate(stored["status"]).rollout
        assert back == rollout, (back, rollout)
        again = advance(spec, back, None, (rollout.step_start_time or T0) + timedelta(seconds=1), True)
        if rollout.state not in (RolloutState.WAITING, RolloutState.PROGRESSING):
            assert again.rollout == back and again.events == ()
    assert back is not None and back.rollback is not None and back.rollback.failed_intervals
