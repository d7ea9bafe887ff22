"""The request checks (the JSON codec's and the policy's own): precise errors, same rules as the wire models."""

from __future__ import annotations

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from croupier.api import wire
from croupier.runtime.decisions.validation import DecideSchema
from croupier.runtime.errors import (
    CroupierError,
    InvalidContext,
    InvalidField,
    InvalidReward,
    MalformedJson,
    MissingField,
    UnknownArm,
    UnknownField,
)
from croupier.runtime.http.codec import DecideCodec
from croupier.runtime.http.codec import decode_rewards as parse_rewards

pytestmark = pytest.mark.unit

ARMS = ["blue", "green", "red"]
PLAIN = DecideSchema(ARMS, contextual=False, feature_names=None, size=0)
NAMED = DecideSchema(ARMS, contextual=True, feature_names=["level", "spend"], size=2)
UNNAMED = DecideSchema(ARMS, contextual=True, feature_names=None, size=3)


def _codec(schema: DecideSchema) -> DecideCodec:
    return DecideCodec(schema, ARMS, "g1-test")


def parse(schema: DecideSchema, body: bytes) -> tuple[str | None, list[float] | None, list[int] | None]:
    """What the decide route hands the policy: the JSON decoder's request, then the policy's own checks."""
    request = _codec(schema).decode(body)
    features, eligible = schema.check(request)
    return request.unit_id, features, eligible


def explain(schema: DecideSchema, body: bytes) -> tuple[str | None, list[float] | None, list[int] | None]:
    return _codec(schema).explain(body)


def test_empty_request_decides_over_all_arms() -> None:
    assert parse(PLAIN, b"{}") == (None, None, None)


def test_candidates_become_arm_indexes() -> None:
    assert parse(PLAIN, b'{"unitId": "u1", "candidates": ["red", "blue"]}') == ("u1", None, [2, 0])


def test_named_context_is_put_in_feature_order() -> None:
    _, vector, _ = parse(NAMED, b'{"context": {"spend": 2.5, "level": 3}}')
    assert vector is not None
    np.testing.assert_array_equal(vector, [3.0, 2.5])
    _, vector, _ = parse(NAMED, b'{"context": [1, 2]}')
    assert vector is not None
    np.testing.assert_array_equal(vector, [1.0, 2.0])


def test_non_contextual_policy_accepts_and_ignores_a_context() -> None:
    assert parse(PLAIN, b'{"context": {"level": 1}}') == (None, None, None)


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (b"{", MalformedJson, None),
        (b"[1, 2]", MalformedJson, None),
        (b'{"reward": NaN}', MalformedJson, None),
        (b'{"unitId": 5}', InvalidField, "unitId"),
        (b'{"unitId": ""}', InvalidField, "unitId"),
        (b'{"arm": "blue"}', UnknownField, "arm"),
        (b'{"candidates": "blue"}', InvalidField, "candidates"),
        (b'{"candidates": []}', InvalidField, "candidates"),
        (b'{"candidates": ["blue", "pink"]}', UnknownArm, "candidates[1]"),
        (b'{"candidates": ["blue", 3]}', InvalidField, "candidates[1]"),
        (b'{"candidates": ["blue", "blue"]}', InvalidField, "candidates[1]"),
        (b'{"context": "x"}', InvalidContext, "context"),
        (b'{"context": [true]}', InvalidContext, "context[0]"),
        (b'{"context": {"a": "1"}}', InvalidContext, "context.a"),
    ],
)
def test_bad_decide_requests_name_the_field(body: bytes, error: type[CroupierError], field: str | None) -> None:
    with pytest.raises(error) as caught:
        parse(PLAIN, body)
    assert caught.value.field == field
    assert 400 <= caught.value.status < 500


@pytest.mark.parametrize(
    ("schema", "body", "error", "field"),
    [
        (NAMED, b"{}", MissingField, "context"),
        (NAMED, b'{"context": [1]}', InvalidContext, "context"),
        (NAMED, b'{"context": [1, 2, 3]}', InvalidContext, "context"),
        (NAMED, b'{"context": {"level": 1}}', InvalidContext, "context.spend"),
        (NAMED, b'{"context": {"level": 1, "spend": 2, "age": 3}}', InvalidContext, "context.age"),
        (UNNAMED, b'{"context": {"level": 1}}', InvalidContext, "context"),
        (UNNAMED, b'{"context": [1, 2]}', InvalidContext, "context"),
    ],
)
def test_contexts_of_the_wrong_shape_are_rejected(
    schema: DecideSchema, body: bytes, error: type[CroupierError], field: str
) -> None:
    with pytest.raises(error) as caught:
        parse(schema, body)
    assert caught.value.field == field


def test_single_and_batch_rewards() -> None:
    [item] = parse_rewards(b'{"decisionId": "d1", "reward": 1}', binary=True)
    assert (item.decision_id, item.reward, item.field) == ("d1", 1.0, "")
    items = parse_rewards(
        b'{"rewards": [{"decisionId": "a", "reward": 0.5}, {"decisionId": "b", "reward": -2}]}', binary=False
    )
    assert [(i.decision_id, i.reward, i.field) for i in items] == [
        ("a", 0.5, "rewards[0]."),
        ("b", -2.0, "rewards[1]."),
    ]


