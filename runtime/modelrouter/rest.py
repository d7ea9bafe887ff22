"""The REST adapter: TF Serving's REST API (``/v1/models/...``) forwarded to the model server's REST port.

``POST /v1/models/{name}:predict|:classify|:regress`` (no version, no label) is rewritten to
``/v1/models/{name}/labels/{stable|canary}:...`` as the routing core decides; every other request (a version or label
named, status and metadata GETs, a malformed path) goes through unchanged, so TF Serving answers bad input with its
own error shapes and codes. The router's own answers (model server unreachable, a body it cannot read) use the same
``{"error": "..."}`` shape. ``GET /metrics`` is the router's Prometheus endpoint."""

from __future__ import annotations

import asyncio
import json
import re
import time
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from yarl import URL

from croupier.runtime.modelrouter.errors import (
    RouterError,
    body_rejected,
    code_of_http_status,
    upstream_deadline,
    upstream_unavailable,
)
from croupier.runtime.modelrouter.routing import NONE, PIN_HEADER, Route, pinned_version
from croupier.runtime.modelrouter.service import RouterService

# TF Serving's inference path (http_rest_api_handler.cc), versions as digits, a label not containing / or :.
PREDICTION_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)", re.IGNORECASE
)
VERSION_HEADER = PIN_HEADER
LABEL_HEADER = "x-croupier-model-label"
METRICS_PATH = "/metrics"


def route_headers(route: Route) -> dict[str, str]:
    headers = {}
    if route.version.isdigit():
        headers[VERSION_HEADER] = route.version
    if route.label != NONE:
        headers[LABEL_HEADER] = route.label
    return headers


class RestRouter:
    def __init__(
        self,
        service: RouterService,
        upstream: str,
        *,
        unit_header: str,
        timeout_seconds: float,
        max_body_bytes: int,
        max_connections: int = 256,
    ) -> None:
        self.service = service
        self.upstream = upstream.rstrip("/")
        self.unit_header = unit_header
        self.timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self.max_body_bytes = max_body_bytes
        self.max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes)
        # [\s\S]: a path with an encoded newline (%0A) is TF Serving's to refuse, not aiohttp's router's.
        app.router.add_route("*", r"/{tail:[\s\S]*}", self.handle)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, _app: web.Application) -> None:
        connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
        self._session = aiohttp.ClientSession(connector=connector, timeout=self.timeout, auto_decompress=False)

    async def _close(self, _app: web.Application) -> None:
        if self._session is not None:
            await self._session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        start = time.perf_counter()
        raw_path = request.raw_path
        path, _, query = raw_path.partition("?")
        if request.method == "GET" and path == METRICS_PATH:
            return web.Response(body=self.service.metrics.exposition(), content_type="text/plain")
        route: Route | None = None
        if request.method == "POST" and (match := PREDICTION_PATH.fullmatch(path)) is not None:
            version = int(match.group(2)) if match.group(2) else None
            label = unquote(match.group(3)) if match.group(3) else None
            pin = None
            if version is None and label is None:
                try:
                    pin = pinned_version(request.headers.get(PIN_HEADER))
                except ValueError as error:
                    return web.Response(
                        status=400, text=json.dumps({"error": str(error)}), content_type="application/json"
                    )
            unit = request.headers.get(self.unit_header)
            route = self.service.route(unquote(match.group(1)), version if pin is None else pin, label, unit)
            if pin is not None:
                raw_path = f"/v1/models/{match.group(1)}/versions/{pin}:{match.group(4)}"
                raw_path += f"?{query}" if query else ""
            elif route.rewrite:
                raw_path = f"/v1/models/{match.group(1)}/labels/{route.label}:{match.group(4)}"
                raw_path += f"?{query}" if query else ""
        try:
            response = await self._forward(request, raw_path)
        except RouterError as error:
            response = web.Response(
                status=error.http_status, text=json.dumps({"error": error.message}), content_type="application/json"
            )
        if route is not None:
            response.headers.update(route_headers(route))
            self.service.record(route, code_of_http_status(response.status), time.perf_counter() - start)
        return response

    async def _forward(self, request: web.Request, raw_path: str) -> web.Response:
        assert self._session is not None
        try:
            body = await request.read()
        except web.HTTPException as error:  # larger than max_body_bytes
            raise body_rejected(error.status, error.reason) from error
        headers = {}
        if (content_type := request.headers.get("Content-Type")) is not None:
            headers["Content-Type"] = content_type
        try:
            # encoded=True: the path goes on byte for byte, as the client wrote it (no re-quoting of % or spaces).
            url = URL(self.upstream + raw_path, encoded=True)
            async with self._session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            ) as upstream:
                content = await upstream.read()
                answer = web.Response(status=upstream.status, body=content)
                if (upstream_type := upstream.headers.get("Content-Type")) is not None:
                    answer.headers["Content-Type"] = upstream_type
                return answer
        except TimeoutError as error:
            raise upstream_deadline(self.upstream, self.timeout.total) from error
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as error:
            raise upstream_unavailable(self.upstream, f"{type(error).__name__}: {error}") from error
