"""JSON bodies of the experiment API: decode requests into the service's typed values, encode its answers.

Field names are those of `croupier.api.wire`; every refusal names the field (`outcomes[3].value`). NaN and
infinities are not JSON (the parser refuses them); numbers beyond +-1e12 and booleans where a number belongs are
refused too. Duplicate keys are refused as in the decision API.
"""

from __future__ import annotations

from typing import Any

import orjson

from croupier.api import wire
from croupier.api.decisionpolicy import MAX_FEATURES
from croupier.runtime.decisions.validation import is_number, json_type, not_a_number
from croupier.runtime.errors import InvalidField, MissingField, UnknownField
from croupier.runtime.experiments.records import (
    Assignment,
    AssignRequest,
    ExposureItem,
    ExposureResult,
    OutcomeItem,
    OutcomeResult,
)
from croupier.runtime.http.codec import _members, parse_json_object, refuse_duplicate_keys


def _names(model: Any) -> frozenset[str]:
    return frozenset(field.alias or name for name, field in model.model_fields.items())


_ASSIGN = _names(wire.AssignRequest)
_EXPOSURE = _names(wire.Exposure)
_OUTCOME = _names(wire.Outcome)


def _object(body: bytes) -> dict[str, Any]:
    request = parse_json_object(body)
    if body.count(b":") != _members(request):
        refuse_duplicate_keys(body)
    return request


def _string(entry: dict[str, Any], key: str, prefix: str, *, limit: int, required: bool) -> str | None:
    value = entry.get(key)
    if value is None:
        if required:
            raise MissingField(f"{key} is required", field=prefix + key)
        return None
    if type(value) is not str:
        raise InvalidField(f"{key} must be a string, got {json_type(value)}", field=prefix + key)
    if not 0 < len(value) <= limit:
        raise InvalidField(f"{key} must have 1 to {limit} characters", field=prefix + key)
    return value


def _unknown(entry: dict[str, Any], known: frozenset[str], prefix: str, what: str) -> None:
    for key in entry:
        if key not in known:
            raise UnknownField(f"unknown field {key!r}; {what} has {', '.join(sorted(known))}", field=prefix + key)


