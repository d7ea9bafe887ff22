"""The DecisionPolicy control loop's effects: apply children that differ, write status that changed, post events.

Two entry points share this object, and a per-policy lock keeps them from applying at the same time:

* ``reconcile`` - Kopf's create/update/resume handler: applies the children now, then wakes the supervisor;
* ``supervise`` - one long-lived Kopf daemon per policy, the only writer of ``status``: it wakes when poked (a spec
  change, a child's watch event such as the Deployment becoming available) or every ``resync_interval_seconds``,
  repairs drift, reads the runtime's statistics and writes the status when it differs from the stored one.

Live children come from Kopf indexes fed by label-selected watches, so a steady state costs no API reads either.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import kopf
import structlog

from croupier.api.common import API_VERSION, ConditionStatus, now
from croupier.api.decisionpolicy import KIND
from croupier.operator import metrics
from croupier.operator.conditions import events_for, transitions
from croupier.operator.kube import KubeClient, KubeError
from croupier.operator.matching import up_to_date
from croupier.operator.policy.children import (
    CONFIG_HASH_ANNOTATION,
    MANIFEST_HASH_ANNOTATION,
    child_names,
    desired_children,
    digest,
    endpoint,
    policy_yaml,
)
from croupier.operator.policy.model import InvalidPolicyError, PolicyObject, parse_policy
from croupier.operator.policy.probe import ProbeResult, probe_stats
from croupier.operator.policy.status import DeploymentState, Observations, Reason, desired_status, status_patch
from croupier.operator.settings import FIELD_MANAGER, OperatorSettings

T = TypeVar("T")
ChildKey = tuple[str, str]  # (kind, name)

# Children whose index entry may lag behind our own apply for a moment: trust our apply for this long.
FRESH_APPLY_SECONDS = 10.0
CONFLICT_RETRY_SECONDS = 30.0
FAILURE_RETRY_SECONDS = 10.0
PROBE_RETRY_SECONDS = 2.0
# Events are best-effort: a few quick retries, not Kopf's default minute of them (e.g. into a deleted namespace).
EVENT_BACKOFFS = (1.0, 3.0)

log = structlog.get_logger("croupier.operator.decisionpolicy")


class NamespaceTerminatingError(Exception):
    """The policy's namespace is being deleted: the policy goes with it, there is nothing to apply or report."""


