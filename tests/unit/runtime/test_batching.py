"""Decide calls of the requests of one loop turn run back to back, in order, each with its own outcome."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from croupier.runtime.errors import InvalidField
from croupier.runtime.http.batching import DecideBatcher

pytestmark = pytest.mark.unit


def test_requests_of_one_turn_are_decided_together_in_order_with_their_own_outcome(run: Any) -> None:
    calls: list[tuple[bytes, int]] = []
    turn = 0

    def decide(body: bytes) -> bytes:
        calls.append((body, turn))
        if body == b"bad":
            raise InvalidField("bad body", field="context")
        return body.upper()

    async def scenario() -> None:
        nonlocal turn
        batcher = DecideBatcher(decide)
        futures = [batcher.submit(body) for body in (b"a", b"bad", b"c")]
        assert calls == []  # nothing runs before the loop's next turn
        turn = 1
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        assert outcomes[0] == b"A" and outcomes[2] == b"C"
        assert isinstance(outcomes[1], InvalidField) and outcomes[1].field == "context"
        assert calls == [(b"a", 1), (b"bad", 1), (b"c", 1)]  # one callback, arrival order
        turn = 2
        assert await batcher.submit(b"d") == b"D"  # a later request starts a new batch
        assert calls[-1] == (b"d", 2)

    run(scenario())


def test_a_request_cancelled_before_its_turn_is_not_decided(run: Any) -> None:
    decided: list[bytes] = []

    def decide(body: bytes) -> bytes:
        decided.append(body)
        return body

    async def scenario() -> None:
        batcher = DecideBatcher(decide)
        kept, dropped = batcher.submit(b"kept"), batcher.submit(b"dropped")
        dropped.cancel()
        assert await kept == b"kept"
        assert decided == [b"kept"]

    run(scenario())
