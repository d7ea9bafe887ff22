"""Checks of request bodies: the hot path's replacement for pydantic, with the same precise errors.

The rules are those of `croupier.api.wire` (DecideRequest, Reward, RewardBatch); tests hold both to the same cases.
Numbers are JSON numbers only: `true`/`false` are not numbers here, and NaN and infinities are not JSON.

A decide request is decoded and type-checked in one C call by msgspec (`_DecideBody`); only a body it refuses goes
through the hand-written checks (`DecideSchema.explain`), which name the offending field. The policy's own rules
(context size, feature names, known candidates) run in Python after either.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import orjson

from croupier.api.decisionpolicy import MAX_ARMS, MAX_FEATURES
from croupier.api.wire import MAX_DECISION_ID_LENGTH, MAX_MAGNITUDE, MAX_REWARDS_PER_REQUEST, MAX_UNIT_ID_LENGTH
from croupier.runtime.core.records import RewardItem
from croupier.runtime.errors import (
    InvalidContext,
    InvalidField,
    InvalidReward,
    MalformedJson,
    MissingField,
    UnknownArm,
    UnknownField,
)

_DECIDE_FIELDS = frozenset({"unitId", "context", "candidates"})

_Number = Annotated[float, msgspec.Meta(ge=-MAX_MAGNITUDE, le=MAX_MAGNITUDE)]


class _DecideBody(msgspec.Struct, forbid_unknown_fields=True):
    """The wire shape of a decide request, for msgspec's decoder (mirrors `croupier.api.wire.DecideRequest`)."""

    unitId: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_UNIT_ID_LENGTH)] | None = None
    context: (
        Annotated[list[_Number], msgspec.Meta(max_length=MAX_FEATURES)]
        | Annotated[dict[str, _Number], msgspec.Meta(max_length=MAX_FEATURES)]
        | None
    ) = None
    candidates: Annotated[list[str], msgspec.Meta(min_length=1, max_length=MAX_ARMS)] | None = None