class ApplyProblemError(Exception):
    """A child could not be applied. ``retry_after`` None: the same spec will keep failing (wait for a change)."""

    def __init__(self, reason: str, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.retry_after = retry_after


@dataclass(frozen=True)
class Rendered:
    """A policy generation parsed and rendered once (a generation's spec never changes, so neither does this)."""

    policy: PolicyObject | None
    invalid: InvalidPolicyError | None
    children: tuple[dict[str, Any], ...] = ()
    config_hash: str | None = None


@dataclass
class PolicyHandle:
    """Per-policy coordination between the reconcile handler and the supervisor."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    wakeup: asyncio.Event = field(default_factory=asyncio.Event)

    async def sleep(self, seconds: float) -> None:
        """Sleep until poked or ``seconds`` passed; a poke during the previous cycle wakes at once."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout=seconds)
        self.wakeup.clear()


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What an index keeps of a child: everything but managedFields (large, and never compared)."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {**{k: v for k, v in body.items() if k != "metadata"}, "metadata": metadata}


def controller_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owning_policy_uid(body: Mapping[str, Any]) -> str | None:
    ref = controller_of(body)
    if ref is not None and ref.get("kind") == KIND and ref.get("apiVersion") == API_VERSION:
        return str(ref.get("uid"))
    return None


def _live_children(uid: str, stores: Iterable[Mapping[str, Iterable[Mapping[str, Any]]]]) -> dict[ChildKey, Any]:
    live: dict[ChildKey, Any] = {}
    for index in stores:
        for obj in index.get(uid, ()):
            live[(str(obj.get("kind")), str(obj["metadata"]["name"]))] = obj
    return live


class PolicyReconciler:
    def __init__(self, kube: KubeClient, settings: OperatorSettings) -> None:
        self.kube = kube
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=settings.probe_timeout_seconds, trust_env=False)
        self.executor = ThreadPoolExecutor(max_workers=settings.api_workers, thread_name_prefix="kube")
        self.handles: dict[str, PolicyHandle] = {}
        self.applied: dict[tuple[str, str, str], tuple[str, float]] = {}  # (uid, kind, name) -> (hash, when)
        self.rejected: dict[tuple[str, str, str], tuple[str, str]] = {}  # (uid, kind, name) -> (hash, message)
        self.ready: dict[str, str] = {}
        self.rendered_cache: dict[str, tuple[int, Rendered]] = {}  # uid -> (generation, rendered)
        self.written: dict[str, tuple[int, dict[str, Any]]] = {}  # uid -> (resourceVersion, status) of our last patch
        self.probe_failures: dict[str, int] = {}

    async def aclose(self) -> None:
        await self.http.aclose()
        self.executor.shutdown(wait=False, cancel_futures=True)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, functools.partial(fn, *args))

    def handle(self, uid: str) -> PolicyHandle:
        if uid not in self.handles:
            self.handles[uid] = PolicyHandle()
        return self.handles[uid]

    def poke(self, uid: str | None) -> None:
        if uid is not None and uid in self.handles:
            self.handles[uid].wakeup.set()

    def forget(self, uid: str) -> None:
        for per_policy in (self.handles, self.ready, self.rendered_cache, self.written, self.probe_failures):
            per_policy.pop(uid, None)
        for cache in (self.applied, self.rejected):
            for key in [k for k in cache if k[0] == uid]:
                del cache[key]
        self._update_ready_gauge()

    # --- children --------------------------------------------------------------------------------------------------

    def rendered(self, body: Mapping[str, Any]) -> Rendered:
        metadata = body["metadata"]
        uid, generation = str(metadata["uid"]), int(metadata.get("generation") or 0)
        cached = self.rendered_cache.get(uid)
        if cached is not None and cached[0] == generation:
            return cached[1]
        try:
            policy = parse_policy(body)
        except InvalidPolicyError as error:
            result = Rendered(policy=None, invalid=error)
        else:
            result = Rendered(
                policy=policy,
                invalid=None,
                children=tuple(desired_children(policy, self.settings)),
                config_hash=digest(policy_yaml(policy)),
            )
        self.rendered_cache[uid] = (generation, result)
        return result

    async def ensure_children(
        self, policy: PolicyObject, children: Iterable[dict[str, Any]], live: Mapping[ChildKey, Any]
    ) -> int:
        """Apply every child that is missing or differs from its desired manifest; return how many were applied."""
        async with self.handle(policy.uid).lock:
            results = await asyncio.gather(
                *(self._ensure_child(policy, c, live.get((c["kind"], c["metadata"]["name"]))) for c in children),
                return_exceptions=True,
            )
        for result in results:  # the first problem wins, namespace termination over everything
            if isinstance(result, NamespaceTerminatingError):
                raise result
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if result is True)

    async def _ensure_child(self, policy: PolicyObject, child: dict[str, Any], live: Any) -> bool:
        kind, name = child["kind"], child["metadata"]["name"]
        key = (policy.uid, kind, name)
        manifest_hash = child["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION]
        if up_to_date(live, child, MANIFEST_HASH_ANNOTATION):
            return False
        recent = self.applied.get(key)
        if recent is not None and recent[0] == manifest_hash and time.monotonic() - recent[1] < FRESH_APPLY_SECONDS:
            return False  # we applied exactly this a moment ago; the watch has not caught up yet
        rejected = self.rejected.get(key)
        if rejected is not None and rejected[0] == manifest_hash:
            raise ApplyProblemError(Reason.APPLY_REJECTED, rejected[1], retry_after=None)
        if live is None:
            # Not in our index: absent, not ours, or not indexed yet. Look before taking anything over.
            found = await self._call(self.kube.get, kind, policy.namespace, name)
            if found is not None:
                self._refuse_foreign(policy, found)
                if up_to_date(found, child, MANIFEST_HASH_ANNOTATION):
                    return False
        try:
            await self._call(self.kube.apply, child)
        except KubeError as error:
            if error.namespace_terminating:
                raise NamespaceTerminatingError(policy.namespace) from error
            message = f"applying {kind} {name} failed: {error.message}"
            if error.rejected:
                self.rejected[key] = (manifest_hash, message)
                raise ApplyProblemError(Reason.APPLY_REJECTED, message, retry_after=None) from error
            raise ApplyProblemError(Reason.APPLY_FAILED, message, retry_after=FAILURE_RETRY_SECONDS) from error
        self.applied[key] = (manifest_hash, time.monotonic())
        self.rejected.pop(key, None)
        metrics.CHILDREN_APPLIED.labels(kind=kind).inc()
        log.info("applied child", namespace=policy.namespace, name=policy.name, child_kind=kind, child=name)
        return True

    @staticmethod
    def _refuse_foreign(policy: PolicyObject, found: Mapping[str, Any]) -> None:
        kind, name = found.get("kind"), found["metadata"]["name"]
        owner = controller_of(found)
        labels = found["metadata"].get("labels") or {}
        if owner is not None and owner.get("uid") != policy.uid:
            raise ApplyProblemError(
                Reason.CHILD_CONFLICT,
                f"{kind} {name} already exists and is controlled by {owner.get('kind')} {owner.get('name')}",
                retry_after=CONFLICT_RETRY_SECONDS,
            )
        if owner is None and labels.get("app.kubernetes.io/managed-by") != FIELD_MANAGER:
            raise ApplyProblemError(
                Reason.CHILD_CONFLICT,
                f"{kind} {name} already exists and is not managed by {FIELD_MANAGER}; rename or delete it",
                retry_after=CONFLICT_RETRY_SECONDS,
            )

    # --- entry points ----------------------------------------------------------------------------------------------

    async def reconcile(self, body: Mapping[str, Any], indexes: Mapping[str, Any], trigger: str) -> None:
        """Kopf's create/update/resume handler body. Raises Kopf's errors to retry or give up."""
        uid = str(body["metadata"]["uid"])
        bound = log.bind(namespace=body["metadata"].get("namespace"), name=body["metadata"].get("name"))
        bound = bound.bind(generation=body["metadata"].get("generation"), trigger=trigger)
        self.handle(uid)
        rendered = self.rendered(body)
        if rendered.policy is None:
            error = rendered.invalid
            metrics.RECONCILES.labels(kind=KIND, trigger=trigger, outcome="invalid").inc()
            self.poke(uid)  # the supervisor writes the condition
            raise kopf.PermanentError(f"{error.reason}: {error.message}" if error else "invalid policy")
        try:
            applied = await self.ensure_children(
                rendered.policy, rendered.children, _live_children(uid, indexes.values())
            )
        except NamespaceTerminatingError:
            bound.info("skipped reconcile: the namespace is being deleted")
            return
        except ApplyProblemError as problem:
            metrics.RECONCILES.labels(kind=KIND, trigger=trigger, outcome="problem").inc()
            self.poke(uid)
            if problem.retry_after is None:
                raise kopf.PermanentError(f"{problem.reason}: {problem.message}") from problem
            raise kopf.TemporaryError(f"{problem.reason}: {problem.message}", delay=problem.retry_after) from problem
        metrics.RECONCILES.labels(kind=KIND, trigger=trigger, outcome="ok").inc()
        if applied:
            bound.info("reconciled children", applied=applied)
        self.poke(uid)

    async def supervise(self, body: kopf.Body, stopped: kopf.DaemonStopped, indexes: Mapping[str, Any]) -> None:
        """Kopf daemon body: resync on pokes and every interval until the policy is deleted or the operator stops."""
        uid = str(body["metadata"]["uid"])
        handle = self.handle(uid)

        async def wake_on_stop() -> None:
            await stopped.wait()
            handle.wakeup.set()

        stop_watcher = asyncio.ensure_future(wake_on_stop())
        try:
            # Spread the first resync of many policies after a restart (a poke still wakes it at once).
            await handle.sleep(random.uniform(0, self.settings.resync_initial_delay_seconds))
            while not stopped:
                try:
                    await self.resync(body, indexes)
                except Exception:  # one bad cycle must not end supervision; the next poke or tick retries
                    log.exception(
                        "resync failed",
                        namespace=body["metadata"].get("namespace"),
                        name=body["metadata"].get("name"),
                    )
                # A failed stats read is retried soon (it only counts once it repeats), everything else waits.
                failures = self.probe_failures.get(uid, 0)
                interval = self.settings.resync_interval_seconds
                await handle.sleep(min(interval, PROBE_RETRY_SECONDS * failures) if failures else interval)
        finally:
            stop_watcher.cancel()
            self.forget(uid)

    async def resync(self, body: Mapping[str, Any], indexes: Mapping[str, Any]) -> None:
        """Repair drift, read the runtime and write the status if it changed. Body is Kopf's live view."""
        metadata = body["metadata"]
        uid, namespace, name = str(metadata["uid"]), str(metadata["namespace"]), str(metadata["name"])
        generation = int(metadata.get("generation") or 0)
        if metadata.get("deletionTimestamp"):
            return
        live = _live_children(uid, indexes.values())
        rendered = self.rendered(body)
        problem: tuple[str, str] | None = None
        if rendered.policy is not None:
            try:
                await self.ensure_children(rendered.policy, rendered.children, live)
            except NamespaceTerminatingError:
                return  # everything here is about to be deleted; a status or an Event would be noise
            except ApplyProblemError as error:
                problem = (error.reason, error.message)
        observed = await self.observe(
            rendered=rendered, problem=problem, live=live, generation=generation, namespace=namespace, name=name
        )
        current = self._current_status(uid, body)
        desired = desired_status(observed, current, now())
        patch = status_patch(current, desired)
        self.ready[uid] = next(
            (c["status"] for c in desired["conditions"] if c["type"] == "Ready"), ConditionStatus.UNKNOWN
        )
        self._update_ready_gauge()
        if patch is None:
            return
        response = await self._call(self.kube.patch_status, KIND, namespace, name, patch)
        metrics.STATUS_WRITES.labels(kind=KIND).inc()
        self._remember_written(uid, response)
        changes = transitions(current.get("conditions"), desired["conditions"])
        log.info(
            "wrote status",
            namespace=namespace,
            name=name,
            generation=generation,
            fields=sorted(patch),
            ready=self.ready[uid],
        )
        for note in events_for(changes):
            kopf.event(
                body,  # type: ignore[arg-type]
                type=note.type,
                reason=note.reason,
                message=note.message[:1024],
                backoffs=EVENT_BACKOFFS,
            )

    def _current_status(self, uid: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """The stored status: Kopf's view of the body, unless our own last patch is newer than that view.

        The supervisor is the only status writer, but the body it sees arrives through the watch and may lag behind
        its own last patch (a poke can come first). Comparing against a stale status would rewrite it with fresh
        transition times and post Events for transitions that already happened.
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

    def _remember_written(self, uid: str, response: Mapping[str, Any]) -> None:
        try:
            version = int(response["metadata"]["resourceVersion"])
        except (KeyError, TypeError, ValueError):
            return  # opaque resourceVersions: rely on the watch
        self.written[uid] = (version, dict(response.get("status") or {}))

    async def observe(
        self,
        *,
        rendered: Rendered,
        problem: tuple[str, str] | None,
        live: Mapping[ChildKey, Any],
        generation: int,
        namespace: str,
        name: str,
    ) -> Observations:
        policy, invalid = rendered.policy, rendered.invalid
        names = child_names(name)
        deployment_obj = live.get(("Deployment", names.deployment))
        deployment = (
            DeploymentState.from_object(deployment_obj, CONFIG_HASH_ANNOTATION) if deployment_obj is not None else None
        )
        probe: ProbeResult | None = None
        uid = str(policy.uid) if policy is not None else ""
        if (
            policy is not None
            and problem is None
            and self.settings.probe_enabled
            and deployment is not None
            and policy.spec.serving.replicas > 0
            and deployment.rolled_out(rendered.config_hash)
        ):
            url = self.settings.runtime_url(name=name, namespace=namespace, service=names.service)
            probe = await probe_stats(self.http, url)
            self.probe_failures[uid] = 0 if probe.ok else self.probe_failures.get(uid, 0) + 1
        return Observations(
            generation=generation,
            endpoint=endpoint(name, namespace) if invalid is None or invalid.reason != "InvalidName" else None,
            desired_replicas=policy.spec.serving.replicas if policy is not None else None,
            arm_count=len(policy.spec.arms) if policy is not None else None,
            config_hash=rendered.config_hash,
            paused=policy.spec.paused if policy is not None else False,
            invalid=invalid,
            apply_problem=problem,
            deployment=deployment,
            probe_enabled=self.settings.probe_enabled,
            probe=probe,
            probe_failures=self.probe_failures.get(uid, 0),
            probe_failure_threshold=self.settings.probe_failure_threshold,
        )

    def _update_ready_gauge(self) -> None:
        counts = {str(s): 0 for s in ConditionStatus}
        for status in self.ready.values():
            counts[str(status)] = counts.get(str(status), 0) + 1
        for status, count in counts.items():
            metrics.POLICIES.labels(ready=status).set(count)
