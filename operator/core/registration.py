"""Register a Kind with Kopf: its reconcile handler and supervisor daemon, and the watches of its child kinds.

A Kind's ``handlers.py`` calls ``register(CONTROLLER)`` and nothing else happens at import: the machinery the
handlers call (``Supervisor``) is built at startup and kept in Kopf's memo.
"""

from __future__ import annotations

from typing import Any

import kopf

from croupier.operator.core.controller import KindController
from croupier.operator.core.observer import MANAGED, POKE_HANDLER_PREFIX, index_child, index_id, poke_owner
from croupier.operator.core.resources import Resource
from croupier.operator.core.supervisor import Supervisor

_watched: dict[str, Resource] = {}


def watched_children() -> tuple[Resource, ...]:
    """Every child kind some registered Kind owns (label-selected watches in ``startup``)."""
    return tuple(_watched.values())


def supervisor(memo: kopf.Memo) -> Supervisor:
    found = getattr(memo, "supervisor", None)
    if not isinstance(found, Supervisor):
        raise kopf.TemporaryError("the operator is still starting", delay=1)
    return found


async def _poke(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # A coroutine: Kopf would run a plain function in its thread pool (see ``index_child``).
    found = getattr(memo, "supervisor", None)
    if isinstance(found, Supervisor):
        poke_owner(found.poke, body)


def _watch_children(controller: KindController[Any, Any, Any]) -> None:
    for resource in controller.children:
        if resource.plural in _watched:
            continue
        _watched[resource.plural] = resource
        group, version, plural = resource.group, resource.version, resource.plural
        kopf.index(group, version, plural, id=index_id(resource), labels=MANAGED)(index_child)
        kopf.on.event(group, version, plural, id=f"{POKE_HANDLER_PREFIX}{plural}", labels=MANAGED)(_poke)


def register(controller: KindController[Any, Any, Any]) -> None:
    """Kopf handlers of one Kind: reconcile on resume/create/update, and one supervisor daemon per object."""
    _watch_children(controller)
    resource = controller.resource
    group, version, plural = resource.group, resource.version, resource.plural

    @kopf.on.resume(group, version, plural, id="reconcile")
    @kopf.on.create(group, version, plural, id="reconcile")
    @kopf.on.update(group, version, plural, id="reconcile")
    async def reconcile(body: kopf.Body, memo: kopf.Memo, reason: str, **kwargs: Any) -> None:
        await supervisor(memo).reconcile(controller, body, kwargs, trigger=str(reason))

    @kopf.daemon(group, version, plural, id="supervise", cancellation_timeout=5.0)
    async def supervise(body: kopf.Body, memo: kopf.Memo, **kwargs: Any) -> None:
        await supervisor(memo).supervise(controller, body, kwargs)
