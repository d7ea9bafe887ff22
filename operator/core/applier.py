"""Apply children: server-side apply of what is missing or differs, never taking over someone else's object; and
prune: delete the children an object no longer renders (a ModelDeployment that changes its routing mode leaves the
other mode's Deployments, Services, ConfigMaps and route behind otherwise; ownerReferences only clean up when the owner
itself goes).

Only children whose live copy (from the label-selected index) differs from the desired manifest are applied; an
apply the watch has not delivered yet is trusted for ``FRESH_APPLY_SECONDS``; a manifest the API server rejected is
not sent again until it changes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from typing import Any

import structlog

from croupier.api.common import ChildReason
from croupier.operator import metrics
from croupier.operator.core.controller import ApplyProblem, LiveChildren, Target
from croupier.operator.core.kube import KubeClient, KubeError
from croupier.operator.core.matching import MANIFEST_HASH_ANNOTATION, up_to_date
from croupier.operator.core.ownership import controller_of
from croupier.operator.settings import FIELD_MANAGER

# Children whose index entry may lag behind our own apply for a moment: trust our apply for this long.
FRESH_APPLY_SECONDS = 10.0
CONFLICT_RETRY_SECONDS = 30.0
FAILURE_RETRY_SECONDS = 10.0

log = structlog.get_logger("croupier.operator.applier")


class NamespaceTerminatingError(Exception):
    """The object's namespace is being deleted: it goes with it, there is nothing to apply or report."""


class ApplyProblemError(Exception):
    """A child could not be applied. ``retry_after`` None: the same spec will keep failing (wait for a change)."""

    def __init__(self, problem: ApplyProblem, retry_after: float | None) -> None:
        super().__init__(problem.message)
        self.problem = problem
        self.retry_after = retry_after


ChildRef = tuple[str, str, str]  # (owner uid, kind, name)


def stale_children(target: Target, desired: Iterable[Mapping[str, Any]], live: LiveChildren) -> list[Mapping[str, Any]]:
    """The live children ``target`` controls that no desired manifest names (by kind and name)."""
    wanted = {(c["kind"], c["metadata"]["name"]) for c in desired}
    stale = []
    for key, found in sorted(live.items()):
        owner = controller_of(found)
        if key in wanted or owner is None or owner.get("uid") != target.uid:
            continue
        stale.append(found)
    return stale