@pytest.mark.parametrize(
    ("body", "binary", "error", "field"),
    [
        (b'{"decisionId": "d"}', False, MissingField, "reward"),
        (b'{"reward": 1}', False, MissingField, "decisionId"),
        (b'{"decisionId": "d", "reward": "1"}', False, InvalidReward, "reward"),
        (b'{"decisionId": "d", "reward": true}', False, InvalidReward, "reward"),
        (b'{"decisionId": "d", "reward": 0.5}', True, InvalidReward, "reward"),
        (b'{"decisionId": 7, "reward": 1}', False, InvalidField, "decisionId"),
        (b'{"decisionId": "d", "reward": 1, "extra": 1}', False, UnknownField, "extra"),
        (b'{"rewards": []}', False, InvalidField, "rewards"),
        (b'{"rewards": {}}', False, InvalidField, "rewards"),
        (b'{"rewards": [{"decisionId": "d", "reward": 1}, 5]}', False, InvalidField, "rewards[1]"),
        (
            b'{"rewards": [{"decisionId": "d", "reward": 1}, {"decisionId": "e", "reward": null}]}',
            False,
            MissingField,
            "rewards[1].reward",
        ),
        (b'{"rewards": [], "decisionId": "d"}', False, UnknownField, "decisionId"),
        (b'{"decisionId": "d", "reward": 1e999}', False, MalformedJson, None),
    ],
)
def test_bad_rewards_name_the_field(body: bytes, binary: bool, error: type[CroupierError], field: str | None) -> None:
    with pytest.raises(error) as caught:
        parse_rewards(body, binary=binary)
    assert caught.value.field == field


REQUESTS = [
    {},
    {"unitId": "u"},
    {"unitId": None, "candidates": ["blue"]},
    {"candidates": []},
    {"unitId": ""},
    {"unitId": 3},
    {"context": [1, 2.5]},
    {"context": {"a": 1}},
    {"context": [True]},
    {"context": "x"},
    {"other": 1},
]


@pytest.mark.parametrize("request_body", REQUESTS)
def test_hand_checks_agree_with_the_wire_model(request_body: dict[str, object]) -> None:
    """Shape rules (types, lengths, unknown fields) are the DecideRequest model's; arm names are extra checks."""
    try:
        wire.DecideRequest.model_validate(request_body, strict=True)
        model_ok = True
    except ValidationError:
        model_ok = False
    try:
        parse(PLAIN, orjson.dumps(request_body))
        hand_ok = True
    except CroupierError:
        hand_ok = False
    assert hand_ok == model_ok


@pytest.mark.parametrize(
    "body",
    [
        {"decisionId": "d", "reward": 1},
        {"rewards": [{"decisionId": "d", "reward": 0}]},
        {"decisionId": "d", "reward": "1"},
        {"decisionId": "", "reward": 1},
        {"rewards": []},
        {"decisionId": "d"},
        {"decisionId": "d", "reward": 1, "x": 2},
    ],
)
def test_reward_checks_agree_with_the_wire_model(body: dict[str, object]) -> None:
    try:
        TypeAdapter(wire.RewardRequest).validate_python(body, strict=True)
        model_ok = True
    except ValidationError:
        model_ok = False
    try:
        parse_rewards(orjson.dumps(body), binary=False)
        hand_ok = True
    except CroupierError:
        hand_ok = False
    assert hand_ok == model_ok


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e12, -1e12, 1e12 + 1e-3, 0, 1])
    | st.text(max_size=4)
    | st.sampled_from([*ARMS, "level", "spend", "pink"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["level", "spend", "x"]), inner),
    max_leaves=8,
)
_CONTEXTS = (
    _JSON_VALUES
    | st.lists(st.floats(-2e12, 2e12) | st.integers(-5, 5), max_size=4)
    | st.lists(st.sampled_from([1e12, 1e12 + 1e-3, -1e12 - 1e-3, 2e12, 0.5, 3, True, "1", None]), max_size=3)
    | st.dictionaries(st.sampled_from(["level", "spend", "age"]), st.floats(-2e12, 2e12) | st.booleans())
)
_DECIDE_BODIES = st.fixed_dictionaries(
    {},
    optional={
        "unitId": _JSON_VALUES | st.text(min_size=250, max_size=260),
        "context": _CONTEXTS,
        "candidates": _JSON_VALUES | st.lists(st.sampled_from([*ARMS, "pink"]), max_size=4),
        "other": _JSON_VALUES,
    },
)


@given(body=_DECIDE_BODIES, schema=st.sampled_from([PLAIN, NAMED, UNNAMED]))
@settings(max_examples=500, deadline=None)
def test_the_decoder_and_the_hand_checks_agree(body: dict[str, object], schema: DecideSchema) -> None:
    """The fast path (msgspec) accepts exactly what the hand-written checks accept, with the same result; what it
    refuses gets the hand-written error."""
    raw = orjson.dumps(body)
    try:
        expected: object = explain(schema, raw)
    except CroupierError as exc:
        expected = (type(exc), exc.field)
    try:
        got: object = parse(schema, raw)
    except CroupierError as exc:
        got = (type(exc), exc.field)
    assert got == expected
