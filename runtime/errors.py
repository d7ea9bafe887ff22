"""The runtime's one error hierarchy: every failure a client can cause or see carries its HTTP status and a code.

The core raises these; the HTTP adapter maps them to an ErrorResponse body in one place (`croupier.runtime.http.app`).
"""

from __future__ import annotations

from typing import ClassVar


class CroupierError(Exception):
    """Base of every error the runtime answers with. `code` is CamelCase and stable; `field` names the offender."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "InternalError"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def to_wire(self) -> dict[str, object]:
        body: dict[str, object] = {"status": self.status, "error": self.code, "message": self.message}
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequest(CroupierError):
    status = 400
    code = "BadRequest"


class MalformedJson(BadRequest):
    code = "MalformedJson"


class InvalidField(CroupierError):
    """A well-formed body whose content breaks the contract (wrong type, unknown arm, wrong dimension...)."""

    status = 422
    code = "InvalidField"


class UnknownField(InvalidField):
    code = "UnknownField"


class DuplicateField(InvalidField):
    """A key that appears twice in one JSON object (JSON decoders would keep the last value silently)."""

    code = "DuplicateField"


class MissingField(InvalidField):
    code = "MissingField"


class UnknownArm(InvalidField):
    code = "UnknownArm"


class InvalidContext(InvalidField):
    code = "InvalidContext"


class InvalidReward(InvalidField):
    code = "InvalidReward"


class UnknownDecision(CroupierError):
    status = 404
    code = "UnknownDecision"


class AttributionWindowExpired(CroupierError):
    status = 409
    code = "AttributionWindowExpired"


class NotFound(CroupierError):
    status = 404
    code = "NotFound"


class MethodNotAllowed(CroupierError):
    status = 405
    code = "MethodNotAllowed"


class PayloadTooLarge(CroupierError):
    status = 413
    code = "PayloadTooLarge"


class Unavailable(CroupierError):
    """The runtime cannot serve right now (store down, shutting down); retry later."""

    status = 503
    code = "Unavailable"


class StoreError(Unavailable):
    code = "StoreError"


class PolicyError(ValueError):
    """Base of the errors the policy core raises on purpose (`croupier.runtime.policies`); `field` names the offender
    (``"arm"``, ``"context"``, ``"params.epsilon"`` ...) so the error can point at it without parsing the message."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class PolicyConfigError(PolicyError):
    """The policy cannot be served: not a DecisionPolicy, an invalid spec, or a configuration the policy core refuses
    (`build_policy`). Not an HTTP error: the process exits with the reason. The one class for every such failure, so
    the CLI catches all of them."""


class UnknownMetric(InvalidField):
    """An outcome for a metric the experiment does not measure."""

    code = "UnknownMetric"


class UnknownVariant(InvalidField):
    code = "UnknownVariant"


class InvalidOutcome(InvalidField):
    code = "InvalidOutcome"


class TargetUnavailable(CroupierError):
    """A variant's target (the DecisionPolicy's runtime) did not answer in time or answered an error."""

    status = 502
    code = "TargetUnavailable"


class ExperimentConfigError(PolicyConfigError):
    """The experiment cannot be served: not an Experiment manifest or an invalid spec (the process exits)."""
