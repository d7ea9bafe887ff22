"""Kopf handlers for DecisionPolicy: thin wrappers; the logic lives in ``croupier.operator.policy``.

* ``reconcile`` (create/update/resume): apply the children that differ from the spec.
* ``supervise`` (a daemon per policy): the status writer and periodic health/drift/statistics check.
* indexes + event handlers on the children (selected server-side by ``app.kubernetes.io/managed-by``): the live
  children without API reads, and a poke to the owning policy's supervisor whenever one of them changes.
"""

from __future__ import annotations

from typing import Any

import kopf

from croupier.api.common import GROUP, VERSION
from croupier.api.decisionpolicy import PLURAL
from croupier.operator.policy.reconciler import PolicyReconciler, owning_policy_uid, slim
from croupier.operator.settings import FIELD_MANAGER

MANAGED = {"app.kubernetes.io/managed-by": FIELD_MANAGER}

# (group, version, plural) of every child kind, and the name its index is passed to handlers under.
CHILD_RESOURCES: dict[str, tuple[str, str, str]] = {
    "dp_configmaps": ("", "v1", "configmaps"),
    "dp_services": ("", "v1", "services"),
    "dp_persistentvolumeclaims": ("", "v1", "persistentvolumeclaims"),
    "dp_deployments": ("apps", "v1", "deployments"),
    "dp_poddisruptionbudgets": ("policy", "v1", "poddisruptionbudgets"),
}


def reconciler(memo: kopf.Memo) -> PolicyReconciler:
    found = getattr(memo, "policy_reconciler", None)
    if not isinstance(found, PolicyReconciler):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return found


def _child_indexes(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs[name] for name in CHILD_RESOURCES}


def index_child(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]] | None:
    uid = owning_policy_uid(body)
    return {uid: slim(body)} if uid is not None else None


def poke_owner(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    found = getattr(memo, "policy_reconciler", None)
    if isinstance(found, PolicyReconciler):
        found.poke(owning_policy_uid(body))


for _index_id, (_group, _version, _plural) in CHILD_RESOURCES.items():
    kopf.index(_group, _version, _plural, id=_index_id, labels=MANAGED)(index_child)
    kopf.on.event(_group, _version, _plural, id=f"poke_owner_{_plural}", labels=MANAGED)(poke_owner)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL)
async def reconcile(body: kopf.Body, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
    await reconciler(memo).reconcile(body, _child_indexes(kwargs), trigger=str(reason))


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=5.0)
async def supervise(body: kopf.Body, stopped: kopf.DaemonStopped, memo: kopf.Memo, **kwargs: Any) -> None:
    await reconciler(memo).supervise(body, stopped, _child_indexes(kwargs))
