"""Rank bodies: decoded in one call, refused with the offending field named, slates encoded to the wire contract."""

from __future__ import annotations

import orjson
import pytest
from support.policies import served_policy

from croupier.api import wire
from croupier.runtime.decisions.records import Decision
from croupier.runtime.decisions.validation import DecideSchema
from croupier.runtime.errors import CroupierError
from croupier.runtime.http.codec import DecideCodec
from croupier.runtime.ranking.codec import RankCodec
from croupier.runtime.ranking.service import RankRequest, Slate

ARMS = ["blue", "green", "red"]


def _codec(**spec: object) -> RankCodec:
    served = served_policy(**spec)
    schema = DecideSchema(
        served.spec.arm_names,
        contextual=served.contextual,
        feature_names=served.feature_names,
        size=served.context_size,
    )
    return RankCodec(DecideCodec(schema, served.spec.arm_names, "g1-abc"), served.spec.arm_names, "g1-abc")


def test_a_valid_body_decodes_with_every_field() -> None:
    request = _codec().decode(b'{"unitId": "p1", "context": {"x": 1}, "candidates": ["red", "blue"], "k": 2}')
    assert request == RankRequest(unit_id="p1", context={"x": 1.0}, candidates=["red", "blue"], k=2)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"{}", "MissingField", "k"),
        (b'{"k": 0}', "InvalidField", "k"),
        (b'{"k": 4}', None, None),  # within MAX_ARMS: the service compares it with the eligible arms
        (b'{"k": 300}', "InvalidField", "k"),
        (b'{"k": 0.5}', "InvalidField", "k"),
        (b'{"k": 4.0}', None, None),  # a whole number, as JSON Schema's integer
        (b'{"k": true}', "InvalidField", "k"),
        (b'{"k": "2"}', "InvalidField", "k"),
        (b'{"k": 2, "candidates": ["red"], "x": 1}', "UnknownField", "x"),
        (b'{"k": 2, "unitId": 5}', "InvalidField", "unitId"),
        (b'{"k": 1, "k": 2}', "DuplicateField", "k"),
        (b"[1]", "MalformedJson", None),
        (b'{"k": 2', "MalformedJson", None),
    ],
)
def test_bad_bodies_name_the_field(body: bytes, code: str | None, field: str | None) -> None:
    if code is None:
        assert _codec().decode(body).k == 4
        return
    with pytest.raises(CroupierError) as caught:
        _codec().decode(body)
    assert (caught.value.code, caught.value.field) == (code, field)


def test_k_above_the_candidates_names_their_count() -> None:
    with pytest.raises(CroupierError, match=r"eligible arms \(2\), got 300") as caught:
        _codec().decode(b'{"k": 300, "candidates": ["red", "blue"]}')
    assert caught.value.field == "k"


def test_a_slate_encodes_to_the_wire_contract() -> None:
    top = Decision("d1", 1.0, "red", 2, (0.2, 0.3, 0.5), None, None, "p1", "g1-abc", 2.0, "s1", 1)
    second = Decision("d2", 1.0, "blue", 0, (0.4, 0.6, 0.0), [0, 1], None, "p1", "g1-abc", 2.0, "s1", 2)
    body = orjson.loads(_codec().encode(Slate("s1", [top, second])))
    answer = wire.RankResponse.model_validate(body)
    assert answer.slate_id == "s1"
    assert answer.policy_version == "g1-abc"
    assert [(p.position, p.arm, p.decision_id, p.propensity) for p in answer.slate] == [
        (1, "red", "d1", 0.5),
        (2, "blue", "d2", 0.4),
    ]
    assert answer.slate[0].probabilities == dict(zip(ARMS, (0.2, 0.3, 0.5), strict=True))
    assert answer.slate[1].probabilities == {"blue": 0.4, "green": 0.6}  # the arms it was drawn from only
