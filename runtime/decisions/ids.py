"""Decision ids: unique across processes and replicas, sortable by time within one process, cheap to make."""

from __future__ import annotations

import itertools
import secrets
import time


class DecisionIds:
    """`<start ms, 11 hex><random, 6 hex><counter, 8+ hex>`: process start time and randomness keep replicas apart;
    the counter makes ids increase, so the decision log's primary key grows at its end."""

    __slots__ = ("_counter", "_prefix")

    def __init__(self) -> None:
        self._prefix = f"{int(time.time() * 1000):011x}{secrets.randbits(24):06x}"
        self._counter = itertools.count(1)

    @property
    def prefix(self) -> str:
        return self._prefix

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):08x}"
