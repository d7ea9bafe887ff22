"""JSON bodies of the decision API: decode requests into the core's typed values, encode its answers.

A decide body is decoded and type-checked in one C call by msgspec (into `DecideRequest`); only a body it refuses goes
through the hand-written checks (`DecideCodec.explain`), which name the offending field. The field names are those of
`croupier.api.wire`. Responses are assembled from pre-encoded parts.

Duplicate keys (`{"reward": 1, "reward": 0}`) are refused with 422 naming the key: both decoders keep the last value
silently. Counting is cheap: every member of every object in a decide body has one `:` outside strings, so a body
with as many `:` as the decoded request has members has no duplicate; any other body (a `:` inside a string, or a
duplicate) is parsed once more, by the standard library with a hook that sees every key.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import orjson
from pydantic import BaseModel

from croupier.api import wire
from croupier.api.wire import MAX_DECISION_ID_LENGTH, MAX_REWARDS_PER_REQUEST, MAX_UNIT_ID_LENGTH
from croupier.runtime.decisions.records import DecideRequest, Decision, RewardItem, RewardsAnswer
from croupier.runtime.decisions.validation import DecideSchema, check_reward, json_type
from croupier.runtime.errors import DuplicateField, InvalidField, MalformedJson, MissingField, UnknownField


def _names(model: type[BaseModel]) -> dict[str, str]:
    """The wire names of a model's fields (the wire contract is the source of every name written here)."""
    return {name: field.alias or name for name, field in model.model_fields.items()}


_DECIDE_FIELDS = frozenset(_names(wire.DecideRequest).values())
_DECIDED = _names(wire.DecideResponse)
_HEAD = b'{"' + _DECIDED["decision_id"].encode() + b'":"'
_ARM = b'","' + _DECIDED["arm"].encode() + b'":'
_PROBABILITIES = b',"' + _DECIDED["probabilities"].encode() + b'":'
_VERSION = b',"' + _DECIDED["policy_version"].encode() + b'":'
_ANSWER = _names(wire.RewardResponse)
_RESULT = _names(wire.RewardResult)

# Encoded probability vectors kept for reuse (see DecideCodec.encode).
_SHOWN_MEMO = 256

_decode_decide = msgspec.json.Decoder(DecideRequest).decode


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = "; NaN and Infinity are not JSON numbers" if b"NaN" in body or b"Infinity" in body else ""
        raise MalformedJson(f"the body is not valid JSON: {exc}{hint}") from None
    if type(value) is not dict:
        raise MalformedJson(f"the body must be a JSON object, got {json_type(value)}")
    return value


class _Keys(dict[str, Any]):
    """An object of a body parsed by `refuse_duplicate_keys`, with its first repeated key."""

    repeated: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Keys:
    keys = _Keys(pairs)
    if len(keys) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                keys.repeated = key
                break
            seen.add(key)
    return keys


def _repeated(value: object, path: str) -> str | None:
    """The path of the first repeated key in a parsed value (`context.level`, `rewards[2].reward`)."""
    if isinstance(value, _Keys):
        if value.repeated is not None:
            return path + value.repeated
        for key, item in value.items():
            found = _repeated(item, f"{path}{key}.")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found = _repeated(item, f"{path[:-1]}[{i}].")
            if found is not None:
                return found
    return None


def refuse_duplicate_keys(body: bytes) -> None:
    """Raise `DuplicateField` naming the first key that appears twice in one object of a (valid JSON) body."""
    try:
        parsed = json.loads(body, object_pairs_hook=_pairs)
    except ValueError:  # not JSON for the standard library: the caller's own decoder says why
        return
    path = _repeated(parsed, "")
    if path is not None:
        key = path.rsplit(".", 1)[-1]
        raise DuplicateField(f"duplicate key {key!r}: a field may appear once", field=path)


def _members(value: object) -> int:
    """How many object members a parsed JSON value holds, at every depth."""
    if type(value) is dict:
        return len(value) + sum(_members(v) for v in value.values())
    if type(value) is list:
        return sum(_members(v) for v in value)
    return 0


