"""Fuzz the experiment API against the OpenAPI document it serves: no input may cause a 5xx or break the schema, and
whatever the fuzzer sent, the counts stay consistent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from .conftest import ExperimentProcess, write_experiment

VARIANTS = [
    {"name": "control", "weight": 50, "payload": {"offer": "none"}},
    {"name": "ranker-v2", "weight": 50, "modelDeploymentRef": {"name": "ranker", "version": 2}},
]


@pytest.fixture(scope="module")
def live_experiment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("fuzz-experiment")
    runtime = ExperimentProcess(write_experiment(directory / "exp.yaml", variants=VARIANTS), directory / "state")
    runtime.start(timeout=30)
    yield runtime.url
    runtime.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_experiment_api_conforms_to_its_openapi_document(live_experiment: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{live_experiment}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/assign", "/v1/exposures", "/v1/outcomes", "/v1/stats"}
    for operation in operations:
        if operation.method.upper() == "GET" and mode is GenerationMode.NEGATIVE:
            continue

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: schemathesis.Case) -> None:
            response = case.call_and_validate(base_url=live_experiment, timeout=10)
            assert response.status_code < 500, response.text

        check()


def test_fuzzing_left_the_counts_consistent(live_experiment: str) -> None:
    stats = httpx.get(f"{live_experiment}/v1/stats").json()
    assert stats["totalExposures"] > 0  # the fuzzer assigned units
    assert stats["totalExposures"] == sum(v["exposures"] for v in stats["variants"])
    for variant in stats["variants"]:
        for metric in variant["metrics"]:
            if metric["aggregation"] == "Sum":
                assert metric["count"] == variant["exposures"]
            assert metric["sumSquares"] >= 0
    assert httpx.get(f"{live_experiment}/readyz").status_code == 200


def test_a_null_unit_id_is_refused_naming_the_field(live_experiment: str) -> None:
    """unitId is optional in the published schema but never null: the fuzzer's `{"unitId": null}` is a 4xx that names
    it, with or without the unitKey attribute, and assigns nobody."""
    before = httpx.get(f"{live_experiment}/v1/stats").json()["totalExposures"]
    for body in ({"unitId": None}, {"unitId": None, "attributes": {"userId": "u-null"}}):
        answer = httpx.post(f"{live_experiment}/v1/assign", json=body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "unitId" and "null" in answer.json()["message"], answer.text
    assert httpx.get(f"{live_experiment}/v1/stats").json()["totalExposures"] == before
    by_attribute = httpx.post(f"{live_experiment}/v1/assign", json={"attributes": {"userId": "u-null"}})
    assert by_attribute.status_code == 200 and by_attribute.json()["counted"] is True, by_attribute.text
