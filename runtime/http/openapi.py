"""The OpenAPI 3.1 document the runtime serves at /openapi.json, built from the wire models in `croupier.api.wire`.

The request schemas are narrowed to the served policy (its arm names, its context features, Binary rewards), so a
client generator or a fuzzer sees exactly what this runtime accepts.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from croupier.api import wire
from croupier.api.decisionpolicy import RewardType
from croupier.runtime.policy_file import ServedPolicy

_REF = "#/components/schemas/{model}"
_RESPONSES: list[type[BaseModel]] = [
    wire.DecideResponse,
    wire.RankResponse,
    wire.RewardResponse,
    wire.StatsResponse,
    wire.ErrorResponse,
    wire.HealthResponse,
]


def _schemas(served: ServedPolicy) -> dict[str, Any]:
    _, request_defs = models_json_schema(
        [
            (wire.DecideRequest, "validation"),
            (wire.RankRequest, "validation"),
            (wire.Reward, "validation"),
            (wire.RewardBatch, "validation"),
        ],
        by_alias=True,
        ref_template=_REF,
    )
    _, response_defs = models_json_schema([(m, "serialization") for m in _RESPONSES], by_alias=True, ref_template=_REF)
    schemas: dict[str, Any] = {**request_defs.get("$defs", {}), **response_defs.get("$defs", {})}
    reward_request = TypeAdapter(wire.RewardRequest).json_schema(by_alias=True, ref_template=_REF)
    reward_request.pop("$defs", None)
    schemas["RewardRequest"] = {**reward_request, "title": "RewardRequest"}

    decide = copy.deepcopy(schemas["DecideRequest"])
    names = served.spec.arm_names
    decide["properties"]["candidates"] = {
        "description": decide["properties"]["candidates"].get("description", ""),
        "anyOf": [
            {
                "type": "array",
                "items": {"type": "string", "enum": names},
                "minItems": 1,
                "maxItems": len(names),
                "uniqueItems": True,
            },
            {"type": "null"},  # as in the wire model: null means all arms
        ],
    }
    context = decide["properties"]["context"]
    number = {"type": "number", "minimum": -wire.MAX_MAGNITUDE, "maximum": wire.MAX_MAGNITUDE}
    if served.contextual:
        size = served.context_size
        as_list = {"type": "array", "items": number, "minItems": size, "maxItems": size}
        options: list[dict[str, Any]] = [as_list]
        if served.feature_names:
            features = served.feature_names
            options.insert(
                0,
                {
                    "type": "object",
                    "properties": dict.fromkeys(features, number),
                    "required": features,
                    "additionalProperties": False,
                },
            )
        decide["properties"]["context"] = {"description": context.get("description", ""), "anyOf": options}
        decide["required"] = ["context"]
    schemas["DecideRequest"] = decide
    # A rank request is a decide request plus k: at most the number of arms, and with candidates at most their count
    # (one if/then per slate size above 1).
    rank = copy.deepcopy(schemas["RankRequest"])
    rank["properties"] = {**rank["properties"], **{key: decide["properties"][key] for key in ("candidates", "context")}}
    rank["properties"]["k"] = {**rank["properties"]["k"], "maximum": len(names)}
    rank["required"] = sorted({*rank.get("required", []), *decide.get("required", [])})
    rank["allOf"] = [
        {
            "if": {"properties": {"k": {"minimum": size}}, "required": ["k"]},
            "then": {"properties": {"candidates": {"anyOf": [{"type": "array", "minItems": size}, {"type": "null"}]}}},
        }
        for size in range(2, len(names) + 1)
    ]
    schemas["RankRequest"] = rank
    if served.spec.reward.type == RewardType.BINARY:
        reward = copy.deepcopy(schemas["Reward"])
        reward["properties"]["reward"] = {**reward["properties"]["reward"], "enum": [0, 1]}
        reward["properties"]["reward"].pop("type", None)
        schemas["Reward"] = reward
    return schemas


def json_content(schema_name: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": _REF.format(model=schema_name)}}}


def error_responses(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "Malformed JSON.",
        404: "No such decision (rewards) or route.",
        409: "The decision's attribution window closed.",
        413: "The body is too large.",
        422: "The body breaks the contract; `field` names the offender.",
        502: "A variant's target (a DecisionPolicy's runtime) did not answer.",
        503: "The runtime cannot serve now; retry.",
    }
    return {str(s): {"description": reasons[s], "content": json_content("ErrorResponse")} for s in statuses}


def common_paths() -> dict[str, Any]:
    """Health, readiness and metrics: every runtime serves them."""
    return {
        wire.HEALTH_PATH: {
            "get": {
                "operationId": "health",
                "summary": "Liveness.",
                "responses": {
                    "200": {"description": "Alive.", "content": json_content("HealthResponse")},
                    "503": {"description": "Needs a restart.", "content": json_content("HealthResponse")},
                },
            }
        },
        wire.READY_PATH: {
            "get": {
                "operationId": "ready",
                "summary": "Readiness: state restored and the store writable.",
                "responses": {
                    "200": {"description": "Ready.", "content": json_content("HealthResponse")},
                    "503": {"description": "Not ready.", "content": json_content("HealthResponse")},
                },
            }
        },
        wire.METRICS_PATH: {
            "get": {
                "operationId": "metrics",
                "summary": "Prometheus metrics.",
                "responses": {
                    "200": {"description": "Metrics.", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
    }


def openapi_document(served: ServedPolicy) -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Croupier decision API: {served.name}",
            "version": served.version,
            "description": "Decisions and rewards of one DecisionPolicy, served by a Croupier runtime.",
        },
        "paths": {
            wire.DECIDE_PATH: {
                "post": {
                    "operationId": "decide",
                    "summary": "Choose an arm; the decision is logged with its full probability vector.",
                    "requestBody": {"required": True, "content": json_content("DecideRequest")},
                    "responses": {
                        "200": {"description": "The decision.", "content": json_content("DecideResponse")},
                        **error_responses(400, 413, 422, 503),
                    },
                }
            },
            wire.RANK_PATH: {
                "post": {
                    "operationId": "rank",
                    "summary": "Rank k arms; each position is logged as a decision with its conditional vector.",
                    "requestBody": {"required": True, "content": json_content("RankRequest")},
                    "responses": {
                        "200": {"description": "The slate, top first.", "content": json_content("RankResponse")},
                        **error_responses(400, 413, 422, 503),
                    },
                }
            },
            wire.REWARDS_PATH: {
                "post": {
                    "operationId": "reward",
                    "summary": "Report rewards; acknowledged once durable. Repeated decisionIds are ignored.",
                    "requestBody": {"required": True, "content": json_content("RewardRequest")},
                    "responses": {
                        "200": {"description": "Stored and learned.", "content": json_content("RewardResponse")},
                        **error_responses(400, 404, 409, 413, 422, 503),
                    },
                }
            },
            wire.STATS_PATH: {
                "get": {
                    "operationId": "stats",
                    "summary": "Per-arm statistics, totals and the served generation.",
                    "responses": {"200": {"description": "Statistics.", "content": json_content("StatsResponse")}},
                }
            },
            **common_paths(),
        },
        "components": {"schemas": _schemas(served)},
    }
