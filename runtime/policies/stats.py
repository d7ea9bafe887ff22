"""Additive sufficient statistics: the whole learnable state of every policy.

Everything a policy learns from rewards is a sum over observations, so the state of two replicas fed disjoint rewards
adds up to the state of one replica fed all of them. That is what lets replicas share a policy through a store that
can only add numbers (Redis ``HINCRBYFLOAT``, an SQL ``UPDATE ... SET v = v + ?``): each replica pushes the *delta* of
what it learned since its last push and replaces its view with the shared *total*.

Per arm ``a`` (``K`` arms, context dimension ``d``; ``d == 0`` for non-contextual policies):

========  ===========  ===========================================================================
field     shape        meaning
========  ===========  ===========================================================================
``n``     ``(K,)``     pulls with a reward: number of ``add`` calls
``s``     ``(K,)``     sum of rewards ``Σ r``
``s2``    ``(K,)``     sum of squared rewards ``Σ r²``
``A``     ``(K,d,d)``  ``Σ x xᵀ``: the ridge regularization ``λI`` and priors are NOT included
``b``     ``(K,d)``    ``Σ r x``
``sx``    ``(K,d)``    ``Σ x``: lets a prior mean act as a baseline (the model learns ``r - mean``)
========  ===========  ===========================================================================

Priors and regularization are configuration, never state: changing them never invalidates stored statistics.
All arrays are float64 (counts stay exact up to 2⁵³).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from .errors import PolicyInputError

__all__ = ["FloatArray", "SufficientStats"]

FloatArray = npt.NDArray[np.float64]

_MAGIC: Final = b"CRSS"
_FORMAT_VERSION: Final = 1
_HEADER = struct.Struct("<4sBII")  # magic, format version, arms, dimension


class SufficientStats:
    """Per-arm sums that fully describe what a policy learned; see the module docstring for the fields.

    Instances are mutable value objects: :meth:`add` records one observation, :meth:`merge` adds another instance
    (a delta from a replica, a replayed log), :meth:`copy` snapshots. Serialization is lossless: :meth:`to_dict` /
    :meth:`from_dict` (JSON-friendly lists), :meth:`to_bytes` / :meth:`from_bytes` (compact binary for a blob column)
    and :meth:`to_flat` / :meth:`from_flat` (one float64 vector, for stores that add element by element).
    """

    __slots__ = ("A", "b", "n", "s", "s2", "sx")

    def __init__(
        self,
        *,
        n: FloatArray,
        s: FloatArray,
        s2: FloatArray,
        A: FloatArray,
        b: FloatArray,
        sx: FloatArray,
    ) -> None:
        k = n.shape[0] if n.ndim == 1 else -1
        d = b.shape[1] if b.ndim == 2 else -1
        expected = {"n": (k,), "s": (k,), "s2": (k,), "A": (k, d, d), "b": (k, d), "sx": (k, d)}
        arrays = {"n": n, "s": s, "s2": s2, "A": A, "b": b, "sx": sx}
        for name, array in arrays.items():
            if k < 1 or d < 0 or array.shape != expected[name]:
                raise PolicyInputError(
                    f"stats field {name!r} has shape {array.shape}, expected {expected[name]} "
                    f"(arms={max(k, 0)}, dimension={max(d, 0)})",
                    field=f"stats.{name}",
                )
            if array.dtype != np.float64:
                raise PolicyInputError(
                    f"stats field {name!r} must be float64, got {array.dtype}", field=f"stats.{name}"
                )
        self.n = n
        self.s = s
        self.s2 = s2
        self.A = A
        self.b = b
        self.sx = sx

    # ------------------------------------------------------------------ construction
    @classmethod
    def zeros(cls, n_arms: int, dimension: int = 0) -> SufficientStats:
        """Empty statistics for ``n_arms`` arms and contexts of length ``dimension`` (0: non-contextual)."""
        if n_arms < 1:
            raise PolicyInputError(f"stats need at least one arm, got {n_arms}", field="stats.arms")
        if dimension < 0:
            raise PolicyInputError(f"stats dimension must be >= 0, got {dimension}", field="stats.dimension")
        k, d = n_arms, dimension
        return cls(
            n=np.zeros(k), s=np.zeros(k), s2=np.zeros(k), A=np.zeros((k, d, d)), b=np.zeros((k, d)), sx=np.zeros((k, d))
        )

    @property
    def n_arms(self) -> int:
        """Number of arms ``K``."""
        return int(self.n.shape[0])

    @property
    def dimension(self) -> int:
        """Context dimension ``d`` (0 for non-contextual statistics)."""
        return int(self.b.shape[1])

    def copy(self) -> SufficientStats:
        """A deep copy."""
        return SufficientStats(
            n=self.n.copy(), s=self.s.copy(), s2=self.s2.copy(), A=self.A.copy(), b=self.b.copy(), sx=self.sx.copy()
        )

    # ------------------------------------------------------------------ arithmetic
    def add(self, arm: int, reward: float, x: npt.ArrayLike | None = None) -> None:
        """Record one observation: ``reward`` for ``arm`` (with context ``x`` of length ``dimension`` if contextual).

        Raises :class:`PolicyInputError` for an arm out of range, a non-finite reward or a context of the wrong shape
        or with non-finite values; nothing is changed then.
        """
        k, d = self.n_arms, self.dimension
        if isinstance(arm, bool) or not isinstance(arm, int | np.integer) or not 0 <= arm < k:
            raise PolicyInputError(f"arm index {arm!r} is out of range for {k} arms", field="arm")
        r = float(reward)
        if not math.isfinite(r):
            raise PolicyInputError(f"reward must be a finite number, got {reward!r}", field="reward")
        if d == 0:
            if x is not None and np.size(x) != 0:
                raise PolicyInputError(
                    "these statistics are not contextual; the context must be empty", field="context"
                )
            self.add_unchecked(int(arm), r, None)
            return
        if x is None:
            raise PolicyInputError(f"a context of length {d} is required", field="context")
        vector = np.asarray(x, dtype=np.float64)
        if vector.shape != (d,):
            raise PolicyInputError(f"context must have shape ({d},), got {vector.shape}", field="context")
        if not np.isfinite(vector).all():
            raise PolicyInputError("context contains NaN or infinite values", field="context")
        self.add_unchecked(int(arm), r, vector)

    def add_unchecked(self, arm: int, reward: float, x: FloatArray | None, xxt: FloatArray | None = None) -> None:
        """:meth:`add` without validation, for callers that validated already (the policies' hot path).

        ``xxt`` may pass a precomputed ``outer(x, x)`` to save recomputing it.
        """
        self.n[arm] += 1.0
        self.s[arm] += reward
        self.s2[arm] += reward * reward
        if x is not None:
            self.A[arm] += np.multiply.outer(x, x) if xxt is None else xxt
            self.b[arm] += reward * x
            self.sx[arm] += x

    def merge(self, other: SufficientStats) -> None:
        """Add ``other`` (same arms and dimension) into these statistics, in place."""
        self._check_same_shape(other)
        self.n += other.n
        self.s += other.s
        self.s2 += other.s2
        self.A += other.A
        self.b += other.b
        self.sx += other.sx

    def __add__(self, other: SufficientStats) -> SufficientStats:
        total = self.copy()
        total.merge(other)
        return total

    def __sub__(self, other: SufficientStats) -> SufficientStats:
        """``self - other``: the delta between two snapshots of the same statistics."""
        self._check_same_shape(other)
        return SufficientStats(
            n=self.n - other.n,
            s=self.s - other.s,
            s2=self.s2 - other.s2,
            A=self.A - other.A,
            b=self.b - other.b,
            sx=self.sx - other.sx,
        )

    def reset(self) -> None:
        """Set every sum back to zero, in place."""
        for array in (self.n, self.s, self.s2, self.A, self.b, self.sx):
            array.fill(0.0)

    def is_zero(self) -> bool:
        """True when no observation has been recorded (every field is zero)."""
        return not any(array.any() for array in (self.n, self.s, self.s2, self.A, self.b, self.sx))

    def allclose(self, other: SufficientStats, *, rtol: float = 1e-9, atol: float = 1e-9) -> bool:
        """Field-by-field :func:`numpy.allclose` (sums in a different order differ by rounding only)."""
        if (self.n_arms, self.dimension) != (other.n_arms, other.dimension):
            return False
        pairs = zip(self._fields(), other._fields(), strict=True)
        return all(np.allclose(mine, theirs, rtol=rtol, atol=atol) for mine, theirs in pairs)

    def _fields(self) -> tuple[FloatArray, ...]:
        return (self.n, self.s, self.s2, self.A, self.b, self.sx)

    def _check_same_shape(self, other: SufficientStats) -> None:
        if (self.n_arms, self.dimension) != (other.n_arms, other.dimension):
            raise PolicyInputError(
                f"stats shapes differ: arms={self.n_arms}, dimension={self.dimension} vs "
                f"arms={other.n_arms}, dimension={other.dimension}",
                field="stats",
            )

    # ------------------------------------------------------------------ serialization
    @staticmethod
    def flat_size(n_arms: int, dimension: int) -> int:
        """Length of :meth:`to_flat` for these sizes: ``3K + K·d² + 2·K·d``."""
        return 3 * n_arms + n_arms * dimension * dimension + 2 * n_arms * dimension

    def to_flat(self) -> FloatArray:
        """All sums as one float64 vector in the order ``n, s, s2, A, b, sx`` (each C-ordered).

        Element ``i`` of a delta's flat vector adds to element ``i`` of the total's, so a store can keep the total as
        a list/hash of numbers and apply deltas element-wise (skipping zeros).
        """
        return np.concatenate([array.ravel() for array in self._fields()])

    @classmethod
    def from_flat(cls, n_arms: int, dimension: int, flat: npt.ArrayLike) -> SufficientStats:
        """Inverse of :meth:`to_flat`; validates the length and that every value is finite."""
        values = np.array(flat, dtype=np.float64).ravel()
        expected = cls.flat_size(n_arms, dimension)
        if n_arms < 1 or dimension < 0 or values.shape[0] != expected:
            raise PolicyInputError(
                f"flat stats have {values.shape[0]} values, expected {expected} "
                f"for arms={n_arms}, dimension={dimension}",
                field="stats",
            )
        if not np.isfinite(values).all():
            raise PolicyInputError("stats contain NaN or infinite values", field="stats")
        k, d = n_arms, dimension
        cuts = np.cumsum([k, k, k, k * d * d, k * d])
        n, s, s2, a, b, sx = np.split(values, cuts)
        return cls(n=n, s=s, s2=s2, A=a.reshape(k, d, d), b=b.reshape(k, d), sx=sx.reshape(k, d))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: ``{"arms", "dimension", "n", "s", "s2", "A", "b", "sx"}`` with nested lists."""
        return {
            "arms": self.n_arms,
            "dimension": self.dimension,
            "n": self.n.tolist(),
            "s": self.s.tolist(),
            "s2": self.s2.tolist(),
            "A": self.A.tolist(),
            "b": self.b.tolist(),
            "sx": self.sx.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SufficientStats:
        """Inverse of :meth:`to_dict`; validates shapes and finiteness and names the bad field."""
        try:
            k, d = int(data["arms"]), int(data["dimension"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PolicyInputError(f"stats need integer 'arms' and 'dimension': {exc}", field="stats") from exc
        if k < 1 or d < 0:
            raise PolicyInputError(f"stats need arms >= 1 and dimension >= 0, got {k}, {d}", field="stats")
        shapes = {"n": (k,), "s": (k,), "s2": (k,), "A": (k, d, d), "b": (k, d), "sx": (k, d)}
        arrays: dict[str, FloatArray] = {}
        for name, shape in shapes.items():
            if name not in data:
                raise PolicyInputError(f"stats field {name!r} is missing", field=f"stats.{name}")
            try:
                array = np.array(data[name], dtype=np.float64)
            except (TypeError, ValueError) as exc:
                raise PolicyInputError(f"stats field {name!r} is not numeric: {exc}", field=f"stats.{name}") from exc
            if array.size == 0 and math.prod(shape) == 0:
                array = array.reshape(shape)
            if array.shape != shape:
                raise PolicyInputError(
                    f"stats field {name!r} has shape {array.shape}, expected {shape}", field=f"stats.{name}"
                )
            if not np.isfinite(array).all():
                raise PolicyInputError(f"stats field {name!r} contains NaN or infinite values", field=f"stats.{name}")
            arrays[name] = array
        return cls(**arrays)

    def to_bytes(self) -> bytes:
        """Compact binary form: a 13-byte header (magic ``CRSS``, format version, K, d) then :meth:`to_flat` as
        little-endian float64."""
        header = _HEADER.pack(_MAGIC, _FORMAT_VERSION, self.n_arms, self.dimension)
        return header + self.to_flat().astype("<f8", copy=False).tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> SufficientStats:
        """Inverse of :meth:`to_bytes`."""
        if len(data) < _HEADER.size:
            raise PolicyInputError("stats blob is shorter than its header", field="stats")
        magic, version, k, d = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _FORMAT_VERSION:
            raise PolicyInputError(
                f"not a stats blob of format {_FORMAT_VERSION} (magic {magic!r}, v{version})", field="stats"
            )
        body = data[_HEADER.size :]
        if len(body) != 8 * cls.flat_size(k, d):
            raise PolicyInputError(
                f"stats blob has {len(body)} payload bytes, expected {8 * cls.flat_size(k, d)}", field="stats"
            )
        return cls.from_flat(k, d, np.frombuffer(body, dtype="<f8"))

    def __repr__(self) -> str:
        return f"SufficientStats(arms={self.n_arms}, dimension={self.dimension}, pulls={int(self.n.sum())})"
