"""The SDK's errors: one hierarchy, every runtime error answer mapped to a typed exception carrying the runtime's
``error`` code, ``message`` and ``field`` (docs/runtime.md, "Errors")."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from croupier.api.wire import Reward


class CroupierError(Exception):
    """Base of every error the SDK raises."""


class RuntimeUnreachable(CroupierError):
    """No answer from the runtime: connection refused or reset, DNS failure, or a timeout."""

    def __init__(self, url: str, cause: BaseException) -> None:
        super().__init__(f"the runtime at {url} did not answer: {type(cause).__name__}: {cause}")
        self.url = url
        self.cause = cause


class ApiError(CroupierError):
    """The runtime answered with an error (`{"status", "error", "message", "field"}`)."""

    def __init__(self, status: int, error: str, message: str, field: str | None = None) -> None:
        where = f" (field {field})" if field else ""
        super().__init__(f"{status} {error}: {message}{where}")
        self.status = status
        self.error = error
        self.message = message
        self.field = field


class InvalidRequest(ApiError):
    """400, 413 or 422: the request breaks the contract (``field`` names the offending part); nothing changed."""


class Unauthorized(ApiError):
    """401: no bearer token, or one the runtime does not know."""


class Forbidden(ApiError):
    """403: the token lacks the route's scope (decide, rewards or admin)."""


class NotFound(ApiError):
    """404: e.g. ``UnknownDecision`` (never made, or past the log's retention), or an unknown path."""


class Conflict(ApiError):
    """409: e.g. ``AttributionWindowExpired`` (the reward came after the window or after the default reward)."""


class ServiceUnavailable(ApiError):
    """5xx: the runtime cannot serve now (``Unavailable``, ``StoreError``, ``TargetUnavailable``); retry later."""


class RewardQueueFull(CroupierError):
    """The batched reward sender holds ``max_queue`` rewards not yet acknowledged: this reward was not taken."""

    def __init__(self, max_queue: int) -> None:
        super().__init__(
            f"the reward queue is full ({max_queue} rewards waiting for the runtime): this reward was not queued; "
            "send it later or raise max_queue"
        )
        self.max_queue = max_queue


class RewardsNotDelivered(CroupierError):
    """Closing the batched sender timed out with rewards the runtime has not acknowledged; ``pending`` holds them
    (keep them and send them again: rewards are idempotent by decisionId)."""

    def __init__(self, pending: Sequence[Reward], last_error: BaseException | None) -> None:
        super().__init__(
            f"{len(pending)} rewards were not acknowledged by the runtime before the timeout"
            + (f" (last error: {last_error})" if last_error is not None else "")
        )
        self.pending = list(pending)
        self.last_error = last_error


_BY_STATUS: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: NotFound,
    409: Conflict,
    413: InvalidRequest,
    422: InvalidRequest,
}


def api_error(status: int, body: bytes) -> ApiError:
    """The typed exception for an error answer; a body that is not the runtime's error shape (a proxy's page) keeps
    the status and its first bytes as the message."""
    error, message, field = f"Http{status}", "", None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        error = document["error"]
        message = str(document.get("message", ""))
        field = document.get("field") if isinstance(document.get("field"), str) else None
    else:
        message = body[:200].decode("utf-8", "replace") or "no body"
    kind = _BY_STATUS.get(status) or (ServiceUnavailable if status >= 500 else ApiError)
    return kind(status, error, message, field)


def retryable(error: BaseException) -> bool:
    """Errors an idempotent call may be sent again after: no answer, or a 5xx."""
    return isinstance(error, RuntimeUnreachable | ServiceUnavailable)


_ITEM_INDEX = re.compile(r"^[a-z]+\[(\d+)\]")


def item_index(field: str | None) -> int | None:
    """The item a batch error names: ``rewards[3].reward`` -> 3."""
    if field is None:
        return None
    match = _ITEM_INDEX.match(field)
    return int(match.group(1)) if match else None


class InvalidArgument(CroupierError, ValueError):
    """The SDK refused a call before sending it: an argument breaks the wire contract (``field`` names it)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{message} (field {field})" if field else message)
        self.field = field
