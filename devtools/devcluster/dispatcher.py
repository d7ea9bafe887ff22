"""The cluster network on loopback, for the local control plane's processes.

kwok pods run nothing, so the demo and the integration tests run each pod's process themselves on a loopback port,
and the operator reaches them through its documented URL templates (``CROUPIER_OPERATOR_RUNTIME_URL_TEMPLATE``,
``CROUPIER_OPERATOR_ROUTER_METRICS_URL_TEMPLATE``, ...). ``LoopbackDispatcher`` is the one address those templates
point at: ``/<namespace>/<name>/<path>`` is forwarded to the process registered for ``<namespace>/<name>`` (a Service
or a pod, whichever the template names), as the cluster's network would forward it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import httpx

FORWARDED_HEADERS = ("authorization", "content-type", "accept")
"""Request headers passed on; everything else (Host, Content-Length, hop-by-hop) is the dispatcher's own."""


class LoopbackDispatcher(http.server.ThreadingHTTPServer):
    """``GET``/``POST /<namespace>/<name>/<path>[?query]`` forwarded to ``routes["<namespace>/<name>"]`` (a base URL):
    method, path, query, body, the Authorization and Content-Type headers, and the answer's status, content type and
    body pass unchanged. A name with no route answers 502 ``NoRoute`` (a Service without endpoints), an upstream that
    does not answer 502 ``Unreachable``. ``requests`` counts the forwarded requests per ``<namespace>/<name>``.

    ``routes`` may be changed while the dispatcher serves (``route``): a process started later is reachable from its
    registration on. A context manager: serving starts on ``__enter__`` (or ``start``) and stops on ``__exit__``."""

    daemon_threads = True

    def __init__(self, routes: Mapping[str, str] | None = None, *, timeout: float = 10.0) -> None:
        self.routes: dict[str, str] = dict(routes or {})
        self.requests: Counter[str] = Counter()
        self.client = httpx.Client(timeout=timeout, trust_env=False)
        dispatcher = self

        class Forward(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                dispatcher.forward(self)

            def do_POST(self) -> None:
                dispatcher.forward(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Forward)
        self.thread = threading.Thread(target=self.serve_forever, name="loopback-dispatcher", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url_template(self, placeholder: str = "name", path: str = "") -> str:
        """The URL template an operator setting takes: ``http://127.0.0.1:<port>/{namespace}/{<placeholder>}<path>``
        (e.g. ``url_template("service")`` for the runtime, ``url_template("pod", "/metrics")`` for per-pod scrapes)."""
        return f"http://127.0.0.1:{self.port}/{{namespace}}/{{{placeholder}}}{path}"

    def route(self, namespace: str, name: str, url: str) -> None:
        """``<namespace>/<name>`` is served by the process at ``url`` from now on."""
        self.routes[f"{namespace}/{name}"] = url

    def forward(self, request: http.server.BaseHTTPRequestHandler) -> None:
        namespace, _, rest = request.path.lstrip("/").partition("/")
        name, _, path = rest.partition("/")
        key = f"{namespace}/{name}"
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        target = self.routes.get(key)
        status, content_type = 502, "application/json"
        answer = json.dumps({"error": "NoRoute", "message": f"nothing serves {key}"}).encode()
        if target is not None:
            self.requests[key] += 1
            headers = {k: v for k, v in request.headers.items() if k.lower() in FORWARDED_HEADERS}
            try:
                upstream = self.client.request(request.command, f"{target}/{path}", content=body, headers=headers)
                status, answer = upstream.status_code, upstream.content
                content_type = upstream.headers.get("content-type", content_type)
            except httpx.HTTPError as error:
                message = f"{key} at {target}: {type(error).__name__}: {error}"
                answer = json.dumps({"error": "Unreachable", "message": message}).encode()
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(answer)))
        request.end_headers()
        with contextlib.suppress(ConnectionError):  # the caller gave up waiting (its own timeout)
            request.wfile.write(answer)

    def start(self) -> LoopbackDispatcher:
        if not self.thread.is_alive():
            self.thread.start()
        return self

    def close(self) -> None:
        if self.thread.is_alive():
            self.shutdown()
            self.thread.join(10)
        self.server_close()
        self.client.close()

    def __enter__(self) -> LoopbackDispatcher:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
