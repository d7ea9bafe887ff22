"""Two operator replicas with Kopf's peering: the leader is killed (SIGKILL, no goodbye) while it reconciles 50
DecisionPolicies; the standby takes over, every policy becomes Ready, no child exists twice, and once settled the
operator writes nothing but its peering keep-alives."""

from __future__ import annotations

import signal
import time

import pytest
from integration.ha.conftest import Fleet, OperatorFactory, operator_writes, peering_writes

from croupier.devcluster.kubectl import Kubectl
from croupier.devcluster.waiting import wait_for

POLICIES = 50
LIFETIME = 15  # seconds a keep-alive counts; the takeover after a SIGKILL is bounded by it
SETTLE_SECONDS = 15  # the last status details are refreshed at most every 10 s
QUIET_SECONDS = 20


def peers(kubectl: Kubectl, peering: str) -> dict[str, dict[str, object]]:
    body = kubectl.json("get", "clusterkopfpeering", peering)
    return dict(body.get("status") or {})


@pytest.mark.timeout(420)
def test_standby_takes_over_from_a_killed_leader_mid_reconcile(
    operators: OperatorFactory, fleet: Fleet, kubectl: Kubectl, peering: str
) -> None:
    ha = {"CROUPIER_OPERATOR_PEERING_NAME": peering, "CROUPIER_OPERATOR_PEERING_LIFETIME_SECONDS": str(LIFETIME)}
    leader = operators("replica-a", **ha)
    wait_for(lambda: "replica-a" in peers(kubectl, peering), timeout=30, what="replica-a in the peering object")
    standby = operators("replica-b", **ha)
    wait_for(lambda: "replica-b" in peers(kubectl, peering), timeout=30, what="replica-b in the peering object")
    priorities = {name: int(str(info["priority"])) for name, info in peers(kubectl, peering).items()}
    assert priorities["replica-a"] > priorities["replica-b"], "the replica that started first leads"

    fleet.create(POLICIES)
    # In the middle of reconciling: some policies have their children, not every one is Ready yet.
    wait_for(
        lambda: leader.metric("croupier_operator_reconciles_total", outcome="ok") >= 5,
        timeout=60,
        what="the leader reconciling",
    )
    ready_at_kill = len(fleet.ready())
    assert leader.process is not None
    leader.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    leader.process.wait(10)
    assert ready_at_kill < POLICIES, "the leader finished before it was killed: nothing was taken over"
    assert standby.metric("croupier_operator_reconciles_total") == 0, "the standby worked while the leader lived"

    wait_for(
        lambda: standby.metric("croupier_operator_reconciles_total") > 0,
        timeout=LIFETIME + 30,
        what="the standby taking over",
        on_tick=standby._check,
    )
    took_over = time.monotonic() - killed
    fleet.wait_ready(timeout=180)
    all_ready = time.monotonic() - killed
    print(
        f"\ntakeover: {ready_at_kill}/{POLICIES} Ready at the kill; the standby reconciled {took_over:.1f} s after it "
        f"(lifetime {LIFETIME} s); all Ready {all_ready:.1f} s after it"
    )
    assert took_over <= LIFETIME + 15

    kinds = fleet.assert_one_set_of_children_each()
    assert kinds.get("Deployment") == 1 and kinds.get("ConfigMap") == 1
    replica_sets = fleet.replica_sets()
    assert set(replica_sets) == {f"{name}" for name in fleet.names}
    assert set(replica_sets.values()) == {1}, "a Deployment's pod template was written twice"

    time.sleep(SETTLE_SECONDS)
    versions, writes, keepalives = fleet.versions(), operator_writes(kubectl), peering_writes(kubectl)
    time.sleep(QUIET_SECONDS)
    changed = {k for k, v in fleet.versions().items() if versions.get(k) != v}
    assert operator_writes(kubectl) - writes == 0
    assert changed == set()
    # The surviving replica keeps alive every LIFETIME - 5..10 s (the dead one was cleaned from the object).
    assert 1 <= peering_writes(kubectl) - keepalives <= QUIET_SECONDS // 5 + 1
    assert set(peers(kubectl, peering)) == {"replica-b"}
