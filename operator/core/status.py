"""Write status only when it differs from the stored one, and post Events on condition transitions (and on the
condition reasons a kind declares, ``KindController.event_reasons``).

The status is the api's typed model (``DecisionPolicyStatus``, ...), serialised by alias with unset fields left
out, as Kubernetes stores it. The merge patch names every field of the model that changed; a field that became unset
is patched to null (merge-patch deletes it). Lists (conditions) are written whole, as merge-patch requires.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import kopf
import structlog
from pydantic import ValidationError

from croupier.api.common import ApiModel, Condition, ConditionStatus, ConditionType
from croupier.operator import metrics
from croupier.operator.core.conditions import all_events, find
from croupier.operator.core.controller import Target
from croupier.operator.core.kube import KubeClient

# A new generation's first in-progress status waits this long for the object to become Ready (one write on the way
# to Ready instead of one per step); in-progress details (messages, replica counts) are refreshed at most this often.
PROGRESS_GRACE_SECONDS = 5.0
PROGRESS_REFRESH_SECONDS = 10.0
# Events are best-effort: a few quick retries, not Kopf's default minute of them (e.g. into a deleted namespace).
EVENT_BACKOFFS = (1.0, 3.0)

StatusT = TypeVar("StatusT", bound=ApiModel)

log = structlog.get_logger("croupier.operator.status")


def status_fields(model: type[ApiModel]) -> tuple[str, ...]:
    """Every status field the operator owns: the model's fields, by their stored (camelCase) names."""
    return tuple(field.alias or name for name, field in model.model_fields.items())


def status_patch(
    current: Mapping[str, Any] | ApiModel | None, desired: ApiModel, fields: Sequence[str] | None = None
) -> dict[str, Any] | None:
    """The merge patch that turns ``current`` into ``desired`` in ``fields`` (default: all the model's; None: no
    change to write)."""
    stored = current.to_wire() if isinstance(current, ApiModel) else dict(current or {})
    wanted = desired.to_wire()
    owned = status_fields(type(desired)) if fields is None else fields
    patch = {key: merge_patch(stored.get(key), wanted.get(key)) for key in owned if stored.get(key) != wanted.get(key)}
    return patch or None


def merge_patch(stored: Any, wanted: Any) -> Any:
    """The JSON merge patch (RFC 7386) from ``stored`` to ``wanted``: objects are merged, so a nested key that became
    unset must be sent as null or the API server keeps its old value; lists and scalars are replaced whole."""
    if not isinstance(stored, Mapping) or not isinstance(wanted, Mapping):
        return wanted
    patch: dict[str, Any] = {key: None for key in stored if key not in wanted}
    for key, value in wanted.items():
        if stored.get(key) != value:
            patch[key] = merge_patch(stored.get(key), value)
    return patch


def ready_status(status: ApiModel) -> ConditionStatus:
    conditions = getattr(status, "conditions", None)
    ready = find(conditions, ConditionType.READY)
    return ConditionStatus(ready.status) if ready is not None else ConditionStatus.UNKNOWN


def _conditions(status: ApiModel | None) -> Sequence[Condition]:
    return getattr(status, "conditions", None) or ()


def in_progress(status: ApiModel | None) -> bool:
    """kstatus's in-progress: not Ready, Progressing, not Degraded."""
    conditions = _conditions(status)
    ready, progressing = find(conditions, ConditionType.READY), find(conditions, ConditionType.PROGRESSING)
    degraded = find(conditions, ConditionType.DEGRADED)
    return (
        ready is not None
        and ready.status == ConditionStatus.FALSE
        and progressing is not None
        and progressing.status == ConditionStatus.TRUE
        and (degraded is None or degraded.status != ConditionStatus.TRUE)
    )


def _phase(status: ApiModel | None) -> tuple[tuple[str, str, str], ...]:
    return tuple((c.type, str(c.status), c.reason) for c in _conditions(status))


def hold_for(
    current: ApiModel | None,
    desired: ApiModel,
    *,
    since_first_seen: float,
    since_last_write: float | None,
) -> float | None:
    """How long to hold back an in-progress status write (None: write now).

    * the first status of a generation (``current`` is for another one, or absent) waits up to
      ``PROGRESS_GRACE_SECONDS`` from when the generation was first seen: most objects are Ready sooner, and
      then Ready is the one status written;
    * an in-progress status whose conditions keep their status and reason (only messages and counts moved) is
      refreshed at most every ``PROGRESS_REFRESH_SECONDS``.

    Everything else (Ready, Degraded, a changed reason, a stalled rollout) is written at once.
    """
    if not in_progress(desired):
        return None
    generation = getattr(desired, "observed_generation", None)
    if getattr(current, "observed_generation", None) != generation:
        remaining = PROGRESS_GRACE_SECONDS - since_first_seen
        return remaining if remaining > 0 else None
    if since_last_write is not None and in_progress(current) and _phase(current) == _phase(desired):
        remaining = PROGRESS_REFRESH_SECONDS - since_last_write
        return remaining if remaining > 0 else None
    return None


class StatusWriter:
    """The only writer of status. Remembers its own last write until the watch delivers it."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.written: dict[str, tuple[int, dict[str, Any]]] = {}  # uid -> (resourceVersion, status) of our patch
        self.first_seen: dict[str, tuple[int, float]] = {}  # uid -> (generation, monotonic time first seen)
        self.last_write: dict[str, float] = {}  # uid -> monotonic time of our last status write

    def forget(self, uid: str) -> None:
        for per_object in (self.written, self.first_seen, self.last_write):
            per_object.pop(uid, None)

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
        *,
        fields: Sequence[str] | None = None,
        event_reasons: Mapping[str, str] | None = None,
    ) -> float | None:
        """Patch the status if it differs from ``stored`` (``current`` typed); post Events for the transitions and
        for conditions that took one of ``event_reasons`` (reason -> Event type). Events only follow a write: a
        settled object gets neither.

        Returns the seconds after which a held-back in-progress write is due (None: written, or nothing to write).
        """
        patch = status_patch(stored, desired, fields)
        if patch is None:
            return None
        moment = time.monotonic()
        seen = self.first_seen.get(target.uid)
        if seen is None or seen[0] != target.generation:
            seen = self.first_seen[target.uid] = (target.generation, moment)
        last = self.last_write.get(target.uid)
        held = hold_for(
            current,
            desired,
            since_first_seen=moment - seen[1],
            since_last_write=moment - last if last is not None else None,
        )
        if held is not None:
            return held
        response = await self.kube.patch_status(target.kind, target.namespace, target.name, patch)
        metrics.STATUS_WRITES.labels(kind=target.kind).inc()
        self._remember(target.uid, response)
        self.last_write[target.uid] = moment
        notes = all_events(
            getattr(current, "conditions", None), getattr(desired, "conditions", None) or [], event_reasons
        )
        log.info(
            "wrote status",
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            generation=target.generation,
            fields=sorted(patch),
            ready=str(ready_status(desired)),
        )
        for note in notes:
            kopf.event(
                body,
                type=note.type,
                reason=note.reason,
                message=note.message[:1024],
                backoffs=EVENT_BACKOFFS,
            )
        return None

    def _remember(self, uid: str, response: Mapping[str, Any]) -> None:
        try:
            version = int(response["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return  # opaque resourceVersions: rely on the watch
        self.written[uid] = (version, dict(response.get("status") or {}))
