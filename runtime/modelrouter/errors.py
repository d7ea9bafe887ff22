"""The router's own errors (the model server unreachable, a request the router cannot route) and the code maps both
adapters share: TF Serving's canonical code → HTTP status (tensorflow_serving/model_servers/http_server.cc), and the
reverse, to count a REST answer under its code."""

from __future__ import annotations

import grpc

# ToHTTPStatusCode, by canonical code name (grpc.StatusCode names are the same).
HTTP_STATUS = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}
# The first code for each status in the list above: several codes share 400, 409 and 500.
_CODE_OF_STATUS: dict[int, str] = {}
for _name, _status in HTTP_STATUS.items():
    _CODE_OF_STATUS.setdefault(_status, _name)


def code_of_http_status(status: int) -> str:
    """The code a REST answer is counted under (400 → INVALID_ARGUMENT, 500 → UNKNOWN, ...)."""
    return _CODE_OF_STATUS.get(status, "UNKNOWN")


class RouterError(Exception):
    """A request the router answers itself, with a canonical code and TF Serving-style message."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def code_name(self) -> str:
        return str(self.code.name)

    @property
    def http_status(self) -> int:
        return HTTP_STATUS.get(self.code_name, 500)


def upstream_unavailable(target: str, detail: str) -> RouterError:
    return RouterError(grpc.StatusCode.UNAVAILABLE, f"Model server at {target} is unreachable: {detail}")


def upstream_deadline(target: str, seconds: float | None) -> RouterError:
    return RouterError(grpc.StatusCode.DEADLINE_EXCEEDED, f"Model server at {target} did not answer within {seconds} s")


def body_rejected(status: int, reason: str) -> RouterError:
    """A request body the router will not read (larger than its limit: 413)."""
    code = grpc.StatusCode.RESOURCE_EXHAUSTED if status == 413 else grpc.StatusCode.INVALID_ARGUMENT
    return RouterError(code, f"Request body rejected: {reason}")
