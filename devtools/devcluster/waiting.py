"""Polling with a deadline, for conditions that a control loop makes true eventually."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeoutError(TimeoutError):
    pass


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    max_interval: float = 1.0,
    on_tick: Callable[[], None] | None = None,
) -> T:
    """Call ``probe`` until it returns something other than None or False, and return that.

    ``on_tick`` runs before every probe (e.g. to fail fast when a process died). The interval grows by half each round
    up to ``max_interval``, so fast conditions are seen fast and slow ones are not hammered.
    """
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        if on_tick is not None:
            on_tick()
        try:
            result = probe()
        except Exception as error:  # a probe may fail while the thing it watches comes up
            last_error = error
            result = None
        if result is not None and result is not False:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise WaitTimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(interval)
        interval = min(interval * 1.5, max_interval)
