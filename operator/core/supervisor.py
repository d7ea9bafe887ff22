"""The per-object control loop every Kind shares: apply children, observe, write status.

Two entry points, and a per-object lock keeps them from applying at the same time:

* ``reconcile`` - Kopf's create/update/resume handler: applies the children now, then wakes the supervisor;
* ``supervise`` - one long-lived Kopf daemon per object, the only writer of ``status``: it wakes when poked (a spec
  change, a child's watch event such as a Deployment becoming available) or every ``resync_interval_seconds``,
  repairs drift, lets the Kind observe what it needs and writes the status when it differs from the stored one.

Live children come from Kopf indexes fed by label-selected watches, so a steady state costs no API reads either.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic

import kopf
import structlog

from croupier.api.common import ConditionStatus, now
from croupier.operator import metrics
from croupier.operator.core.applier import ApplyProblemError, ChildApplier, NamespaceTerminatingError
from croupier.operator.core.controller import (
    ApplyProblem,
    InvalidObjectError,
    KindController,
    KindObserver,
    ParsedT,
    Services,
    Snapshot,
    Target,
)
from croupier.operator.core.kube import KubeClient, KubeError
from croupier.operator.core.matching import with_manifest_hashes
from croupier.operator.core.object_metrics import ObjectMetrics, condition_samples
from croupier.operator.core.observer import live_children
from croupier.operator.core.ownership import compact
from croupier.operator.core.status import EVENT_BACKOFFS, StatusWriter, ready_status, status_patch

log = structlog.get_logger("croupier.operator.supervisor")
AnyController = KindController[Any, Any, Any]
# Consecutive failed resyncs of one object before a failure is logged as an error (with its traceback).
RESYNC_FAILURES_LOGGED_AS_ERRORS = 3


@dataclass
class ObjectHandle:
    """Per-object coordination between the reconcile handler and the supervisor."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    failures: int = 0
    """Consecutive failed resyncs, not counting those that got no answer (an outage)."""

    async def sleep(self, seconds: float) -> None:
        """Sleep until poked or ``seconds`` passed; a poke during the previous cycle wakes at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout=seconds)
        self.wakeup.clear()


@dataclass(frozen=True)
class Rendered(Generic[ParsedT]):
    """A generation parsed and rendered once (a generation's spec never changes, so neither does this)."""

    generation: int
    parsed: ParsedT | None
    invalid: InvalidObjectError | None
    children: tuple[dict[str, Any], ...] = ()
    inputs: Hashable = None
    """The controller's ``render_inputs`` of the body rendered."""


class Supervisor:
    """One per process, for every Kind: applier, status writer, the Kinds' observers and per-object handles."""

    def __init__(self, kube: KubeClient, services: Services) -> None:
        self.services = services
        self.settings = services.settings
        self.applier = ChildApplier(kube)
        self.writer = StatusWriter(kube)
        self.observers: dict[str, KindObserver[Any, Any]] = {}
        self.handles: dict[str, ObjectHandle] = {}
        self.rendered_cache: dict[str, Rendered[Any]] = {}
        self.ready: dict[str, dict[str, ConditionStatus]] = {}  # kind -> uid -> Ready status
        self.object_metrics = ObjectMetrics()

    def observer(self, controller: AnyController) -> KindObserver[Any, Any]:
        if controller.kind not in self.observers:
            self.observers[controller.kind] = controller.observer(self.services)
        return self.observers[controller.kind]

    def handle(self, uid: str) -> ObjectHandle:
        if uid not in self.handles:
            self.handles[uid] = ObjectHandle()
        return self.handles[uid]

    def poke(self, uid: str | None) -> None:
        if uid is not None and uid in self.handles:
            self.handles[uid].wakeup.set()

    def forget(self, controller: AnyController, uid: str) -> None:
        self.handles.pop(uid, None)
        self.rendered_cache.pop(uid, None)
        self.applier.forget(uid)
        self.writer.forget(uid)
        self.observer(controller).forget(uid)
        self.ready.get(controller.kind, {}).pop(uid, None)
        self._update_ready_gauge(controller)
        self.object_metrics.forget(uid)

    def rendered(self, controller: AnyController, body: Mapping[str, Any]) -> Rendered[Any]:
        target = Target.from_body(controller.kind, body)
        inputs = controller.render_inputs(body) if controller.render_inputs is not None else None
        cached = self.rendered_cache.get(target.uid)
        if cached is not None and cached.generation == target.generation and cached.inputs == inputs:
            return cached
        try:
            parsed = controller.parse(body)
        except InvalidObjectError as error:
            result: Rendered[Any] = Rendered(target.generation, parsed=None, invalid=error, inputs=inputs)
        else:
            # Kept until the next generation: compacted (shared strings), a third of the memory of the parsed YAML.
            children = [compact(c) for c in with_manifest_hashes(controller.render(parsed, self.settings))]
            result = Rendered(target.generation, parsed=parsed, invalid=None, children=tuple(children), inputs=inputs)
        self.rendered_cache[target.uid] = result
        return result

    async def _apply(self, target: Target, rendered: Rendered[Any], live: Mapping[Any, Any]) -> int:
        if not rendered.children:
            return 0
        async with self.handle(target.uid).lock:
            return await self.applier.ensure(target, rendered.children, live)

    # --- entry points ----------------------------------------------------------------------------------------------

    async def reconcile(
        self, controller: AnyController, body: Mapping[str, Any], indexes: Mapping[str, Any], trigger: str
    ) -> None:
        """Kopf's create/update/resume handler body. Raises Kopf's errors to retry or give up."""
        target = Target.from_body(controller.kind, body)
        bound = log.bind(
            kind=target.kind,
            namespace=target.namespace,
            name=target.name,
            generation=target.generation,
            trigger=trigger,
        )
        self.handle(target.uid)
        rendered = self.rendered(controller, body)
        if rendered.invalid is not None:
            error = rendered.invalid
            metrics.RECONCILES.labels(kind=target.kind, trigger=trigger, outcome="invalid").inc()
            self.poke(target.uid)  # the supervisor writes the condition
            raise kopf.PermanentError(f"{error.reason}: {error.message}")
        try:
            applied = await self._apply(target, rendered, live_children(target.uid, controller.children, indexes))
        except NamespaceTerminatingError:
            bound.info("skipped reconcile: the namespace is being deleted")
            return
        except ApplyProblemError as error:
            metrics.RECONCILES.labels(kind=target.kind, trigger=trigger, outcome="problem").inc()
            self.poke(target.uid)
            problem = f"{error.problem.reason}: {error.problem.message}"
            if error.retry_after is None:
                raise kopf.PermanentError(problem) from error
            raise kopf.TemporaryError(problem, delay=error.retry_after) from error
        metrics.RECONCILES.labels(kind=target.kind, trigger=trigger, outcome="ok").inc()
        if applied:
            bound.info("reconciled children", applied=applied)
        self.poke(target.uid)

    async def supervise(self, controller: AnyController, body: kopf.Body, indexes: Mapping[str, Any]) -> None:
        """Kopf daemon body: resync on pokes and every interval, until Kopf cancels it (deletion or shutdown)."""
        uid = str(body["metadata"]["uid"])
        handle = self.handle(uid)
        interval = self.settings.resync_interval_seconds
        try:
            if _reconciled_before(body):
                # Spread the first resync of many objects after a restart (a poke still wakes it at once).
                await handle.sleep(random.uniform(0, self.settings.resync_initial_delay_seconds))
            # A new object is resynced at once: its children are applied now, while Kopf adds its finalizer and
            # waits for the watch to deliver that patch before it calls the create handler (which then finds them
            # applied and sends nothing).
            while True:
                sooner: float | None = None
                try:
                    sooner = await self.resync(controller, body, indexes)
                    handle.failures = 0
                except Exception as error:  # one bad cycle must not end supervision; the next poke or tick retries
                    self.record_failure(controller, body, handle, error)
                await handle.sleep(min(interval, sooner) if sooner is not None else interval)
        finally:
            self.forget(controller, uid)

    @staticmethod
    def record_failure(
        controller: AnyController, body: Mapping[str, Any], handle: ObjectHandle, error: Exception
    ) -> None:
        """Log a failed resync (called from its ``except``). An API server that does not answer (restarting, or etcd
        behind it) is an outage to ride out: a warning, not counted. Anything else is an error once it repeats:
        right after an API server restart, requests can be refused (403) until its authorizer has synced, and the
        next cycle succeeds."""
        outage = isinstance(error, KubeError) and error.unavailable
        if not outage:
            handle.failures += 1
        failures = handle.failures
        where = {"kind": controller.kind, "namespace": body["metadata"].get("namespace"),
                 "name": body["metadata"].get("name"), "failures": failures}  # fmt: skip
        if outage:
            log.warning("resync postponed: the API server did not answer", error=str(error), **where)
        elif failures < RESYNC_FAILURES_LOGGED_AS_ERRORS:
            log.warning("resync failed; retrying", error=f"{type(error).__name__}: {error}", **where)
        else:
            log.exception("resync failed", **where)

    async def resync(self, controller: AnyController, body: kopf.Body, indexes: Mapping[str, Any]) -> float | None:
        """Repair drift, observe and write the status if it changed. Body is Kopf's live view.

        Returns how soon to look again if sooner than the resync interval (a failed probe, a held-back write).
        """
        if body["metadata"].get("deletionTimestamp"):
            return None
        target = Target.from_body(controller.kind, body)
        live = live_children(target.uid, controller.children, indexes)
        rendered = self.rendered(controller, body)
        problem: ApplyProblem | None = None
        if rendered.parsed is not None:
            try:
                await self._apply(target, rendered, live)
            except NamespaceTerminatingError:
                return None  # everything here is about to be deleted; a status or an Event would be noise
            except ApplyProblemError as error:
                problem = error.problem
        observer = self.observer(controller)
        stored = self.writer.current(target.uid, body)
        observed = await observer.observe(
            Snapshot(
                target=target,
                parsed=rendered.parsed,
                invalid=rendered.invalid,
                problem=problem,
                desired=rendered.children,
                live=live,
                stored_status=stored,
            )
        )
        current = self.writer.parse(controller.status_model, stored)
        desired = controller.status(observed, current, now())
        self.ready.setdefault(controller.kind, {})[target.uid] = ready_status(desired)
        self._update_ready_gauge(controller)
        self._publish_metrics(controller, target, desired)
        changed = status_patch(stored, desired, controller.owned_status) is not None
        held = await self.writer.write(
            target,
            body,
            stored,
            current,
            desired,
            fields=controller.owned_status,
            event_reasons=controller.event_reasons,
        )
        if changed and held is None and controller.events is not None:
            for note in controller.events(observed):
                kopf.event(
                    body, type=note.type, reason=note.reason, message=note.message[:1024], backoffs=EVENT_BACKOFFS
                )
        wanted = [s for s in (held, observer.recheck_after(target.uid)) if s is not None]
        return min(wanted) if wanted else None

    def _publish_metrics(self, controller: AnyController, target: Target, desired: Any) -> None:
        samples = condition_samples(controller.kind, desired)
        if controller.status_metrics is not None:
            samples.extend(controller.status_metrics(desired))
        self.object_metrics.publish(target, samples)

    def _update_ready_gauge(self, controller: AnyController) -> None:
        if controller.ready_gauge is None:
            return
        counts: dict[str, int] = {str(s): 0 for s in ConditionStatus}
        for status in self.ready.get(controller.kind, {}).values():
            counts[str(status)] += 1
        for ready, count in counts.items():
            controller.ready_gauge.labels(ready=ready).set(count)


def _reconciled_before(body: Mapping[str, Any]) -> bool:
    """Whether the operator has written this object's status before (an object it knew before a restart)."""
    status = body.get("status") or {}
    return bool(status.get("observedGeneration"))
