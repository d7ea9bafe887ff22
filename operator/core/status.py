"""Write status only when it differs from the stored one, and post Events on condition transitions.

The status is the api's typed model (``DecisionPolicyStatus``, ...), serialised by alias with unset fields left
out, as Kubernetes stores it. The merge patch names every field of the model that changed; a field that became unset
is patched to null (merge-patch deletes it). Lists (conditions) are written whole, as merge-patch requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import kopf
import structlog
from pydantic import ValidationError

from croupier.api.common import ApiModel, ConditionStatus, ConditionType
from croupier.operator import metrics
from croupier.operator.core.conditions import events_for, find, transitions
from croupier.operator.core.controller import Target
from croupier.operator.core.kube import KubeClient

# Events are best-effort: a few quick retries, not Kopf's default minute of them (e.g. into a deleted namespace).
EVENT_BACKOFFS = (1.0, 3.0)

StatusT = TypeVar("StatusT", bound=ApiModel)

log = structlog.get_logger("croupier.operator.status")


def status_fields(model: type[ApiModel]) -> tuple[str, ...]:
    """Every status field the operator owns: the model's fields, by their stored (camelCase) names."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def status_patch(current: Mapping[str, Any] | ApiModel | None, desired: ApiModel) -> dict[str, Any] | None:
    """The merge patch that turns ``current`` into ``desired`` (None: nothing to write)."""
    stored = current.to_wire() if isinstance(current, ApiModel) else dict(current or {})
    wanted = desired.to_wire()
    patch = {key: wanted.get(key) for key in status_fields(type(desired)) if stored.get(key) != wanted.get(key)}
    return patch or None


def ready_status(status: ApiModel) -> ConditionStatus:
    conditions = getattr(status, "conditions", None)
    ready = find(conditions, ConditionType.READY)
    return ConditionStatus(ready.status) if ready is not None else ConditionStatus.UNKNOWN


class StatusWriter:
    """The only writer of status. Remembers its own last write until the watch delivers it."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.written: dict[str, tuple[int, dict[str, Any]]] = {}  # uid -> (resourceVersion, status) of our patch

    def forget(self, uid: str) -> None:
        self.written.pop(uid, None)

    def current(self, uid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The stored status: Kopf's view of the body, unless our own last patch is newer than that view.

        The body arrives through the watch and may lag behind our last patch (a poke can come first). Comparing
        against a stale status would rewrite it with fresh transition times and post Events for transitions that
        already happened.
        """
        status = dict(body.get("status") or {})
        written = self.written.get(uid)
        if written is None:
            return status
        try:
            seen = int(body["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return status
        if seen >= written[0]:
            del self.written[uid]  # the watch caught up
            return status
        return dict(written[1])

    @staticmethod
    def parse(model: type[StatusT], stored: Mapping[str, Any]) -> StatusT | None:
        """The stored status as the typed model; None when there is none (or it does not validate: rewrite it)."""
        if not stored:
            return None
        try:
            return model.model_validate(stored)
        except ValidationError as error:
            log.warning("stored status does not validate; rewriting it", errors=error.error_count())
            return None

    async def write(
        self,
        target: Target,
        body: kopf.Body,
        stored: Mapping[str, Any],
        current: ApiModel | None,
        desired: ApiModel,
    ) -> bool:
        """Patch the status if it differs from ``stored`` (``current`` typed); post Events for the transitions."""
        patch = status_patch(stored, desired)
        if patch is None:
            return False
        response = await self.kube.patch_status(target.kind, target.namespace, target.name, patch)
        metrics.STATUS_WRITES.labels(kind=target.kind).inc()
        self._remember(target.uid, response)
        changes = transitions(getattr(current, "conditions", None), getattr(desired, "conditions", None) or [])
        log.info(
            "wrote status",
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            generation=target.generation,
            fields=sorted(patch),
            ready=str(ready_status(desired)),
        )
        for note in events_for(changes):
            kopf.event(
                body,
                type=note.type,
                reason=note.reason,
                message=note.message[:1024],
                backoffs=EVENT_BACKOFFS,
            )
        return True

    def _remember(self, uid: str, response: Mapping[str, Any]) -> None:
        try:
            version = int(response["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return  # opaque resourceVersions: rely on the watch
        self.written[uid] = (version, dict(response.get("status") or {}))
