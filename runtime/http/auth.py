"""Bearer-token authentication of the runtime's API, by scope.

The tokens live in a Secret the pod mounts read-only (one file per key; a file holds one or more tokens, one a line).
Which scopes a key grants comes from the served spec (`spec.auth.tokens`), so the Secret holds only the secrets.
The kubelet swaps a mounted Secret's files when the Secret changes; the authenticator looks at the files at most once
a second (a stat per key) and re-reads them when they changed, so a token rotation needs no restart and no new
config hash. Tokens are compared with `hmac.compare_digest` against every known token (no early exit that would tell
a timing observer how much matched) and are never logged: logs name keys and counts only.
"""

from __future__ import annotations

import hmac
import os
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import structlog

from croupier.runtime.errors import CroupierError, PolicyConfigError

log = structlog.get_logger("croupier.runtime.auth")

RELOAD_INTERVAL_SECONDS = 1.0
MAX_TOKEN_FILE_BYTES = 64 * 1024
_AUTHORIZATION = b"authorization"
_BEARER = b"bearer "


class AuthError(CroupierError):
    """An answer that carries a `WWW-Authenticate` challenge (RFC 6750)."""

    challenge: bytes = b'Bearer realm="croupier"'


class Unauthorized(AuthError):
    status = 401
    code = "Unauthorized"


class Forbidden(AuthError):
    status = 403
    code = "Forbidden"


_MISSING = Unauthorized("this route needs an Authorization: Bearer <token> header")
_UNKNOWN = Unauthorized("the bearer token is not valid")
_UNKNOWN.challenge = b'Bearer realm="croupier", error="invalid_token"'


def _forbidden(scope: str) -> Forbidden:
    error = Forbidden(f"the token does not grant the {scope} scope this route needs")
    error.challenge = f'Bearer realm="croupier", error="insufficient_scope", scope="{scope}"'.encode()
    return error


_Signature = tuple[tuple[str, int, int, int], ...]


class TokenAuthenticator:
    """Checks a request's bearer token against the mounted Secret's tokens and the scope its route declares."""

    def __init__(
        self,
        directory: Path,
        grants: Mapping[str, frozenset[str]],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not directory.is_dir():
            raise PolicyConfigError(
                f"authentication is on but the token directory {directory} does not exist: mount the Secret named in "
                "spec.auth.secretName there, or set spec.auth.mode: Disabled"
            )
        self.directory = directory
        self.grants = dict(grants)
        self._clock = clock
        self._tokens: list[tuple[bytes, frozenset[str]]] = []
        self._signature: _Signature | None = None
        self._next_check = 0.0
        self._forbidden = {scope: _forbidden(scope) for scope in {s for g in self.grants.values() for s in g}}
        self.reload()

    @property
    def token_count(self) -> int:
        return len(self._tokens)

    def check(self, headers: Iterable[tuple[bytes, bytes]], scope: str) -> None:
        """Return when the request's token grants `scope`; raise Unauthorized or Forbidden otherwise."""
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + RELOAD_INTERVAL_SECONDS
            self.reload()
        presented = None
        for name, value in headers:
            if name == _AUTHORIZATION:
                presented = value
                break
        if presented is None or len(presented) <= len(_BEARER) or presented[:7].lower() != _BEARER:
            raise _MISSING
        token = presented[7:].strip()
        granted: frozenset[str] | None = None
        for known, scopes in self._tokens:  # every token, no early exit: the time does not depend on which matched
            if hmac.compare_digest(known, token):
                granted = scopes if granted is None else granted | scopes
        if granted is None:
            raise _UNKNOWN
        if scope not in granted:
            raise self._forbidden.get(scope) or _forbidden(scope)

    def reload(self) -> bool:
        """Read the token files again if they changed since the last read; True when they were read."""
        signature = self._stat()
        if signature == self._signature:
            return False
        tokens: list[tuple[bytes, frozenset[str]]] = []
        counts: dict[str, int] = {}
        missing: list[str] = []
        for key, scopes in sorted(self.grants.items()):
            try:
                with (self.directory / key).open("rb") as file:
                    content = file.read(MAX_TOKEN_FILE_BYTES + 1)
            except FileNotFoundError:
                missing.append(key)
                continue
            if len(content) > MAX_TOKEN_FILE_BYTES:
                log.error("token file too large, ignored", key=key, limit_bytes=MAX_TOKEN_FILE_BYTES)
                continue
            lines = [line.strip() for line in content.splitlines()]
            found = [line for line in lines if line]
            tokens.extend((token, scopes) for token in found)
            counts[key] = len(found)
        self._tokens = tokens
        self._signature = signature
        log.info("authentication tokens loaded", directory=str(self.directory), tokens_per_key=counts, missing=missing)
        return True

    def _stat(self) -> _Signature:
        entries = []
        for key in sorted(self.grants):
            try:
                st = os.stat(self.directory / key)  # follows the kubelet's ..data symlinks to the current files
            except FileNotFoundError:
                entries.append((key, -1, -1, -1))
                continue
            entries.append((key, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(entries)
