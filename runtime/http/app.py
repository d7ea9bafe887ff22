"""A raw ASGI app: exact-path routing, JSON bodies (`codec`), precomputed headers, one place that maps errors to HTTP.

No framework: the decide route costs a dict lookup, one `receive` and two `send`s on top of the codec's and the
core's own work, and the runtime's connections answer it without the app altogether (`direct_route`, see
`server.DirectCycle`). The app mounts the routes of the process's data-plane services (`routes.py`: today the decision
service's decide, rewards and stats, or the experiment service's assign, exposures, outcomes and stats) beside its own
health, readiness, metrics and OpenAPI routes. Every route a service contributes declares its auth scope; with a token
directory set, `auth.py` checks the bearer token first (the app's own routes stay open for kubelet probes and
Prometheus).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
import structlog

from croupier.api import wire
from croupier.api.decisionpolicy import AuthScope
from croupier.runtime.assembly import Runtime
from croupier.runtime.errors import CroupierError, MethodNotAllowed, NotFound, PayloadTooLarge, PolicyConfigError
from croupier.runtime.experiments.assembly import ExperimentRuntime
from croupier.runtime.http.auth import AuthError, TokenAuthenticator
from croupier.runtime.http.openapi import openapi_document, with_bearer_auth
from croupier.runtime.http.routes import JSON as _JSON
from croupier.runtime.http.routes import GetHandler, PostHandler, Routes, decision_routes
from croupier.runtime.http.server import DirectHandler, DirectRoute

log = structlog.get_logger("croupier.runtime.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_METRICS_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


def mount(*services: Routes) -> Routes:
    """The services' routes as one table; a path without an auth scope, or served twice, is a programming error."""
    post: dict[str, PostHandler] = {}
    get: dict[str, GetHandler] = {}
    scopes: dict[str, AuthScope] = {}
    for routes in services:
        paths = routes.post.keys() | routes.get.keys()
        unscoped = sorted(paths - routes.scopes.keys())
        if unscoped:
            raise ValueError(f"routes without an auth scope: {unscoped}")
        twice = sorted(paths & (post.keys() | get.keys()))
        if twice:
            raise ValueError(f"routes served by two services: {twice}")
        post.update(routes.post)
        get.update(routes.get)
        scopes.update(routes.scopes)
    first = next((routes for routes in services if routes.hot), None)
    hot, batcher = (None, None) if first is None else (first.hot, first.hot_batcher)
    return Routes(post=post, get=get, scopes=scopes, hot=hot, hot_batcher=batcher)


def authenticator(runtime: Runtime | ExperimentRuntime) -> TokenAuthenticator | None:
    """The token check when the settings name a token directory, else None (with a warning: every route is open).

    The Secret's keys and scopes come from the served policy's or experiment's `spec.auth`."""
    auth = runtime.served.spec.auth
    directory = runtime.settings.auth_dir
    if directory is None:
        log.warning(
            "authentication is off: no token directory (CROUPIER_RUNTIME_AUTH_DIR) is set",
            spec_auth_mode=auth.mode,
        )
        return None
    if not auth.enabled:
        raise PolicyConfigError(
            f"a token directory ({directory}) is set but spec.auth.mode is Disabled: remove one or the other"
        )
    return TokenAuthenticator(directory, auth.grants())


class _ClientGone(Exception):
    pass


def _replay(first: dict[str, Any], receive: Receive) -> Receive:
    """`receive` that returns `first` once more (the fast path read it before handing over), then the rest."""
    pending = [first]

    async def again() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return again


def _start(status: int, body: bytes, content_type: bytes = _JSON) -> dict[str, Any]:
    return {
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())],
    }


_OK_STARTS: dict[int, dict[str, Any]] = {}


def _ok_start(body: bytes) -> dict[str, Any]:
    """The start message of a 200 JSON answer, one shared object per body length (the server only reads it)."""
    start = _OK_STARTS.get(len(body))
    if start is None:
        start = _start(200, body)
        if len(_OK_STARTS) < 4096:
            _OK_STARTS[len(body)] = start
    return start


def _services(runtime: Runtime | ExperimentRuntime) -> tuple[list[Routes], dict[str, Any], DirectHandler | None]:
    """The routes and the OpenAPI document of what the process serves (a policy's decisions or an experiment), and
    the hot route's handler for the connections' direct path (None: the routes' batcher, decide's)."""
    if isinstance(runtime, ExperimentRuntime):
        from croupier.runtime.experiments.http import (  # noqa: PLC0415
            DirectAssign,
            experiment_openapi_document,
            experiment_routes,
        )

        service = runtime.service
        return [experiment_routes(service)], experiment_openapi_document(runtime.served), DirectAssign(service)
    return [decision_routes(runtime.service, runtime.served.version)], openapi_document(runtime.served), None


