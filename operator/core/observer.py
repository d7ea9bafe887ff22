"""Observe children without API reads: Kopf indexes over label-selected watches, keyed by the owner's uid.

The watches are selected server-side by ``app.kubernetes.io/managed-by`` (``MANAGED_BY_SELECTOR``), so the operator
never receives or caches other people's objects. Every event on a child pokes its owner's supervisor.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from croupier.operator.core.controller import ChildKey
from croupier.operator.core.ownership import owner_uid, slim
from croupier.operator.core.resources import Resource
from croupier.operator.settings import FIELD_MANAGER

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED = {MANAGED_BY_LABEL: FIELD_MANAGER}
MANAGED_BY_SELECTOR = f"{MANAGED_BY_LABEL}={FIELD_MANAGER}"
POKE_HANDLER_PREFIX = "poke_owner_"


def index_id(resource: Resource) -> str:
    """The name under which Kopf passes this child kind's index to handlers."""
    return f"children_{resource.plural}"


async def index_child(body: Mapping[str, Any], **_: Any) -> dict[str, dict[str, Any]] | None:
    """Kopf index function: a child, slimmed, under its owner's uid (children of no one of ours: not indexed).

    A coroutine, like every handler of ours: Kopf runs a plain function in its thread pool, and a child event (a
    thousand in a burst of 200 new policies) would cost a thread hop, and the index entries would be allocated in
    the worker threads' malloc arenas, where they fragment and hold on to memory (the operator's peak RSS).
    """
    uid = owner_uid(body)
    return {uid: slim(body)} if uid is not None else None


def live_children(
    uid: str, children: Iterable[Resource], indexes: Mapping[str, Mapping[str, Iterable[Mapping[str, Any]]]]
) -> dict[ChildKey, Any]:
    """The live children of one object, from the indexes Kopf passed to a handler."""
    live: dict[ChildKey, Any] = {}
    for resource in children:
        for obj in indexes[index_id(resource)].get(uid, ()):
            live[(str(obj.get("kind")), str(obj["metadata"]["name"]))] = obj
    return live


def poke_owner(poke: Callable[[str], None], body: Mapping[str, Any]) -> None:
    """On a child's event: wake its owner's supervisor."""
    uid = owner_uid(body)
    if uid is not None:
        poke(uid)
