"""The policy's own rules for a request: context size and feature names, known and unique candidates, reward type.

The wire rules (types, lengths, bounds) are those of `croupier.api.wire`, checked by the adapter's decoder
(`croupier.runtime.http.codec` for JSON); these run after it, on typed values, whatever the transport. `context`
and `candidates` also check the types of an untyped value, so the decoder can name the field of a body it refused in
the same order as these rules. Numbers are JSON numbers only: `true`/`false` are not numbers here, and NaN and
infinities are not JSON.
"""

from __future__ import annotations

from croupier.api.decisionpolicy import MAX_ARMS, MAX_FEATURES
from croupier.api.wire import MAX_MAGNITUDE
from croupier.runtime.decisions.records import DecideRequest, RewardItem
from croupier.runtime.errors import InvalidContext, InvalidField, InvalidReward, MissingField, UnknownArm


def json_type(value: object) -> str:
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


def is_number(value: object) -> bool:
    # bool is an int subclass; JSON true is not a number.
    return (type(value) is float or type(value) is int) and -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE


def not_a_number(value: object) -> str:
    if type(value) is float or type(value) is int:
        return f"{value} (outside +-{MAX_MAGNITUDE:g})"
    return json_type(value)


class DecideSchema:
    """What a decide request may contain for one policy; built once, used for every request."""

    __slots__ = ("arm_index", "contextual", "feature_index", "feature_names", "size")

    def __init__(self, arm_names: list[str], *, contextual: bool, feature_names: list[str] | None, size: int) -> None:
        self.arm_index = {name: i for i, name in enumerate(arm_names)}
        self.contextual = contextual
        self.feature_names = feature_names
        self.feature_index = {name: i for i, name in enumerate(feature_names)} if feature_names else None
        self.size = size

    def check(self, request: DecideRequest) -> tuple[list[float] | None, list[int] | None]:
        """The context values in feature order (contextual policies) and the eligible arm indexes (None: all arms) of
        a request whose fields have their wire types (the JSON decoder checked them)."""
        context = request.context
        if context is None:
            if self.contextual:
                raise MissingField(f"context is required: this policy needs {self._expected()}", field="context")
            features = None
        else:
            features = self.shape(context) if self.contextual else None
        candidates = request.candidates
        return features, None if candidates is None else self.candidates(candidates)

    def context(self, context: object) -> list[float] | None:
        if context is None:
            raise MissingField(f"context is required: this policy needs {self._expected()}", field="context")
        if type(context) is list:
            if len(context) > MAX_FEATURES:
                raise InvalidContext(f"context has more than {MAX_FEATURES} values", field="context")
            for i, value in enumerate(context):
                if not is_number(value):
                    raise InvalidContext(f"context values must be numbers, got {not_a_number(value)}", f"context[{i}]")
        elif type(context) is dict:
            if len(context) > MAX_FEATURES:
                raise InvalidContext(f"context has more than {MAX_FEATURES} features", field="context")
            for name, value in context.items():
                if not is_number(value):
                    raise InvalidContext(
                        f"context values must be numbers, got {not_a_number(value)}", field=f"context.{name}"
                    )
        else:
            raise InvalidContext(
                f"context must be an object of feature values or a list of numbers, got {json_type(context)}",
                "context",
            )
        return self.shape(context) if self.contextual else None

    def shape(self, context: list[float] | dict[str, float]) -> list[float]:
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

    def candidates(self, candidates: object) -> list[int]:
        if type(candidates) is not list:
            raise InvalidField(f"candidates must be a list of arm names, got {json_type(candidates)}", "candidates")
        if not 0 < len(candidates) <= MAX_ARMS:
            raise InvalidField(f"candidates must list 1 to {MAX_ARMS} arms", field="candidates")
        eligible: list[int] = []
        arm_index = self.arm_index
        for i, name in enumerate(candidates):
            position = arm_index.get(name) if type(name) is str else None
            if position is None:
                if type(name) is not str:
                    raise InvalidField(f"arm names are strings, got {json_type(name)}", field=f"candidates[{i}]")
                raise UnknownArm(f"unknown arm {name!r}; arms are {list(arm_index)}", field=f"candidates[{i}]")
            eligible.append(position)
        if len(set(eligible)) != len(eligible):
            seen: set[int] = set()
            for i, position in enumerate(eligible):
                if position in seen:
                    raise InvalidField(f"arm {candidates[i]!r} is listed twice", field=f"candidates[{i}]")
                seen.add(position)
        return eligible


def check_reward(value: object, *, binary: bool, field: str) -> float:
    """A reward value: a bounded number, 0 or 1 for Binary rewards."""
    if not is_number(value):
        raise InvalidReward(f"reward must be a number, got {not_a_number(value)}", field=field)
    assert type(value) is float or type(value) is int
    reward = float(value)
    if binary and reward not in {0.0, 1.0}:
        raise InvalidReward(f"this policy takes Binary rewards (0 or 1), got {value}", field=field)
    return reward


def check_rewards(items: list[RewardItem], *, binary: bool) -> None:
    for item in items:
        check_reward(item.reward, binary=binary, field=item.field + "reward")
