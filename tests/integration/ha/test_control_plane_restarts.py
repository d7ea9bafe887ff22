"""The kube-apiserver, and separately etcd, restart under a running operator and runtime: decisions keep flowing during
the outage (the runtime never calls the API server), the operator's watches resume, the status catches up with every
decision made, nothing is created twice or lost, and once settled the operator writes nothing."""

from __future__ import annotations

import time

import httpx
import pytest
from integration.ha.conftest import Fleet, OperatorFactory, SharedRuntime, Traffic, operator_writes

from croupier.devcluster.controlplane import ControlPlane, ControlPlaneError
from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

POLICIES = 5


def runtime_totals(runtime: SharedRuntime) -> dict[str, int]:
    """What the runtime has acknowledged (its GET /v1/stats), across the module's tests."""
    totals: dict[str, int] = httpx.get(f"{runtime.url}/v1/stats", timeout=5, trust_env=False).json()["totals"]
    return totals


OUTAGE_SECONDS = 10
QUIET_SECONDS = 15


@pytest.mark.timeout(300)
@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_operator_and_runtime_ride_out_a_restart(  # noqa: PLR0917 - pytest passes fixtures positionally
    component: str,
    control_plane: ControlPlane | None,
    operators: OperatorFactory,
    shared_runtime: SharedRuntime,
    fleet: Fleet,
    kubectl: Kubectl,
) -> None:
    if control_plane is None:
        pytest.skip("restarts need the session's own control plane (CROUPIER_KUBECONFIG names an external cluster)")
    operator = operators(f"restart-{component}")
    fleet.create(POLICIES)
    fleet.wait_ready(timeout=120)
    uids = {b["metadata"]["name"]: b["metadata"]["uid"] for b in fleet.bodies()}
    children_before = {(c["kind"], c["metadata"]["name"]): c["metadata"]["uid"] for c in fleet.children()}

    served_before = runtime_totals(shared_runtime)
    with Traffic(shared_runtime.url) as traffic:
        time.sleep(1)
        down = time.monotonic()
        control_plane.stop_component(component)
        time.sleep(OUTAGE_SECONDS)
        up = time.monotonic()
        control_plane.start_component(component)
        back = time.monotonic()
        time.sleep(2)
    during = traffic.decisions_between(down, up)
    print(f"\n{component}: down {up - down:.1f} s, back {back - up:.1f} s later; {during} decisions during the outage")
    assert traffic.failures == []
    assert during > OUTAGE_SECONDS * 5, "decisions stopped while the control plane was down"

    # Nothing acknowledged was lost, and the status catches up with it (one runtime serves every policy's probe).
    served = runtime_totals(shared_runtime)
    assert served["decisions"] - served_before["decisions"] == traffic.decisions
    assert served["rewards"] - served_before["rewards"] == traffic.rewards

    def caught_up() -> bool:
        return all(
            {k: (b.get("status") or {}).get("totals", {}).get(k) for k in ("decisions", "rewards")}
            == {k: served[k] for k in ("decisions", "rewards")}
            for b in fleet.bodies()
        )

    try:
        wait_for(caught_up, timeout=60, interval=1.0, what=f"status totals at {served}")
    except TimeoutError:
        totals = [(b.get("status") or {}).get("totals") for b in fleet.bodies()]
        raise AssertionError(f"status totals {totals}, the runtime serves {served}") from None
    assert {b["metadata"]["name"]: b["metadata"]["uid"] for b in fleet.bodies()} == uids
    after = {(c["kind"], c["metadata"]["name"]): c["metadata"]["uid"] for c in fleet.children()}
    assert after == children_before, "a child was created again, or lost"
    fleet.assert_one_set_of_children_each()

    # The watches resumed: a policy created after the restart gets its children and becomes Ready. (After a long outage
    # the policies were once not Ready for over a minute, most likely the kwok node's 40 s lease lapsing; they recover.)
    fleet.create(1, prefix="after-restart")
    fleet.wait_ready(timeout=180)
    fleet.assert_one_set_of_children_each()

    # Settled: nothing written (the API server's counters restarted with it, if it restarted: compare within this run).
    time.sleep(12)
    versions, writes = fleet.versions(), operator_writes(kubectl)
    time.sleep(QUIET_SECONDS)
    assert operator_writes(kubectl) - writes == 0
    assert {k for k, v in fleet.versions().items() if versions.get(k) != v} == set()
    # The operator reports the outage as warnings (Kopf logs its own retries); none of its own lines is an error.
    own_errors = [
        line[:400]
        for line in operator.log.read_text(errors="replace").splitlines()
        if '"logger": "croupier.' in line and '"level": "error"' in line
    ]
    assert own_errors == []
    assert operator.alive()


def test_only_etcd_and_the_api_server_restart(control_plane: ControlPlane | None) -> None:
    if control_plane is None:
        pytest.skip("needs the session's own control plane")
    with pytest.raises(ControlPlaneError, match="only etcd, kube-apiserver can be restarted, not 'kube-scheduler'"):
        control_plane.stop_component("kube-scheduler")
    assert control_plane.running