class HttpApp:
    """The runtime's ASGI application."""

    def __init__(self, runtime: Runtime | ExperimentRuntime, *, on_started: Callable[[], None] | None = None) -> None:
        self.runtime = runtime
        self._on_started = on_started
        self.max_body = runtime.settings.max_body_bytes
        services, document, direct = _services(runtime)
        self._auth = authenticator(runtime)
        self._ok = orjson.dumps({"status": "ok"})
        self._errors = runtime.metrics.request_errors
        self._post: dict[str, PostHandler] = {}
        self._get: dict[str, GetHandler] = {
            wire.HEALTH_PATH: self._health,
            wire.READY_PATH: self._ready,
            wire.METRICS_PATH: lambda: (200, runtime.metrics.exposition(), _METRICS_TYPE),
            wire.OPENAPI_PATH: lambda: (200, self._openapi, _JSON),
        }
        routes = mount(*services)
        self._post.update(routes.post)
        self._get.update(routes.get)
        self._scopes: dict[str, str] = {path: str(scope) for path, scope in routes.scopes.items()}
        self._openapi = orjson.dumps(document if self._auth is None else with_bearer_auth(document, self._scopes))
        # The hot route (decide, or an experiment's assign), matched first in `__call__`.
        self._fast_path = routes.hot or "\0"  # "\0": no request path matches
        self._hot = self._post.get(self._fast_path)
        self._hot_scope = self._scopes.get(self._fast_path, "")
        self.direct_route = self._direct_route(routes, direct or routes.hot_batcher)
        """The hot route as the runtime's connections answer it without the ASGI cycle (decide, assign), or None."""

    def _direct_route(self, routes: Routes, handler: DirectHandler | None) -> DirectRoute | None:
        if routes.hot is None or handler is None:
            return None
        auth, scope, path = self._auth, self._hot_scope, routes.hot

        def authorized(headers: list[tuple[bytes, bytes]]) -> bool:
            try:
                auth.check(headers, scope)  # type: ignore[union-attr]  # only built with an authenticator
            except AuthError:
                return False  # the app's own route answers it (401/403, with the challenge header)
            return True

        def error(exc: BaseException) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            start, payload = self._error_answer(path, "POST", exc)
            return start["status"], start["headers"], payload

        return DirectRoute(
            path=path,
            batcher=handler,
            max_body=self.max_body,
            authorized=None if auth is None else authorized,
            error=error,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("path") == self._fast_path and scope["method"] == "POST":
            if self._auth is not None:
                try:
                    self._auth.check(scope["headers"], self._hot_scope)
                except AuthError as exc:
                    await self._error(send, self._fast_path, exc)
                    return
            # The hot route first: one receive, the decide (batched with the requests of the same loop turn, see
            # batching.py) or the assign, two sends. Anything unusual (a body in several messages, an error) takes the
            # general path.
            message = await receive()
            if not message.get("more_body", False):
                body: bytes = message.get("body", b"")
                if len(body) <= self.max_body:
                    try:
                        payload = await self._hot(body)  # type: ignore[misc]  # set with _fast_path
                    except Exception as exc:
                        await self._fail(send, self._fast_path, "POST", exc)
                        return
                    await send(_ok_start(payload))
                    await send({"type": "http.response.body", "body": payload})
                    return
            await self._http(scope, _replay(message, receive), send)
            return
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        try:
            if self._auth is not None and path in self._scopes:
                self._auth.check(scope["headers"], self._scopes[path])
            if method == "POST" and path in self._post:
                message = await receive()
                body: bytes = message.get("body", b"")
                if message.get("more_body", False) or len(body) > self.max_body:
                    body = await self._rest_of_body(body, message, receive)
                payload = await self._post[path](body)
                await send(_ok_start(payload))
                await send({"type": "http.response.body", "body": payload})
                return
            if method in ("GET", "HEAD") and path in self._get:
                status, payload, content_type = self._get[path]()
                await send(_start(status, payload, content_type))
                await send({"type": "http.response.body", "body": b"" if method == "HEAD" else payload})
                return
            if path in self._post or path in self._get:
                allowed = "POST" if path in self._post else "GET, HEAD"
                raise MethodNotAllowed(f"{method} is not allowed on {path}; use {allowed}")
            raise NotFound(f"no route {path}; see {wire.OPENAPI_PATH}")
        except _ClientGone:
            return
        except Exception as exc:
            await self._fail(send, path, method, exc)

    async def _fail(self, send: Send, path: str, method: str, exc: Exception) -> None:
        """The error answer (called while handling `exc`)."""
        start, payload = self._error_answer(path, method, exc)
        await send(start)
        await send({"type": "http.response.body", "body": payload})

    def _error_answer(self, path: str, method: str, exc: BaseException) -> tuple[dict[str, Any], bytes]:
        """The start message and body of the error answer to `exc`, counted: a CroupierError as it is, anything else
        as a logged internal error."""
        if isinstance(exc, CroupierError):
            error = exc
        else:
            log.error("request failed", path=path, method=method, exc_info=exc)
            error = CroupierError("internal error; see the runtime's log")
        self._errors.labels(path if path in self._post or path in self._get else "other", error.code).inc()
        payload = orjson.dumps(error.to_wire())
        start = _start(error.status, payload)
        if isinstance(error, AuthError):
            start["headers"].append((b"www-authenticate", error.challenge))
        elif isinstance(error, MethodNotAllowed):
            start["headers"].append((b"allow", b"POST" if path in self._post else b"GET, HEAD"))
        return start, payload

    async def _rest_of_body(self, body: bytes, message: dict[str, Any], receive: Receive) -> bytes:
        chunks = bytearray(body)
        while True:
            if len(chunks) > self.max_body:
                raise PayloadTooLarge(f"the body exceeds {self.max_body} bytes")
            if not message.get("more_body", False):
                return bytes(chunks)
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunks += message.get("body", b"")

    async def _error(self, send: Send, path: str, error: CroupierError) -> None:
        start, payload = self._error_answer(path, "", error)
        await send(start)
        await send({"type": "http.response.body", "body": payload})

    def _health(self) -> tuple[int, bytes, bytes]:
        problem = self.runtime.liveness()
        if problem is None:
            return 200, self._ok, _JSON
        return 503, orjson.dumps({"status": "failing", "detail": problem}), _JSON

    def _ready(self) -> tuple[int, bytes, bytes]:
        problem = self.runtime.readiness()
        if problem is None:
            return 200, self._ok, _JSON
        return 503, orjson.dumps({"status": "unavailable", "detail": problem}), _JSON

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self._on_started is not None:
                    self._on_started()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.runtime.stop()
                finally:
                    await send({"type": "lifespan.shutdown.complete"})
                return