class ChildApplier:
    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.applied: dict[ChildRef, tuple[str, float]] = {}  # -> (manifest hash, when)
        self.rejected: dict[ChildRef, tuple[str, str]] = {}  # -> (manifest hash, message)

    def forget(self, uid: str) -> None:
        for cache in (self.applied, self.rejected):
            for key in [k for k in cache if k[0] == uid]:
                del cache[key]

    async def ensure(self, target: Target, children: Iterable[Mapping[str, Any]], live: LiveChildren) -> int:
        """Apply every child that is missing or differs from its desired manifest; return how many were applied."""
        results = await asyncio.gather(
            *(self._ensure(target, c, live.get((c["kind"], c["metadata"]["name"]))) for c in children),
            return_exceptions=True,
        )
        for result in results:  # the first problem wins, namespace termination over everything
            if isinstance(result, NamespaceTerminatingError):
                raise result
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if result is True)

    async def prune(self, target: Target, desired: Iterable[Mapping[str, Any]], live: LiveChildren) -> int:
        """Delete the live children ``target`` controls and no longer renders; return how many were deleted.
        ``desired`` must be every child the object renders (static and observed alike)."""
        stale = stale_children(target, desired, live)
        for found in stale:
            kind, meta = str(found["kind"]), found["metadata"]
            try:
                await self.kube.delete(kind, target.namespace, meta["name"], str(meta["uid"]))
            except KubeError as error:
                if error.namespace_terminating:
                    raise NamespaceTerminatingError(target.namespace) from error
                if not error.conflict:  # conflict: the uid precondition failed, someone made a new one: not ours
                    message = f"deleting {kind} {meta['name']} failed: {error.message}"
                    raise ApplyProblemError(
                        ApplyProblem(ChildReason.APPLY_FAILED, message),
                        retry_after=FAILURE_RETRY_SECONDS,
                    ) from error
            self.applied.pop((target.uid, kind, meta["name"]), None)
            log.info("deleted child", namespace=target.namespace, name=target.name, child_kind=kind, child=meta["name"])
        return len(stale)

    async def _ensure(self, target: Target, child: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
        kind, name = child["kind"], child["metadata"]["name"]
        key = (target.uid, kind, name)
        manifest_hash = child["metadata"]["annotations"][MANIFEST_HASH_ANNOTATION]
        if up_to_date(live, child, MANIFEST_HASH_ANNOTATION):
            return False
        recent = self.applied.get(key)
        if recent is not None and recent[0] == manifest_hash and time.monotonic() - recent[1] < FRESH_APPLY_SECONDS:
            return False  # we applied exactly this a moment ago; the watch has not caught up yet
        rejected = self.rejected.get(key)
        if rejected is not None and rejected[0] == manifest_hash:
            raise ApplyProblemError(ApplyProblem(ChildReason.APPLY_REJECTED, rejected[1]), retry_after=None)
        if live is None:
            # Not in our index: absent (the usual case: a new object), not ours, or not indexed yet. Create it if it is
            # absent, in one request; if something holds the name, look before taking anything over.
            if await self._send(target, child, key, manifest_hash, create_only=True):
                return self._applied(target, child, key, manifest_hash)
            found = await self.kube.get(kind, target.namespace, name)
            if found is not None:
                _refuse_foreign(target, found)
                if up_to_date(found, child, MANIFEST_HASH_ANNOTATION):
                    return False
        await self._send(target, child, key, manifest_hash, create_only=False)
        return self._applied(target, child, key, manifest_hash)

    async def _send(
        self, target: Target, child: Mapping[str, Any], key: ChildRef, manifest_hash: str, *, create_only: bool
    ) -> bool:
        """Apply; False when ``create_only`` and the object exists."""
        kind, name = child["kind"], child["metadata"]["name"]
        try:
            await self.kube.apply(child, create_only=create_only)
        except KubeError as error:
            if create_only and error.conflict:
                return False
            if error.namespace_terminating:
                raise NamespaceTerminatingError(target.namespace) from error
            message = f"applying {kind} {name} failed: {error.message}"
            if error.rejected:
                self.rejected[key] = (manifest_hash, message)
                raise ApplyProblemError(ApplyProblem(ChildReason.APPLY_REJECTED, message), retry_after=None) from error
            raise ApplyProblemError(
                ApplyProblem(ChildReason.APPLY_FAILED, message), retry_after=FAILURE_RETRY_SECONDS
            ) from error
        return True

    def _applied(self, target: Target, child: Mapping[str, Any], key: ChildRef, manifest_hash: str) -> bool:
        kind, name = child["kind"], child["metadata"]["name"]
        self.applied[key] = (manifest_hash, time.monotonic())
        self.rejected.pop(key, None)
        metrics.CHILDREN_APPLIED.labels(kind=kind).inc()
        log.info("applied child", namespace=target.namespace, name=target.name, child_kind=kind, child=name)
        return True


def _refuse_foreign(target: Target, found: Mapping[str, Any]) -> None:
    kind, name = found.get("kind"), found["metadata"]["name"]
    owner = controller_of(found)
    labels = found["metadata"].get("labels") or {}
    if owner is not None and owner.get("uid") != target.uid:
        raise ApplyProblemError(
            ApplyProblem(
                ChildReason.CHILD_CONFLICT,
                f"{kind} {name} already exists and is controlled by {owner.get('kind')} {owner.get('name')}",
            ),
            retry_after=CONFLICT_RETRY_SECONDS,
        )
    if owner is None and labels.get("app.kubernetes.io/managed-by") != FIELD_MANAGER:
        raise ApplyProblemError(
            ApplyProblem(
                ChildReason.CHILD_CONFLICT,
                f"{kind} {name} already exists and is not managed by {FIELD_MANAGER}; rename or delete it",
            ),
            retry_after=CONFLICT_RETRY_SECONDS,
        )
