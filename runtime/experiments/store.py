"""What a state backend provides to the experiment service (embedded SQLite or shared Redis)."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple, Protocol

from croupier.runtime.experiments.records import ExposureRow, JoinedOutcome, UnitState

SumsKey = tuple[str, str]
"""(variant, metric)."""


class Totals(NamedTuple):
    """The current epoch's counted exposures per variant and sums per (variant, metric): [count, sum, sum of squares]
    (count: units with an outcome, used by Mean metrics)."""

    exposures: dict[str, int]
    sums: dict[SumsKey, list[float]]
    epoch_started: float


class TotalsSink(Protocol):
    def add_exposures(self, rows: list[ExposureRow]) -> None:
        """Exposures made durable (those of other processes too, in Redis mode via `adopt`)."""
        ...

    def add_outcomes(self, deltas: list[tuple[str, str, int, float, float]]) -> None:
        """Outcomes made durable: (variant, metric, count delta, sum delta, sum of squares delta)."""
        ...

    def adopt(self, totals: Totals) -> None:
        """Totals shared between replicas, replacing the local view (Redis)."""
        ...


class ExperimentStore(Protocol):
    backend: str

    @property
    def local_units(self) -> dict[str, UnitState] | None:
        """Embedded: every unit the store remembers, read without a call (the assign path); None when the units live
        elsewhere (Redis: ask `unit`)."""
        ...

    async def restore(self) -> Totals:
        """Before `start`: the epoch's totals (and, embedded, the units it remembers)."""
        ...

    async def start(self, sink: TotalsSink) -> None: ...

    async def close(self) -> None:
        """Commit everything queued, then stop."""
        ...

    @property
    def log_exposure(self) -> Callable[[ExposureRow], bool] | None:
        """Embedded: `expose(row, durable=False)` without waiting (queue the record); None elsewhere."""
        ...

    async def unit(self, unit_id: str) -> UnitState | None:
        """What the store remembers of a unit (sticky variant, exposure in the current epoch)."""
        ...

    async def units(self, unit_ids: list[str]) -> list[UnitState | None]:
        """`unit` for several units at once (one round trip in Redis)."""
        ...

    async def expose(self, row: ExposureRow, *, durable: bool) -> bool:
        """Store the unit's first exposure in the epoch with its variant and first epoch (the sticky record); False
        if another request or replica stored one first (nothing changes then). `durable=False` (assign) queues the
        record, committed within the flush interval; True (POST /v1/exposures) returns once it is durable."""
        ...

    async def submit_outcomes(self, joined: list[JoinedOutcome]) -> list[bool]:
        """Deduplicate by eventId, aggregate (`aggregation.observe`) and durably store; True per stored outcome,
        False for a duplicate eventId. All or nothing; delivers the sums' deltas to the sink before returning."""
        ...

    def health(self) -> str | None: ...

    def liveness(self) -> str | None: ...