_decode_decide = msgspec.json.Decoder(_DecideBody).decode


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        hint = "; NaN and Infinity are not JSON numbers" if b"NaN" in body or b"Infinity" in body else ""
        raise MalformedJson(f"the body is not valid JSON: {exc}{hint}") from None
    if type(value) is not dict:
        raise MalformedJson(f"the body must be a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _is_number(value: object) -> bool:
    # bool is an int subclass; JSON true is not a number.
    return (type(value) is float or type(value) is int) and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE


def _not_a_number(value: object) -> str:
    if type(value) is float or type(value) is int:
        return f"{value} (outside +-{MAX_MAGNITUDE:g})"
    return _json_type(value)


class DecideSchema:
    """What a decide request may contain for one policy; built once, used for every request."""

    __slots__ = ("arm_index", "contextual", "feature_index", "feature_names", "size")

    def __init__(self, arm_names: list[str], *, contextual: bool, feature_names: list[str] | None, size: int) -> None:
        self.arm_index = {name: i for i, name in enumerate(arm_names)}
        self.contextual = contextual
        self.feature_names = feature_names
        self.feature_index = {name: i for i, name in enumerate(feature_names)} if feature_names else None
        self.size = size

    def parse(self, body: bytes) -> tuple[str | None, list[float] | None, list[int] | None]:
        """The unit id, the context values in feature order (contextual policies) and the eligible arm indexes
        (None: all arms)."""
        try:
            request = _decode_decide(body)
        except msgspec.DecodeError as exc:
            self.explain(body)  # raises the error that names the field
            raise MalformedJson(f"the body is not a valid decide request: {exc}") from None
        context = request.context
        if context is None:
            if self.contextual:
                raise MissingField(f"context is required: this policy needs {self._expected()}", field="context")
            features = None
        else:
            features = self._shape(context) if self.contextual else None
        candidates = request.candidates
        eligible = None if candidates is None else self._candidates(candidates)
        return request.unitId, features, eligible

    def explain(self, body: bytes) -> tuple[str | None, list[float] | None, list[int] | None]:
        """`parse` written out by hand: raises the precise error for a body the decoder refused."""
        request = parse_json_object(body)
        if len(request) > 3 or not _DECIDE_FIELDS.issuperset(request):
            unknown = sorted(set(request) - _DECIDE_FIELDS)
            raise UnknownField(
                f"unknown field {unknown[0]!r}; a decide request has unitId, context and candidates", field=unknown[0]
            )
        unit_id = request.get("unitId")
        if unit_id is not None and (type(unit_id) is not str or not 0 < len(unit_id) <= MAX_UNIT_ID_LENGTH):
            if type(unit_id) is not str:
                raise InvalidField(f"unitId must be a string, got {_json_type(unit_id)}", field="unitId")
            raise InvalidField(f"unitId must have 1 to {MAX_UNIT_ID_LENGTH} characters", field="unitId")
        context = request.get("context")
        features = None if context is None and not self.contextual else self._context(context)
        candidates = request.get("candidates")
        eligible = None if candidates is None else self._candidates(candidates)
        return unit_id, features, eligible

    def _context(self, context: object) -> list[float] | None:
        if context is None:
            raise MissingField(f"context is required: this policy needs {self._expected()}", field="context")
        if type(context) is list:
            if len(context) > MAX_FEATURES:
                raise InvalidContext(f"context has more than {MAX_FEATURES} values", field="context")
            for i, value in enumerate(context):
                if not _is_number(value):
                    raise InvalidContext(f"context values must be numbers, got {_not_a_number(value)}", f"context[{i}]")
        elif type(context) is dict:
            if len(context) > MAX_FEATURES:
                raise InvalidContext(f"context has more than {MAX_FEATURES} features", field="context")
            for name, value in context.items():
                if not _is_number(value):
                    raise InvalidContext(
                        f"context values must be numbers, got {_not_a_number(value)}", field=f"context.{name}"
                    )
        else:
            raise InvalidContext(
                f"context must be an object of feature values or a list of numbers, got {_json_type(context)}",
                "context",
            )
        return self._shape(context) if self.contextual else None

    def _shape(self, context: list[float] | dict[str, float]) -> list[float]:
        """The values of a context of valid numbers in the policy's feature order; checks its size and names."""
        if type(context) is list:
            if len(context) != self.size:
                raise InvalidContext(
                    f"context has {len(context)} values, this policy needs {self._expected()}", field="context"
                )
            return context
        assert type(context) is dict
        names = self.feature_names
        if names is None:
            raise InvalidContext(
                f"this policy has no feature names: send context as a list of {self.size} numbers", "context"
            )
        if len(context) == self.size and all(map(str.__eq__, context, names)):
            return list(context.values())  # the features in the policy's order: the common case, no reordering
        index = self.feature_index
        assert index is not None
        ordered = [0.0] * self.size
        for name, value in context.items():
            position = index.get(name)
            if position is None:
                raise InvalidContext(f"unknown feature {name!r}; expected {self._expected()}", f"context.{name}")
            ordered[position] = value
        if len(context) != self.size:
            missing = [n for n in index if n not in context]
            raise InvalidContext(f"missing feature {missing[0]!r}", field=f"context.{missing[0]}")
        return ordered

    def _expected(self) -> str:
        if self.feature_names:
            return f"features {self.feature_names}"
        return f"{self.size} numbers"

    def _candidates(self, candidates: object) -> list[int]:
        if type(candidates) is not list:
            raise InvalidField(f"candidates must be a list of arm names, got {_json_type(candidates)}", "candidates")
        if not 0 < len(candidates) <= MAX_ARMS:
            raise InvalidField(f"candidates must list 1 to {MAX_ARMS} arms", field="candidates")
        eligible: list[int] = []
        arm_index = self.arm_index
        for i, name in enumerate(candidates):
            position = arm_index.get(name) if type(name) is str else None
            if position is None:
                if type(name) is not str:
                    raise InvalidField(f"arm names are strings, got {_json_type(name)}", field=f"candidates[{i}]")
                raise UnknownArm(f"unknown arm {name!r}; arms are {list(arm_index)}", field=f"candidates[{i}]")
            eligible.append(position)
        if len(set(eligible)) != len(eligible):
            seen: set[int] = set()
            for i, position in enumerate(eligible):
                if position in seen:
                    raise InvalidField(f"arm {candidates[i]!r} is listed twice", field=f"candidates[{i}]")
                seen.add(position)
        return eligible


def parse_rewards(body: bytes, *, binary: bool) -> list[RewardItem]:
    """The rewards of a request, in order; `{decisionId, reward}` and `{rewards: [...]}` are both accepted."""
    request = parse_json_object(body)
    if "rewards" in request:
        if len(request) != 1:
            extra = sorted(k for k in request if k != "rewards")[0]
            raise UnknownField(f"a batch has only the field rewards; got {extra!r} too", field=extra)
        batch = request["rewards"]
        if type(batch) is not list:
            raise InvalidField(f"rewards must be a list, got {_json_type(batch)}", field="rewards")
        if not 0 < len(batch) <= MAX_REWARDS_PER_REQUEST:
            raise InvalidField(f"rewards must hold 1 to {MAX_REWARDS_PER_REQUEST} items", field="rewards")
        items = []
        for i, entry in enumerate(batch):
            prefix = f"rewards[{i}]."
            if type(entry) is not dict:
                raise InvalidField(f"a reward is an object, got {_json_type(entry)}", field=f"rewards[{i}]")
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
        raise InvalidField(f"decisionId must be a string, got {_json_type(decision_id)}", field=prefix + "decisionId")
    if not 0 < len(decision_id) <= MAX_DECISION_ID_LENGTH:
        raise InvalidField(
            f"decisionId must have 1 to {MAX_DECISION_ID_LENGTH} characters", field=prefix + "decisionId"
        )
    reward = entry.get("reward")
    if reward is None:
        raise MissingField("reward is required", field=prefix + "reward")
    if not _is_number(reward):
        raise InvalidReward(f"reward must be a number, got {_not_a_number(reward)}", field=prefix + "reward")
    value = float(reward)
    if binary and value not in {0.0, 1.0}:
        raise InvalidReward(f"this policy takes Binary rewards (0 or 1), got {reward}", field=prefix + "reward")
    return RewardItem(decision_id, value, prefix)
