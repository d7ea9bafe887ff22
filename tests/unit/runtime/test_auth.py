"""The bearer-token check: scopes, 401/403 with their challenges, rotation by re-reading the mounted files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from croupier.api.decisionpolicy import AuthScope, AuthSpec
from croupier.runtime.errors import PolicyConfigError
from croupier.runtime.http.app import mount
from croupier.runtime.http.auth import RELOAD_INTERVAL_SECONDS, Forbidden, TokenAuthenticator, Unauthorized
from croupier.runtime.http.routes import Routes

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"host", b"runtime"), (b"authorization", f"Bearer {token}".encode())]


def swap_secret(directory: Path, files: dict[str, str], version: int) -> None:
    """Update the directory as the kubelet updates a Secret volume: new files in a fresh folder, ..data re-pointed."""
    data = directory / f"..v{version}"
    data.mkdir()
    for key, value in files.items():
        (data / key).write_text(value)
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    link.replace(directory / "..data")
    for key in files:
        if not (directory / key).is_symlink():
            (directory / key).symlink_to(f"..data/{key}")


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    directory = tmp_path / "auth"
    directory.mkdir()
    swap_secret(directory, {"decide": "d-token-1\n", "rewards": "r-token\n", "admin": "a-token\n"}, 1)
    return directory


def test_each_token_grants_its_scopes_only(secret: Path) -> None:
    auth = TokenAuthenticator(secret, AuthSpec().grants(), clock=Clock())
    auth.check(bearer("d-token-1"), "decide")
    auth.check(bearer("r-token"), "rewards")
    auth.check(bearer("a-token"), "admin")
    with pytest.raises(Forbidden) as forbidden:
        auth.check(bearer("d-token-1"), "admin")
    assert forbidden.value.status == 403
    assert b'error="insufficient_scope", scope="admin"' in forbidden.value.challenge
    with pytest.raises(Forbidden):
        auth.check(bearer("a-token"), "decide")


def test_missing_malformed_and_unknown_tokens_are_401(secret: Path) -> None:
    auth = TokenAuthenticator(secret, AuthSpec().grants(), clock=Clock())
    for headers in ([], [(b"authorization", b"Basic dXNlcjpwYXNz")], [(b"authorization", b"Bearer ")]):
        with pytest.raises(Unauthorized) as missing:
            auth.check(headers, "decide")
        assert missing.value.status == 401
        assert missing.value.challenge == b'Bearer realm="croupier"'
    with pytest.raises(Unauthorized) as unknown:
        auth.check(bearer("d-token-"), "decide")  # a prefix of a real token is not a token
    assert b'error="invalid_token"' in unknown.value.challenge
    assert "d-token" not in unknown.value.message


def test_the_scheme_is_case_insensitive_and_one_key_holds_several_tokens(secret: Path) -> None:
    swap_secret(secret, {"decide": "new-token\nd-token-1\n\n", "rewards": "r-token", "admin": "a-token"}, 2)
    auth = TokenAuthenticator(secret, AuthSpec().grants(), clock=Clock())
    auth.check([(b"authorization", b"bearer new-token")], "decide")
    auth.check([(b"authorization", b"BEARER d-token-1")], "decide")
    assert auth.token_count == 4


def test_a_rotated_secret_is_read_again_without_a_restart(secret: Path) -> None:
    clock = Clock()
    auth = TokenAuthenticator(secret, AuthSpec().grants(), clock=clock)
    auth.check(bearer("d-token-1"), "decide")
    swap_secret(secret, {"decide": "d-token-2\n", "rewards": "r-token\n", "admin": "a-token\n"}, 2)
    auth.check(bearer("d-token-1"), "decide")  # within the reload interval the old files still count
    clock.now += RELOAD_INTERVAL_SECONDS
    auth.check(bearer("d-token-2"), "decide")
    with pytest.raises(Unauthorized):
        auth.check(bearer("d-token-1"), "decide")


def test_unchanged_files_are_not_read_again(secret: Path) -> None:
    clock = Clock()
    auth = TokenAuthenticator(secret, AuthSpec().grants(), clock=clock)
    assert auth.reload() is False
    os.utime(secret / "..v1" / "admin", ns=(1, 1))
    assert auth.reload() is True


def test_a_missing_key_grants_nothing_and_a_missing_directory_refuses_to_start(secret: Path, tmp_path: Path) -> None:
    spec = AuthSpec.model_validate({"tokens": [{"key": "partner", "scopes": ["decide", "admin"]}]})
    auth = TokenAuthenticator(secret, spec.grants(), clock=Clock())
    assert auth.token_count == 0
    with pytest.raises(Unauthorized):
        auth.check(bearer("d-token-1"), "decide")
    with pytest.raises(PolicyConfigError, match=r"spec\.auth\.mode: Disabled"):
        TokenAuthenticator(tmp_path / "absent", spec.grants())


def test_the_spec_needs_an_admin_token_and_unique_keys() -> None:
    with pytest.raises(ValueError, match="admin scope"):
        AuthSpec.model_validate({"tokens": [{"key": "a", "scopes": ["decide"]}]})
    with pytest.raises(ValueError, match="duplicate keys"):
        AuthSpec.model_validate({"tokens": [{"key": "a", "scopes": ["admin"]}, {"key": "a", "scopes": ["decide"]}]})
    assert (
        AuthSpec.model_validate({"mode": "Disabled", "tokens": [{"key": "a", "scopes": ["decide"]}]}).enabled is False
    )


def test_the_app_refuses_a_route_without_a_scope_or_served_twice() -> None:
    async def post(body: bytes) -> bytes:
        return body

    def get() -> tuple[int, bytes, bytes]:
        return 200, b"{}", b"application/json"

    scoped = Routes(post={"/v1/assign": post}, get={}, scopes={"/v1/assign": AuthScope.DECIDE})
    assert mount(scoped).scopes == {"/v1/assign": AuthScope.DECIDE}
    with pytest.raises(ValueError, match=r"without an auth scope: \['/v1/experiments'\]"):
        mount(scoped, Routes(post={}, get={"/v1/experiments": get}, scopes={}))
    with pytest.raises(ValueError, match="served by two services"):
        mount(scoped, scoped)
