"""The experiment service's HTTP routes and the OpenAPI document of a runtime that serves an Experiment."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import orjson
from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from croupier.api import wire
from croupier.api.decisionpolicy import AuthScope
from croupier.api.experiment import MetricType
from croupier.runtime.experiments.codec import (
    AssignmentEncoder,
    decode_assign,
    decode_exposures,
    decode_outcomes,
    encode_exposures,
    encode_outcomes,
)
from croupier.runtime.experiments.config import ServedExperiment
from croupier.runtime.experiments.records import AssignRequest
from croupier.runtime.experiments.service import ExperimentService
from croupier.runtime.http.openapi import common_paths, error_responses, json_content
from croupier.runtime.http.routes import JSON, Routes
from croupier.runtime.http.server import DirectSink


def experiment_routes(service: ExperimentService) -> Routes:
    """Assign, exposures, outcomes and stats of one experiment."""
    assign_now, assign = service.assign_now, service.assign
    encode = AssignmentEncoder(service.served.version, service.epoch).encode
    unit_key = service.served.spec.assignment.unit_key

    async def assign_json(body: bytes) -> bytes:
        request = decode_assign(body, unit_key)
        answer = assign_now(request)
        return encode(answer if answer is not None else await assign(request))

    async def exposures_json(body: bytes) -> bytes:
        return encode_exposures(await service.expose(decode_exposures(body)))

    async def outcomes_json(body: bytes) -> bytes:
        return encode_outcomes(await service.outcomes(decode_outcomes(body)))

    return Routes(
        post={
            wire.ASSIGN_PATH: assign_json,
            wire.EXPOSURES_PATH: exposures_json,
            wire.OUTCOMES_PATH: outcomes_json,
        },
        get={wire.STATS_PATH: lambda: (200, orjson.dumps(service.stats()), JSON)},
        scopes={
            wire.ASSIGN_PATH: AuthScope.DECIDE,
            wire.EXPOSURES_PATH: AuthScope.REWARDS,
            wire.OUTCOMES_PATH: AuthScope.REWARDS,
            wire.STATS_PATH: AuthScope.ADMIN,
        },
        hot=wire.ASSIGN_PATH,
    )


class DirectAssign:
    """`POST /v1/assign` as the runtime's connections answer it (`server.DirectRoute`, `server.DirectCycle`): the
    same decode, `ExperimentService.assign_now`/`assign` and encode as the app's route, so the same answers, errors and
    effects (an exposure queued for the writer, committed within the flush interval, exactly as on the app's route).

    The bodies of one loop turn are assigned back to back in one callback, as decide's batch. A request that
    `assign_now` cannot answer without waiting (a DecisionPolicy target, whose runtime is asked over the network, or
    units held in Redis) gets a task of its own, held by its connection, and is answered when the task ends."""

    __slots__ = ("_assign", "_assign_now", "_encode", "_pending", "_unit_key")

    def __init__(self, service: ExperimentService) -> None:
        self._assign_now, self._assign = service.assign_now, service.assign
        self._encode = AssignmentEncoder(service.served.version, service.epoch).encode
        self._pending: list[tuple[bytes, DirectSink]] = []
        self._unit_key = service.served.spec.assignment.unit_key

    def enqueue(self, body: bytes, sink: DirectSink, loop: asyncio.AbstractEventLoop, /) -> None:
        if not self._pending:
            loop.call_soon(self._run, loop)
        self._pending.append((body, sink))

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        batch, self._pending = self._pending, []
        assign_now, encode, unit_key = self._assign_now, self._encode, self._unit_key
        for body, sink in batch:
            if sink.cancelled():
                continue
            try:
                request = decode_assign(body, unit_key)
                answer = assign_now(request)
                if answer is None:
                    sink.hold(loop.create_task(self._wait(request, sink)))
                    continue
                result = encode(answer)
            except Exception as exc:  # delivered to the one request that caused it
                sink.set_exception(exc)
            else:
                sink.set_result(result)

    async def _wait(self, request: AssignRequest, sink: DirectSink) -> None:
        try:
            result = self._encode(await self._assign(request))
        except Exception as exc:
            sink.set_exception(exc)
        else:
            sink.set_result(result)


_REF = "#/components/schemas/{model}"
_RESPONSES: list[type[BaseModel]] = [
    wire.AssignResponse,
    wire.ExposureResponse,
    wire.OutcomeResponse,
    wire.ExperimentStatsResponse,
    wire.ErrorResponse,
    wire.HealthResponse,
]


def _schemas(served: ServedExperiment) -> dict[str, Any]:
    requests: list[type[BaseModel]] = [
        wire.AssignRequest,
        wire.Exposure,
        wire.ExposureBatch,
        wire.Outcome,
        wire.OutcomeBatch,
    ]
    _, request_defs = models_json_schema([(m, "validation") for m in requests], by_alias=True, ref_template=_REF)
    _, response_defs = models_json_schema([(m, "serialization") for m in _RESPONSES], by_alias=True, ref_template=_REF)
    schemas: dict[str, Any] = {**request_defs.get("$defs", {}), **response_defs.get("$defs", {})}
    unions: list[tuple[str, Any]] = [("ExposureRequest", wire.ExposureRequest), ("OutcomeRequest", wire.OutcomeRequest)]
    for name, union in unions:
        schema = TypeAdapter[Any](union).json_schema(by_alias=True, ref_template=_REF)
        schema.pop("$defs", None)
        schemas[name] = {**schema, "title": name}
    # Narrowed to the served experiment: its variants, its metrics and the values each metric's type accepts.
    exposure = copy.deepcopy(schemas["Exposure"])
    exposure["properties"]["variant"] = {**exposure["properties"]["variant"], "enum": served.variant_names}
    exposure["properties"]["variant"].pop("type", None)
    schemas["Exposure"] = exposure
    # The unit is unitId or, without it, the attribute spec.assignment.unitKey names (a string).
    assign = copy.deepcopy(schemas["AssignRequest"])
    key = served.spec.assignment.unit_key
    unit = {k: v for k, v in assign["properties"]["unitId"].items() if k != "description"}
    assign.pop("required", None)  # none: unitId is optional (never null), and one of the two below is required
    assign["anyOf"] = [
        {"required": ["unitId"]},
        {
            "required": ["attributes"],
            "properties": {"attributes": {"type": "object", "required": [key], "properties": {key: unit}}},
        },
    ]
    schemas["AssignRequest"] = assign
    outcome = schemas["Outcome"]
    options = []
    for rule in served.metrics:
        narrowed = copy.deepcopy(outcome)
        narrowed["properties"]["metric"] = {"const": rule.name}
        value = narrowed["properties"]["value"]
        if rule.type == MetricType.BINARY:
            narrowed["properties"]["value"] = {"description": value.get("description", ""), "enum": [0, 1]}
        elif rule.type == MetricType.COUNT:
            narrowed["properties"]["value"] = {**value, "type": "integer", "minimum": 0}
        options.append(narrowed)
    schemas["Outcome"] = {"title": "Outcome", "description": outcome.get("description", ""), "oneOf": options}
    return schemas


def experiment_openapi_document(served: ServedExperiment) -> dict[str, Any]:
    def post(operation: str, summary: str, request: str, response: str, *errors: int) -> dict[str, Any]:
        return {
            "post": {
                "operationId": operation,
                "summary": summary,
                "requestBody": {"required": True, "content": json_content(request)},
                "responses": {
                    "200": {"description": "The answer.", "content": json_content(response)},
                    **error_responses(*errors),
                },
            }
        }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"Croupier experiment API: {served.name}",
            "version": served.version,
            "description": "Assignment, exposures and outcomes of one Experiment, served by a Croupier runtime.",
        },
        "paths": {
            wire.ASSIGN_PATH: post(
                "assign",
                "The unit's variant and what it serves; the unit's first assignment in the epoch logs its exposure.",
                "AssignRequest",
                "AssignResponse",
                400,
                413,
                422,
                502,
                503,
            ),
            wire.EXPOSURES_PATH: post(
                "exposures",
                "Record exposures of locally assigned units; acknowledged once durable, idempotent per unit and epoch.",
                "ExposureRequest",
                "ExposureResponse",
                400,
                413,
                422,
                503,
            ),
            wire.OUTCOMES_PATH: post(
                "outcomes",
                "Report outcomes; joined to the unit's exposure in the attribution window, acknowledged once durable, "
                "idempotent by eventId.",
                "OutcomeRequest",
                "OutcomeResponse",
                400,
                413,
                422,
                503,
            ),
            wire.STATS_PATH: {
                "get": {
                    "operationId": "stats",
                    "summary": "Per-variant exposures and sufficient statistics of every metric, in the current epoch.",
                    "responses": {
                        "200": {"description": "Statistics.", "content": json_content("ExperimentStatsResponse")}
                    },
                }
            },
            **common_paths(),
        },
        "components": {"schemas": _schemas(served)},
    }
