"""The assignment hash contract: which variant a unit gets, reproducible byte for byte in any language.

Pure standard library (the runtime and every SDK use it; the Java SDK reimplements it). The vectors every
implementation is tested against are data in ``docs/api/assignment-vectors.json``.

Three schemes, chosen by ``spec.assignment.algorithm``:

- ``sha256-v1`` (Croupier's own): bucket = first 8 bytes of SHA-256(UTF-8(salt + ":" + unitId)) as an unsigned
  big-endian integer, mod 10000. Variants own consecutive integer bucket ranges in spec order, weight w (percent)
  owning w * 100 buckets.
- ``fnv1a32-v2`` (GrowthBook's hashing version 2): n = (fnv1a32(str(fnv1a32(salt + unitId))) mod 10000) / 10000.
- ``fnv1a32-v1`` (GrowthBook's hashing version 1): n = (fnv1a32(unitId + salt) mod 1000) / 1000.

fnv1a32(s): h = 0x811C9DC5; for each UTF-16 code unit c of s: h = ((h XOR c) * 0x01000193) mod 2^32 (as GrowthBook's
JavaScript and Java SDKs; its Python SDK uses code points, which differs only outside the Basic Multilingual Plane).
The GrowthBook schemes pick the variant as GrowthBook's ``chooseVariation`` does, in IEEE-754 double arithmetic:
variant i owns [c_i, c_i + w_i) with w_i = weight_i / 100 and c_i the running sum of the earlier w, so a unit gets the
same variant as a GrowthBook SDK given the same seed (salt), hash attribute value (unitId) and weights.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right as _bisect_right
from collections.abc import Callable, Sequence
from enum import StrEnum

BUCKETS = 10_000
"""sha256-v1 and fnv1a32-v2 hash units into this many buckets (fnv1a32-v1: 1000)."""

_sha256 = hashlib.sha256

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
_MASK = 0xFFFFFFFF


class HashAlgorithm(StrEnum):
    SHA256_V1 = "sha256-v1"
    FNV1A32_V2 = "fnv1a32-v2"
    FNV1A32_V1 = "fnv1a32-v1"


ALGORITHMS_DOC = (
    "sha256-v1: bucket = (first 8 bytes of SHA-256(UTF-8(salt + ':' + unitId)) as an unsigned big-endian integer) "
    "mod 10000; variants own consecutive bucket ranges in spec order, weight w owning w*100 buckets, so the unit gets "
    "the first variant whose cumulative range ends above its bucket. fnv1a32-v2 and fnv1a32-v1: GrowthBook's hashing "
    "versions 2 and 1 with the salt as GrowthBook's seed and the unit id as the hash attribute's value (same variants "
    "as GrowthBook SDKs given the same weights). Contract and test vectors: docs/api/assignment-vectors.json."
)


def fnv1a32(text: str, start: int = FNV_OFFSET) -> int:
    """32-bit FNV-1a over the UTF-16 code units of ``text``, from ``start`` (the offset basis, or the state after a
    prefix: ``fnv1a32(b, fnv1a32(a)) == fnv1a32(a + b)``)."""
    h = start
    if text.isascii():
        for code in text.encode():  # ASCII: one byte per code unit, read as ints without a call per character
            h = ((h ^ code) * FNV_PRIME) & _MASK
        return h
    if max(text) < "\U00010000":
        for char in text:
            h = ((h ^ ord(char)) * FNV_PRIME) & _MASK
        return h
    units = text.encode("utf-16-be")
    for i in range(0, len(units), 2):
        h = ((h ^ ((units[i] << 8) | units[i + 1])) * FNV_PRIME) & _MASK
    return h


def bucket(unit_id: str, salt: str, algorithm: str = HashAlgorithm.SHA256_V1) -> int:
    """The unit's integer bucket: in [0, 10000) for sha256-v1 and fnv1a32-v2, in [0, 1000) for fnv1a32-v1."""
    if algorithm == HashAlgorithm.SHA256_V1:
        digest = hashlib.sha256(f"{salt}:{unit_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") % BUCKETS
    if algorithm == HashAlgorithm.FNV1A32_V2:
        return fnv1a32(str(fnv1a32(salt + unit_id))) % BUCKETS
    if algorithm == HashAlgorithm.FNV1A32_V1:
        return fnv1a32(unit_id + salt) % 1000
    raise ValueError(f"unknown assignment algorithm {algorithm!r}; known: {[a.value for a in HashAlgorithm]}")