class DecideCodec:
    """Decide bodies of one policy: decode a request, encode a decision."""

    __slots__ = ("_arm_json", "_names", "_schema", "_shown", "_tail")

    def __init__(self, schema: DecideSchema, arm_names: list[str], policy_version: str) -> None:
        self._schema = schema
        self._names = arm_names
        self._arm_json = [orjson.dumps(name) for name in arm_names]
        self._tail = _VERSION + orjson.dumps(policy_version) + b"}"
        self._shown: dict[tuple[float, ...], bytes] = {}

    def decode(self, body: bytes) -> DecideRequest:
        try:
            request = _decode_decide(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            self.explain(body)  # raises the error that names the field
            raise MalformedJson(f"the body is not a valid decide request: {exc}") from None
        colons = body.count(b":")
        if colons > 1:  # with one member at most, no key can repeat
            context = request.context
            members = (request.unit_id is not None) + (context is not None) + (request.candidates is not None)
            if colons != (members + len(context) if type(context) is dict else members):
                refuse_duplicate_keys(body)
        return request

    def explain(self, body: bytes) -> tuple[str | None, list[float] | None, list[int] | None]:
        """The decoder's checks written out by hand, with the policy's own rules in their place (so the first problem
        in field order is the one named): raises the precise error for a body the decoder refused. For a body it
        accepts: the unit id, the context values in feature order and the eligible arm indexes, as `decode` and
        `DecideSchema.check` give them."""
        request = parse_json_object(body)
        if len(request) > 3 or not _DECIDE_FIELDS.issuperset(request):
            unknown = sorted(set(request) - _DECIDE_FIELDS)
            raise UnknownField(
                f"unknown field {unknown[0]!r}; a decide request has unitId, context and candidates", field=unknown[0]
            )
        unit_id = request.get("unitId")
        if unit_id is not None and (type(unit_id) is not str or not 0 < len(unit_id) <= MAX_UNIT_ID_LENGTH):
            if type(unit_id) is not str:
                raise InvalidField(f"unitId must be a string, got {json_type(unit_id)}", field="unitId")
            raise InvalidField(f"unitId must have 1 to {MAX_UNIT_ID_LENGTH} characters", field="unitId")
        schema = self._schema
        context = request.get("context")
        features = None if context is None and not schema.contextual else schema.context(context)
        candidates = request.get("candidates")
        eligible = None if candidates is None else schema.candidates(candidates)
        return unit_id, features, eligible

    def encode(self, decision: Decision) -> bytes:
        probabilities = decision.probabilities
        eligible = decision.eligible
        if eligible is None:
            # Vectors repeat: a non-contextual policy's until its state changes, LinUCB's and ε-greedy's are one of a
            # few (the floored one-hot vector of each arm). Encode each once; the memo is bounded.
            shown = self._shown.get(probabilities)
            if shown is None:
                shown = orjson.dumps(dict(zip(self._names, probabilities, strict=True)))
                if len(self._shown) >= _SHOWN_MEMO:
                    self._shown.clear()
                self._shown[probabilities] = shown
        else:
            names = self._names
            shown = orjson.dumps({names[i]: probabilities[i] for i in eligible})
        # Assembled from pre-encoded parts: an exact-size object (orjson's own output sits in a 4 KiB buffer), and
        # cheaper than encoding the whole dict.
        return b"".join(
            (
                _HEAD,
                decision.decision_id.encode(),
                _ARM,
                self._arm_json[decision.arm_index],
                _PROBABILITIES,
                shown,
                self._tail,
            )
        )


def decode_rewards(body: bytes, *, binary: bool) -> list[RewardItem]:
    """The rewards of a request, in order; `{decisionId, reward}` and `{rewards: [...]}` are both accepted."""
    request = parse_json_object(body)
    if body.count(b":") != _members(request):
        refuse_duplicate_keys(body)
    if "rewards" in request:
        if len(request) != 1:
            extra = sorted(k for k in request if k != "rewards")[0]
            raise UnknownField(f"a batch has only the field rewards; got {extra!r} too", field=extra)
        batch = request["rewards"]
        if type(batch) is not list:
            raise InvalidField(f"rewards must be a list, got {json_type(batch)}", field="rewards")
        if not 0 < len(batch) <= MAX_REWARDS_PER_REQUEST:
            raise InvalidField(f"rewards must hold 1 to {MAX_REWARDS_PER_REQUEST} items", field="rewards")
        items = []
        for i, entry in enumerate(batch):
            prefix = f"rewards[{i}]."
            if type(entry) is not dict:
                raise InvalidField(f"a reward is an object, got {json_type(entry)}", field=f"rewards[{i}]")
            items.append(_reward(entry, prefix, binary))
        return items
    return [_reward(request, "", binary)]


def _reward(entry: dict[str, Any], prefix: str, binary: bool) -> RewardItem:
    for key in entry:
        if key not in {"decisionId", "reward"}:
            raise UnknownField(f"unknown field {key!r}; a reward has decisionId and reward", field=prefix + key)
    decision_id = entry.get("decisionId")
    if decision_id is None:
        raise MissingField("decisionId is required", field=prefix + "decisionId")
    if type(decision_id) is not str:
        raise InvalidField(f"decisionId must be a string, got {json_type(decision_id)}", field=prefix + "decisionId")
    if not 0 < len(decision_id) <= MAX_DECISION_ID_LENGTH:
        raise InvalidField(
            f"decisionId must have 1 to {MAX_DECISION_ID_LENGTH} characters", field=prefix + "decisionId"
        )
    reward = entry.get("reward")
    if reward is None:
        raise MissingField("reward is required", field=prefix + "reward")
    return RewardItem(decision_id, check_reward(reward, binary=binary, field=prefix + "reward"), prefix)


def encode_rewards(answer: RewardsAnswer) -> bytes:
    decision_id, outcome = _RESULT["decision_id"], _RESULT["outcome"]
    accepted, duplicate = wire.RewardOutcome.ACCEPTED.value, wire.RewardOutcome.DUPLICATE.value
    return orjson.dumps(
        {
            _ANSWER["accepted"]: answer.accepted,
            _ANSWER["duplicates"]: answer.duplicates,
            _ANSWER["results"]: [
                {decision_id: o.decision_id, outcome: accepted if o.accepted else duplicate} for o in answer.outcomes
            ],
        }
    )
