"""The loopback dispatcher the demo and the integration tests point the operator's URL templates at: requests reach
the process registered for the object the path names, unchanged both ways, and an object nothing serves is a 502."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from croupier.devcluster.dispatcher import LoopbackDispatcher

pytestmark = pytest.mark.integration


@pytest.fixture
def echo() -> Iterator[str]:
    """A process stand-in that answers what it got: method, path, body and the Authorization header."""

    class Echo(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            seen = {"method": self.command, "path": self.path, "body": body, "auth": self.headers.get("Authorization")}
            answer = json.dumps(seen).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/x-echo")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_GET = do_POST = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_requests_reach_the_registered_process_unchanged_and_unknown_names_are_502(echo: str) -> None:
    with LoopbackDispatcher({"ns/a": echo}) as dispatcher, httpx.Client(trust_env=False, timeout=10) as http:
        assert dispatcher.url_template("service") == f"http://127.0.0.1:{dispatcher.port}/{{namespace}}/{{service}}"
        base = dispatcher.url_template("pod", "/metrics").format(namespace="ns", pod="a").removesuffix("/metrics")
        got = http.get(f"{base}/metrics?x=1")
        assert got.status_code == 200 and got.headers["content-type"] == "application/x-echo"
        assert got.json() == {"method": "GET", "path": "/metrics?x=1", "body": "", "auth": None}
        posted = http.post(f"{base}/v1/assign", content=b'{"unitId": "u"}', headers={"authorization": "Bearer t"})
        assert posted.status_code == 201
        assert posted.json() == {"method": "POST", "path": "/v1/assign", "body": '{"unitId": "u"}', "auth": "Bearer t"}
        assert dispatcher.requests == {"ns/a": 2}

        missing = http.get(f"http://127.0.0.1:{dispatcher.port}/ns/b/metrics")
        assert missing.status_code == 502 and missing.json()["error"] == "NoRoute", missing.text
        assert "ns/b" in missing.json()["message"]

        dispatcher.route("ns", "b", "http://127.0.0.1:9")  # registered later; nothing listens there
        down = http.get(f"http://127.0.0.1:{dispatcher.port}/ns/b/metrics")
        assert down.status_code == 502 and down.json()["error"] == "Unreachable", down.text
        dispatcher.route("ns", "b", echo)
        assert http.get(f"http://127.0.0.1:{dispatcher.port}/ns/b/x").json()["path"] == "/x"
