"""TF Serving's REST JSON formats: row and columnar requests, predictions and outputs, and their errors."""

from __future__ import annotations

import re

import numpy as np
import pytest
from tensorflow.core.example import example_pb2

from croupier.modelserver.errors import Code, ServingError, http_status
from croupier.modelserver.restjson import parse_body, request_examples, request_inputs, response_body, signature_name

NAMES = ["arms", "context"]


def test_row_format_with_named_inputs() -> None:
    document = {"instances": [{"context": [1, 2], "arms": [[1, 0]]}, {"context": [3, 4], "arms": [[0, 1]]}]}
    inputs, row = request_inputs(document, NAMES)
    assert row and inputs == {"arms": [[[1, 0]], [[0, 1]]], "context": [[1, 2], [3, 4]]}


def test_row_and_columnar_format_with_one_input() -> None:
    assert request_inputs({"instances": [[1, 2], [3, 4]]}, ["x"]) == ({"x": [[1, 2], [3, 4]]}, True)
    assert request_inputs({"instances": [{"x": [1, 2]}]}, ["x"]) == ({"x": [[1, 2]]}, True)
    assert request_inputs({"inputs": [[1, 2]]}, ["x"]) == ({"x": [[1, 2]]}, False)
    assert request_inputs({"inputs": {"x": [[1, 2]]}}, ["x"]) == ({"x": [[1, 2]]}, False)
    assert request_inputs({"inputs": {"b64": "aGk="}}, ["x"]) == ({"x": b"hi"}, False)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"instances": {"x": 1}}, "Expecting 'instances' to be an list/array"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"instances": [1], "inputs": [1]}, "expecting only one of 'inputs' or 'instances' keys to exist"),
        ({"instances": [[1], [2]]}, "Expecting object but got list at item 0 of input list"),
        ({"instances": [{"arms": 1}]}, "Missing named input: context in 'instances' list item 0"),
        ({"instances": [{"arms": 1, "context": 1, "extra": 1}]}, "does not have named input: extra"),
        ({"inputs": {"arms": 1}}, "Missing named input: context in 'inputs' object."),
        ({"inputs": [1, 2]}, "Expecting 'inputs' to be an object with keys {arms,context}"),
        ({"examples": []}, "Missing 'inputs' or 'instances' key"),
    ],
)
def test_request_errors(document: dict[str, object], message: str) -> None:
    with pytest.raises(ServingError, match=message) as error:
        request_inputs(document, NAMES)
    assert error.value.code == Code.INVALID_ARGUMENT and error.value.http_status == 400


def test_body_and_signature_errors() -> None:
    with pytest.raises(ServingError, match="JSON Parse error: The document is empty"):
        parse_body(b" ")
    with pytest.raises(ServingError, match="JSON Parse error: Expecting value at offset: 0"):
        parse_body(b"nope")
    with pytest.raises(ServingError, match="Is not object"):
        parse_body(b"[1]")
    with pytest.raises(ServingError, match="'signature_name' key must be a string value"):
        signature_name({"signature_name": 3})
    assert signature_name({}) == "" and signature_name({"signature_name": "s"}) == "s"


def test_responses() -> None:
    scores = np.array([[1.5, 2.0], [3.0, 4.0]], np.float32)
    labels = np.array([b"a", b"\xff"], object)
    assert response_body({"scores": scores}, row=True) == {"predictions": [[1.5, 2.0], [3.0, 4.0]]}
    assert response_body({"scores": scores}, row=False) == {"outputs": [[1.5, 2.0], [3.0, 4.0]]}
    assert response_body({"scores": scores, "labels": labels}, row=True) == {
        "predictions": [{"scores": [1.5, 2.0], "labels": "a"}, {"scores": [3.0, 4.0], "labels": {"b64": "/w=="}}]
    }
    assert response_body({"scores": scores, "labels": labels}, row=False) == {
        "outputs": {"scores": [[1.5, 2.0], [3.0, 4.0]], "labels": ["a", {"b64": "/w=="}]}
    }
    with pytest.raises(ServingError, match="different or undefined 0th dimension"):
        response_body({"scores": scores, "one": np.array([1.0])}, row=True)


def test_tf_servings_http_status_for_each_code() -> None:
    expected = {
        Code.OK: 200, Code.CANCELLED: 499, Code.UNKNOWN: 500, Code.INVALID_ARGUMENT: 400, Code.DEADLINE_EXCEEDED: 504,
        Code.NOT_FOUND: 404, Code.ALREADY_EXISTS: 409, Code.PERMISSION_DENIED: 403, Code.RESOURCE_EXHAUSTED: 429,
        Code.FAILED_PRECONDITION: 400, Code.ABORTED: 409, Code.OUT_OF_RANGE: 400, Code.UNIMPLEMENTED: 501,
        Code.INTERNAL: 500, Code.UNAVAILABLE: 503, Code.DATA_LOSS: 500, Code.UNAUTHENTICATED: 401,
    }  # fmt: skip
    assert {code: http_status(code) for code in Code} == expected


def test_classify_and_regress_bodies_become_serialized_examples() -> None:
    document = {
        "context": {"country": "fr"},
        "examples": [{"x": [1.5, 2.0], "n": 3, "flag": True, "raw": {"b64": "aGk="}}],
    }
    (serialized,) = request_examples(document, "classify")
    example = example_pb2.Example.FromString(serialized)
    features = example.features.feature
    assert list(features["x"].float_list.value) == [1.5, 2.0]
    assert list(features["n"].int64_list.value) == [3] and list(features["flag"].int64_list.value) == [1]
    assert list(features["raw"].bytes_list.value) == [b"hi"]
    assert list(features["country"].bytes_list.value) == [b"fr"]  # the context, merged into the example


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"instances": []}, "When method is classify, key 'examples' is expected and was not found"),
        ({"examples": {}}, "Expecting 'examples' value to be an list/array"),
        ({"examples": []}, "'examples' value is an empty array"),
        ({"examples": [[1]]}, "Example must be JSON object but got JSON Array"),
        ({"examples": [{"x": [1, 2.5]}]}, "Unexpected element type in feature: x expecting type: int64"),
        ({"examples": [{"x": None}]}, "Feature: x has element with unexpected JSON type: Null"),
        ({"examples": [{"x": [[1]]}]}, "Feature: x has element with unexpected JSON type: Array"),
        ({"examples": [{"x": 2**63}]}, "Feature: x has uint64_t element. Only int64_t is supported."),
    ],
)
def test_bad_examples(document: dict[str, object], message: str) -> None:
    with pytest.raises(ServingError, match=re.escape(message)):
        request_examples(document, "classify")
