"""The model server's REST URL as the router's upstream: host, port, Host header and path prefix, or a clear error."""

from __future__ import annotations

import pytest

from croupier.runtime.modelrouter.upstream import Upstream, UpstreamConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8511", ("127.0.0.1", 8511, b"127.0.0.1:8511", b"", False)),
        ("http://tfserving.shop.svc:8501/", ("tfserving.shop.svc", 8501, b"tfserving.shop.svc:8501", b"", False)),
        ("https://models.example/serving/", ("models.example", 443, b"models.example", b"/serving", True)),
        ("http://user@[::1]:9000/p", ("::1", 9000, b"[::1]:9000", b"/p", False)),
    ],
)
def test_an_upstream_url_is_split_for_the_request_line(url: str, expected: tuple[object, ...]) -> None:
    """(host, port, Host header, path prefix, TLS)."""
    upstream = Upstream(url)
    split = (upstream.host, upstream.port, upstream.host_header, upstream.prefix, upstream.ssl is not None)
    assert split == expected


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("127.0.0.1:8511", "http(s)://host"),
        ("ftp://models:21", "http(s)://host"),
        ("http://127.0.0.1:8511/?x=1", "query or fragment"),
        ("http:///v1", "http(s)://host"),
    ],
)
def test_a_bad_upstream_url_is_refused_naming_the_problem(url: str, named: str) -> None:
    with pytest.raises(UpstreamConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Upstream(url)
