"""One error type carrying a canonical status code, mapped to gRPC and to HTTP in one place (TF Serving's map)."""

from __future__ import annotations

from croupier.runtime.tfserving.client import ErrorCode

# The canonical status codes (google.rpc.Code / absl::StatusCode), as TF Serving names them in metrics: one
# definition, the runtime's TF Serving client's (a version's StatusProto carries the same numbers).
Code = ErrorCode


# tensorflow_serving/model_servers/http_server.cc: ToHTTPStatusCode.
_HTTP_STATUS = {
    Code.OK: 200,
    Code.CANCELLED: 499,
    Code.UNKNOWN: 500,
    Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504,
    Code.NOT_FOUND: 404,
    Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403,
    Code.RESOURCE_EXHAUSTED: 429,
    Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409,
    Code.OUT_OF_RANGE: 400,
    Code.UNIMPLEMENTED: 501,
    Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503,
    Code.DATA_LOSS: 500,
    Code.UNAUTHENTICATED: 401,
}


def http_status(code: Code) -> int:
    """The HTTP status TF Serving's REST server answers for a canonical code."""
    return _HTTP_STATUS.get(code, 500)


class ServingError(Exception):
    """A request or load failure with its canonical code and TF Serving's message text."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return http_status(self.code)

    def __repr__(self) -> str:
        return f"ServingError({self.code.name}, {self.message!r})"


def invalid_argument(message: str) -> ServingError:
    return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(Code.NOT_FOUND, message)


def failed_precondition(message: str) -> ServingError:
    return ServingError(Code.FAILED_PRECONDITION, message)