def fraction(unit_id: str, salt: str, algorithm: str = HashAlgorithm.SHA256_V1) -> float:
    """The unit's position in [0, 1): its bucket over the number of buckets (GrowthBook's ``hash()`` result)."""
    return bucket(unit_id, salt, algorithm) / (1000 if algorithm == HashAlgorithm.FNV1A32_V1 else BUCKETS)


def check_weights(weights: Sequence[tuple[str, int]]) -> None:
    if not weights or sum(w for _, w in weights) != 100 or any(w < 0 for _, w in weights):
        raise ValueError("variant weights must be >= 0 and sum to 100")


def assign(
    unit_id: str, salt: str, weights: Sequence[tuple[str, int]], algorithm: str = HashAlgorithm.SHA256_V1
) -> str:
    """The variant a unit gets: ``weights`` are (variant name, percent) in spec order and sum to 100."""
    check_weights(weights)
    point = bucket(unit_id, salt, algorithm)
    if algorithm == HashAlgorithm.SHA256_V1:
        upper = 0
        for name, weight in weights:
            upper += weight * (BUCKETS // 100)
            if point < upper:
                return name
        raise AssertionError("unreachable: weights sum to 100")
    n = point / (1000 if algorithm == HashAlgorithm.FNV1A32_V1 else BUCKETS)
    return choose_variation(n, weights)


def choose_variation(n: float, weights: Sequence[tuple[str, int]]) -> str:
    """GrowthBook's ``getBucketRanges`` (coverage 1) and ``chooseVariation`` in double arithmetic."""
    cumulative = 0.0
    for name, weight in weights:
        start = cumulative
        w = weight / 100
        cumulative += w
        if start <= n < start + w:
            return name
    # Only reachable if the rounded sum of the weights ended below n (never for n <= 0.9999 and weights summing to
    # 100): give the unit the last variant with traffic rather than none.
    return next(name for name, weight in reversed(weights) if weight > 0)


class Assigner:
    """One experiment's assignment, bound once: ``assigner(unit_id) -> variant``, or ``assigner.assign`` (the same
    function without the call through ``__call__``): the runtime's and SDKs' hot path."""

    __slots__ = ("_names", "_prefix", "_salt", "_salt_state", "_uppers", "_weights", "assign")

    def __init__(self, salt: str, weights: Sequence[tuple[str, int]], algorithm: str) -> None:
        check_weights(weights)
        if algorithm not in set(HashAlgorithm):
            raise ValueError(f"unknown assignment algorithm {algorithm!r}; known: {[a.value for a in HashAlgorithm]}")
        self._salt = salt
        self._prefix = f"{salt}:".encode()
        self._salt_state = fnv1a32(salt)  # fnv1a32-v2 hashes salt + unitId: the salt's part once
        self._weights = list(weights)
        self._names = [name for name, _ in weights]
        uppers, upper = [], 0
        for _, weight in weights:
            upper += weight * (BUCKETS // 100)
            uppers.append(upper)
        self._uppers = uppers
        self.assign: Callable[[str], str]
        if algorithm == HashAlgorithm.SHA256_V1:
            self.assign = self._sha256_v1
        elif algorithm == HashAlgorithm.FNV1A32_V2:
            self.assign = self._fnv1a32_v2
        else:
            self.assign = self._fnv1a32_v1

    def __call__(self, unit_id: str) -> str:
        return self.assign(unit_id)

    def _sha256_v1(self, unit_id: str) -> str:
        point = int.from_bytes(_sha256(self._prefix + unit_id.encode()).digest()[:8], "big") % BUCKETS
        # The first variant whose range ends above the point: uppers are increasing (zero weights repeat a bound).
        return self._names[_bisect_right(self._uppers, point)]

    def _fnv1a32_v2(self, unit_id: str) -> str:
        n = fnv1a32(str(fnv1a32(unit_id, self._salt_state))) % BUCKETS / BUCKETS
        return choose_variation(n, self._weights)

    def _fnv1a32_v1(self, unit_id: str) -> str:
        return choose_variation(fnv1a32(unit_id + self._salt) % 1000 / 1000, self._weights)