def decode_assign(body: bytes, unit_key: str | None = None) -> AssignRequest:
    """The request's unit is `unitId`, or, without it, `attributes[unit_key]` (the Experiment's
    `spec.assignment.unitKey`, a string); a request with neither is refused naming both."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        request = None
    # The common body, `{"unitId": "..."}`, in a few checks (one member: no key can repeat).
    if type(request) is dict and len(request) == 1 and body.count(b":") == 1:
        unit_id = request.get("unitId")
        if type(unit_id) is str and 0 < len(unit_id) <= wire.MAX_UNIT_ID_LENGTH:
            return AssignRequest(unit_id)
    request = _object(body)
    _unknown(request, _ASSIGN, "", "an assign request")
    if "unitId" in request and request["unitId"] is None:  # optional, never null (the published schema)
        where = f"attributes.{unit_key}" if unit_key is not None else "attributes[spec.assignment.unitKey]"
        raise InvalidField(f"unitId must be a string, got null (omit it to take the unit from {where})", field="unitId")
    unit_id = _string(request, "unitId", "", limit=wire.MAX_UNIT_ID_LENGTH, required=False)
    attributes = request.get("attributes")
    if attributes is not None:
        if type(attributes) is not dict:
            raise InvalidField(f"attributes must be an object, got {json_type(attributes)}", field="attributes")
        if len(attributes) > wire.MAX_ATTRIBUTES:
            raise InvalidField(f"attributes may hold {wire.MAX_ATTRIBUTES} entries at most", field="attributes")
        for key, value in attributes.items():
            if not 0 < len(key) <= 128:
                raise InvalidField("an attribute name has 1 to 128 characters", field=f"attributes.{key}")
            if value is None or type(value) is str or type(value) is bool:
                continue
            if not is_number(value):
                raise InvalidField(
                    f"an attribute is a string, a number, a boolean or null; got {not_a_number(value)}",
                    field=f"attributes.{key}",
                )
    context = request.get("context")
    if context is not None:
        if type(context) is dict:
            pairs = list(context.items())
            for key in context:
                if not 0 < len(key) <= 128:
                    raise InvalidField("a feature name has 1 to 128 characters", field=f"context.{key}")
        elif type(context) is list:
            pairs = [(f"[{i}]", v) for i, v in enumerate(context)]
        else:
            raise InvalidField(f"context must be an object or an array, got {json_type(context)}", field="context")
        if len(pairs) > MAX_FEATURES:
            raise InvalidField(f"context may hold {MAX_FEATURES} values at most", field="context")
        for key, value in pairs:
            if not is_number(value):
                where = f"context{key}" if key.startswith("[") else f"context.{key}"
                raise InvalidField(f"a context value is a number, got {not_a_number(value)}", field=where)
    if unit_id is None:
        unit_id = _unit_from_attributes(attributes, unit_key)
    return AssignRequest(unit_id, attributes, context)


def _unit_from_attributes(attributes: dict[str, Any] | None, unit_key: str | None) -> str:
    if unit_key is None or attributes is None or unit_key not in attributes:
        attribute = f"attributes.{unit_key}" if unit_key is not None else "attributes[spec.assignment.unitKey]"
        raise MissingField(f"unitId or {attribute} (spec.assignment.unitKey) is required", field="unitId")
    value = _string(attributes, unit_key, "attributes.", limit=wire.MAX_UNIT_ID_LENGTH, required=True)
    assert value is not None
    return value


def _batch(request: dict[str, Any], key: str, limit: int) -> list[tuple[dict[str, Any], str]]:
    """The items of a request that is one item or `{key: [items]}`, each with its field prefix."""
    if key not in request:
        return [(request, "")]
    if len(request) != 1:
        extra = sorted(k for k in request if k != key)[0]
        raise UnknownField(f"a batch has only the field {key}; got {extra!r} too", field=extra)
    batch = request[key]
    if type(batch) is not list:
        raise InvalidField(f"{key} must be a list, got {json_type(batch)}", field=key)
    if not 0 < len(batch) <= limit:
        raise InvalidField(f"{key} must hold 1 to {limit} items", field=key)
    items = []
    for i, entry in enumerate(batch):
        if type(entry) is not dict:
            raise InvalidField(f"an item is an object, got {json_type(entry)}", field=f"{key}[{i}]")
        items.append((entry, f"{key}[{i}]."))
    return items


def decode_exposures(body: bytes) -> list[ExposureItem]:
    items = []
    for entry, prefix in _batch(_object(body), "exposures", wire.MAX_EXPOSURES_PER_REQUEST):
        _unknown(entry, _EXPOSURE, prefix, "an exposure")
        unit_id = _string(entry, "unitId", prefix, limit=wire.MAX_UNIT_ID_LENGTH, required=True)
        variant = _string(entry, "variant", prefix, limit=63, required=True)
        epoch = _string(entry, "epoch", prefix, limit=64, required=False)
        assert unit_id is not None and variant is not None
        items.append(ExposureItem(unit_id, variant, epoch, prefix))
    return items


def decode_outcomes(body: bytes) -> list[OutcomeItem]:
    items = []
    for entry, prefix in _batch(_object(body), "outcomes", wire.MAX_OUTCOMES_PER_REQUEST):
        _unknown(entry, _OUTCOME, prefix, "an outcome")
        unit_id = _string(entry, "unitId", prefix, limit=wire.MAX_UNIT_ID_LENGTH, required=True)
        metric = _string(entry, "metric", prefix, limit=128, required=True)
        value = entry.get("value")
        if value is None:
            raise MissingField("value is required", field=prefix + "value")
        if not is_number(value):
            raise InvalidField(f"value must be a finite number, got {not_a_number(value)}", field=prefix + "value")
        event_id = _string(entry, "eventId", prefix, limit=wire.MAX_EVENT_ID_LENGTH, required=False)
        assert unit_id is not None and metric is not None
        items.append(OutcomeItem(unit_id, metric, float(value), event_id, prefix))
    return items


class AssignmentEncoder:
    """Assign answers of one served experiment. A payload's or a model route's answer depends only on the variant and
    whether the unit counts: each is encoded once."""

    __slots__ = ("_epoch", "_fixed", "_version")

    def __init__(self, version: str, epoch: str) -> None:
        self._version = version
        self._epoch = epoch
        self._fixed: dict[tuple[str, bool], bytes] = {}

    def encode(self, assignment: Assignment) -> bytes:
        if assignment.decision is not None:
            return encode_assignment(assignment, self._version, self._epoch)
        key = (assignment.variant, assignment.counted)
        answer = self._fixed.get(key)
        if answer is None:
            answer = self._fixed[key] = encode_assignment(assignment, self._version, self._epoch)
        return answer


def encode_assignment(assignment: Assignment, version: str, epoch: str) -> bytes:
    body: dict[str, Any] = {
        "variant": assignment.variant,
        "experimentVersion": version,
        "epoch": epoch,
        "counted": assignment.counted,
    }
    if assignment.payload is not None:
        body["payload"] = assignment.payload
    elif assignment.decision is not None:
        d = assignment.decision
        body["decision"] = {
            "policy": d.policy,
            "decisionId": d.decision_id,
            "arm": d.arm,
            "probabilities": d.probabilities,
            "policyVersion": d.policy_version,
        }
    elif assignment.model is not None:
        m = assignment.model
        body["model"] = {"name": m.name, "version": m.version, "header": m.header, "value": m.value}
    return orjson.dumps(body)


def encode_exposures(results: list[ExposureResult]) -> bytes:
    recorded = sum(1 for r in results if r.outcome == wire.ExposureOutcome.RECORDED)
    return orjson.dumps(
        {
            "recorded": recorded,
            "results": [{"unitId": r.unit_id, "outcome": r.outcome.value, "variant": r.variant} for r in results],
        }
    )


def encode_outcomes(results: list[OutcomeResult]) -> bytes:
    accepted = sum(1 for r in results if r.outcome == wire.OutcomeStatus.ACCEPTED)
    return orjson.dumps(
        {
            "accepted": accepted,
            "results": [
                {"unitId": r.unit_id, "eventId": r.event_id, "outcome": r.outcome.value}
                if r.event_id is not None
                else {"unitId": r.unit_id, "outcome": r.outcome.value}
                for r in results
            ],
        }
    )
