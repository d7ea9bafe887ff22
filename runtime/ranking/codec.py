"""JSON bodies of `POST /v1/rank`: decode into `RankRequest`, encode a `Slate`.

The body is decoded and type-checked in one msgspec call; a body it refuses is explained by hand, naming the field:
unitId, context and candidates by the decide codec's own checks, then `k`. Field names come from `croupier.api.wire`.
"""

from __future__ import annotations

from typing import Any

import msgspec
import orjson

from croupier.api import wire
from croupier.api.decisionpolicy import MAX_ARMS
from croupier.runtime.decisions.validation import json_type
from croupier.runtime.errors import InvalidField, MalformedJson, MissingField, UnknownField
from croupier.runtime.http.codec import DecideCodec, parse_json_object, refuse_duplicate_keys
from croupier.runtime.ranking.service import RankRequest, Slate, slate_size

_decode_rank = msgspec.json.Decoder(RankRequest).decode


def _names(model: type[Any]) -> dict[str, str]:
    return {name: field.alias or name for name, field in model.model_fields.items()}


_FIELDS = _names(wire.RankRequest)
_K = _FIELDS["k"]
_ALLOWED = frozenset(_FIELDS.values())
_ANSWER = _names(wire.RankResponse)
_POSITION = _names(wire.SlatePosition)


class RankCodec:
    """Rank bodies of one policy."""

    __slots__ = ("_decide", "_names", "_version")

    def __init__(self, decide: DecideCodec, arm_names: list[str], policy_version: str) -> None:
        self._decide = decide
        self._names = arm_names
        self._version = policy_version

    def decode(self, body: bytes) -> RankRequest:
        try:
            request = _decode_rank(body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            self.explain(body)
            raise MalformedJson(f"the body is not a valid rank request: {exc}") from None
        colons = body.count(b":")
        context = request.context
        members = 1 + (request.unit_id is not None) + (context is not None) + (request.candidates is not None)
        if colons != (members + len(context) if type(context) is dict else members):
            refuse_duplicate_keys(body)
        return request

    def explain(self, body: bytes) -> None:
        """Raise the error that names the first offending field of a body the decoder refused (field order: unitId,
        context, candidates, k); return for a body without one."""
        request = parse_json_object(body)
        unknown = sorted(set(request) - _ALLOWED)
        if unknown:
            raise UnknownField(
                f"unknown field {unknown[0]!r}; a rank request has unitId, context, candidates and k", field=unknown[0]
            )
        _, _, eligible = self._decide.explain(orjson.dumps({key: value for key, value in request.items() if key != _K}))
        if _K not in request:
            raise MissingField("k is required: the number of arms to rank", field=_K)
        k = request[_K]
        if type(k) is not int and type(k) is not float:
            raise InvalidField(f"k must be an integer, got {json_type(k)}", field=_K)
        k = slate_size(k)
        most = len(self._names) if eligible is None else len(eligible)
        if not 1 <= k <= min(most, MAX_ARMS):
            raise InvalidField(f"k must be between 1 and the number of eligible arms ({most}), got {k}", field=_K)

    def encode(self, slate: Slate) -> bytes:
        names = self._names
        positions = []
        for position, decision in enumerate(slate.positions, start=1):
            vector = decision.probabilities
            drawn_from = range(len(names)) if decision.eligible is None else decision.eligible
            positions.append(
                {
                    _POSITION["position"]: position,
                    _POSITION["arm"]: decision.arm,
                    _POSITION["decision_id"]: decision.decision_id,
                    _POSITION["propensity"]: vector[decision.arm_index],
                    _POSITION["probabilities"]: {names[i]: vector[i] for i in drawn_from},
                }
            )
        return orjson.dumps(
            {
                _ANSWER["slate_id"]: slate.slate_id,
                _ANSWER["policy_version"]: self._version,
                _ANSWER["slate"]: positions,
            }
        )
