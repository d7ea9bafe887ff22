"""Children and their owners: the ownerReference that makes a child ours, and how the index reads it back."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from croupier.api.common import API_VERSION


def owner_reference(kind: str, name: str, uid: str) -> dict[str, Any]:
    """The controller reference every child carries (garbage collection deletes it with its owner)."""
    return {
        "apiVersion": API_VERSION,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_of(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for ref in (body.get("metadata") or {}).get("ownerReferences") or ():
        if ref.get("controller"):
            return dict(ref)
    return None


def owner_uid(body: Mapping[str, Any]) -> str | None:
    """The uid of the custom resource (of any of our kinds) that controls this child, if one does."""
    ref = controller_of(body)
    if ref is not None and ref.get("apiVersion") == API_VERSION:
        return str(ref.get("uid"))
    return None


def compact(value: Any) -> Any:
    """A deep copy of JSON-like data with every string interned, for what the operator keeps per object.

    Each watch event and each rendered manifest is decoded on its own, so a thousand Deployments kept as they came
    hold a thousand copies of every key ("apiVersion", "terminationMessagePath", ...) and of most values. Interned,
    they share one; the copy also lets the watch event's decoded body go.
    """
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, Mapping):
        return {sys.intern(str(k)): compact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [compact(v) for v in value]
    return value


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What an index keeps of a child: everything but managedFields (large, and never compared), compacted."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    kept: dict[str, Any] = compact({**{k: v for k, v in body.items() if k != "metadata"}, "metadata": metadata})
    return kept
