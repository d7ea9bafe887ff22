"""Reference (b) of the HTTP benchmark: the barest ASGI app, answering every request with `{}`.

Served by uvicorn with the runtime's options (uvloop, httptools, no access log, no proxy-headers middleware, no
server/date headers); benchmarks/http_decide.py starts it.
"""

from __future__ import annotations

from typing import Any

_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")],
}
_BODY = {"type": "http.response.body", "body": b"{}"}


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] == "POST":
        message = await receive()
        while message.get("more_body", False):
            message = await receive()
    await send(_START)
    await send(_BODY)
