"""Children and their owners: the ownerReference that makes a child ours, and how the index reads it back."""

from __future__ import annotations

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


def slim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What an index keeps of a child: everything but managedFields (large, and never compared)."""
    metadata = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    return {**{k: v for k, v in body.items() if k != "metadata"}, "metadata": metadata}
