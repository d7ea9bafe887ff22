"""Does a live object already carry everything we would apply? (So that a steady state sends no apply at all.)

Two checks, both needed:

* the live object's ``croupier.dev/manifest-hash`` annotation equals the hash of the manifest we would apply now:
  catches a desired field that was *removed* (a subset comparison cannot see that);
* every field of the desired manifest is present in the live object with the same value: catches someone else's
  edit of a field we own (``kubectl edit``, ``kubectl scale``). Extra live fields (defaults, status, fields other
  managers own) are fine. Resource quantities compare by value (the API server rewrites ``0.5`` as ``500m``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kubernetes.utils.quantity import parse_quantity as _untyped_parse_quantity

parse_quantity: Callable[[object], Decimal] = _untyped_parse_quantity

# The annotation every child carries: the hash of the manifest it was applied from.
MANIFEST_HASH_ANNOTATION = "croupier.dev/manifest-hash"

# Maps whose values are resource quantities (core/v1 ResourceList).
_QUANTITY_MAPS = frozenset({"requests", "limits", "capacity"})


def _same_quantity(desired: object, live: object) -> bool:
    try:
        left: Decimal = parse_quantity(desired)
        right: Decimal = parse_quantity(live)
    except (ValueError, TypeError, InvalidOperation):
        return False
    return left == right


def contains(live: object, desired: object, *, key: str | None = None, quantity: bool = False) -> bool:
    """True when ``desired`` is a sub-document of ``live`` (lists must match element by element).

    ``key`` is the name under which both values sit; ``quantity`` says their parent map is a resource list.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        values_are_quantities = key in _QUANTITY_MAPS
        return all(
            name in live and contains(live[name], value, key=name, quantity=values_are_quantities)
            for name, value in desired.items()
        )
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return False
        return all(contains(lv, dv, key=key) for lv, dv in zip(live, desired, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return desired is live
    if desired == live:
        return True
    return quantity and _same_quantity(desired, live)


def annotation(obj: Mapping[str, Any], key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("annotations") or {}).get(key)
    return value if isinstance(value, str) else None


def up_to_date(live: Mapping[str, Any] | None, desired: Mapping[str, Any], hash_annotation: str) -> bool:
    if live is None:
        return False
    if annotation(live, hash_annotation) != annotation(desired, hash_annotation):
        return False
    return contains(live, {k: v for k, v in desired.items() if k not in ("apiVersion", "kind")})


def digest(value: object) -> str:
    """A short, stable hash of a string or a JSON-able value."""
    payload = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def with_manifest_hashes(children: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Stamp each rendered child with the hash of its manifest (before the annotation was added)."""
    stamped = []
    for child in children:
        annotations = child["metadata"].setdefault("annotations", {})
        annotations[MANIFEST_HASH_ANNOTATION] = digest(child)
        stamped.append(child)
    return stamped
