"""Experiment request bodies: decoded into typed values, or refused with the offending field named."""

from __future__ import annotations

import pytest

from croupier.runtime.errors import CroupierError, DuplicateField, MalformedJson
from croupier.runtime.experiments import codec
from croupier.runtime.experiments.records import Assignment, AssignRequest, ExposureItem, OutcomeItem


def test_assign_bodies() -> None:
    assert codec.decode_assign(b'{"unitId": "u1"}') == AssignRequest("u1")
    assert codec.decode_assign(b'{"unitId": "u:1"}') == AssignRequest("u:1")  # a colon in a string: the full path
    request = codec.decode_assign(b'{"unitId": "u1", "attributes": {"tier": "gold", "age": 31}, "context": [1, 2.5]}')
    assert request == AssignRequest("u1", {"tier": "gold", "age": 31}, [1, 2.5])


def test_without_unit_id_the_unit_is_the_unit_key_attribute() -> None:
    body = b'{"attributes": {"userId": "u7", "tier": "gold"}}'
    assert codec.decode_assign(body, "userId") == AssignRequest("u7", {"userId": "u7", "tier": "gold"})
    # unitId, when given, is the unit
    both = b'{"unitId": "u1", "attributes": {"userId": "u7"}}'
    assert codec.decode_assign(both, "userId") == AssignRequest("u1", {"userId": "u7"})


@pytest.mark.parametrize(
    ("body", "field", "names"),
    [
        (b'{"attributes": {"tier": "gold"}}', "unitId", "attributes.userId"),
        (b'{"context": [1]}', "unitId", "attributes.userId"),
        (b"{}", "unitId", "attributes.userId"),
        (b'{"attributes": {"userId": 7}}', "attributes.userId", "string"),
        (b'{"attributes": {"userId": ""}}', "attributes.userId", "characters"),
        (b'{"attributes": {"userId": null}}', "attributes.userId", "required"),
        # unitId is optional but never null: null is refused as a null, even with the attribute there
        (b'{"unitId": null}', "unitId", "got null"),
        (b'{"unitId": null, "attributes": {"userId": "u7"}}', "unitId", "attributes.userId"),
    ],
)
def test_a_request_without_a_unit_is_refused_naming_both_fields(body: bytes, field: str, names: str) -> None:
    with pytest.raises(CroupierError) as raised:
        codec.decode_assign(body, "userId")
    assert raised.value.field == field and names in str(raised.value)


@pytest.mark.parametrize(
    ("body", "error", "field"),
    [
        (b"[]", MalformedJson, None),
        (b'{"unitId": ""}', CroupierError, "unitId"),
        (b'{"unitId": "a", "unitId": "b"}', DuplicateField, "unitId"),
        (b'{"unitId": "' + b"x" * 257 + b'"}', CroupierError, "unitId"),
        (b'{"unitId": "a", "attributes": {"n": 1e13}}', CroupierError, "attributes.n"),
        (b'{"unitId": "a", "context": {"level": true}}', CroupierError, "context.level"),
        (b'{"unitId": "a", "context": "x"}', CroupierError, "context"),
        (b'{"unitId": "a", "context": [' + b"1," * 1024 + b"1]}", CroupierError, "context"),
        (b'{"unitId": "a", "context": {"": 1}}', CroupierError, "context."),
        (b'{"unitId": "a", "attributes": {"": 1}}', CroupierError, "attributes."),
    ],
)
def test_bad_assign_bodies_name_the_field(body: bytes, error: type[CroupierError], field: str | None) -> None:
    with pytest.raises(error) as raised:
        codec.decode_assign(body)
    assert raised.value.field == field


def test_single_and_batched_items_carry_their_field_prefix() -> None:
    assert codec.decode_outcomes(b'{"unitId": "u", "metric": "m", "value": -2}') == [
        OutcomeItem("u", "m", -2.0, None, "")
    ]
    batch = codec.decode_outcomes(b'{"outcomes": [{"unitId": "u", "metric": "m", "value": 1, "eventId": "e"}]}')
    assert batch == [OutcomeItem("u", "m", 1.0, "e", "outcomes[0].")]
    assert codec.decode_exposures(b'{"exposures": [{"unitId": "u", "variant": "a", "epoch": "e1"}]}') == [
        ExposureItem("u", "a", "e1", "exposures[0].")
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"outcomes": [{"unitId": "u", "metric": "m", "value": 1}, {"unitId": "u", "metric": "m"}]}',
         "outcomes[1].value"),
        (b'{"outcomes": [{"unitId": "u", "metric": "m", "value": "1"}]}', "outcomes[0].value"),
        (b'{"outcomes": [], "extra": 1}', "extra"),
        (b'{"outcomes": {"unitId": "u"}}', "outcomes"),
        (b'{"outcomes": [1]}', "outcomes[0]"),
        (b'{"unitId": "u", "metric": "m", "value": 1, "eventId": ""}', "eventId"),
    ],
)  # fmt: skip
def test_bad_outcome_bodies_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(CroupierError) as raised:
        codec.decode_outcomes(body)
    assert raised.value.field == field
    assert raised.value.status == 422


def test_a_payload_answer_is_encoded_once_per_variant_and_counted_flag() -> None:
    encoder = codec.AssignmentEncoder("g1-abc", "e1")
    first = encoder.encode(Assignment("control", True, payload={"offer": "none"}))
    expected = b'{"variant":"control","experimentVersion":"g1-abc","epoch":"e1","counted":true,'
    assert first == expected + b'"payload":{"offer":"none"}}'
    assert encoder.encode(Assignment("control", True, payload={"offer": "none"})) is first
    assert encoder.encode(Assignment("control", False, payload={"offer": "none"})) != first
