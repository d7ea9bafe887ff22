"""Both adapters' listen addresses come from one rule: an IPv6 host goes in brackets for gRPC's ``host:port``."""

from __future__ import annotations

import pytest

from croupier.runtime.modelrouter.listen import address


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        ("127.0.0.1", 8500, "127.0.0.1:8500"),
        ("0.0.0.0", 0, "0.0.0.0:0"),
        ("localhost", 8500, "localhost:8500"),
        ("::", 8500, "[::]:8500"),
        ("::1", 0, "[::1]:0"),
        ("[::1]", 8500, "[::1]:8500"),
    ],
)
def test_addresses(host: str, port: int, expected: str) -> None:
    assert address(host, port) == expected
