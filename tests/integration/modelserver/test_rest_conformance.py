"""TF Serving's REST API (bodies as in its api_rest documentation) against the local model server."""

from __future__ import annotations

from typing import Any

import httpx
import numpy as np
import pytest
from support.savedmodels import RANKER, SCORER

from croupier.modelserver.process import ModelServerProcess
from croupier.modelserver.savedmodels import example_score, expected_scores

CONTEXT = [[0.6, 0.2, 0.1, 0.9], [0.7, 0.4, 0.3, 0.2]]
ARMS = [[[1.0, 0.0, 0.5, 0.2], [0.1, 0.9, 0.3, 0.4]], [[0.2, 0.2, 0.2, 0.2], [0.5, 0.1, 0.8, 0.6]]]


@pytest.fixture(scope="module")
def rest(served: ModelServerProcess) -> httpx.Client:
    with httpx.Client(base_url=served.rest_url, timeout=30) as client:
        yield client  # type: ignore[misc]


def test_row_format_predict(rest: httpx.Client) -> None:
    body = {
        "signature_name": "serving_default",
        "instances": [{"context": c, "arms": a} for c, a in zip(CONTEXT, ARMS, strict=True)],
    }
    answer = rest.post(f"/v1/models/{RANKER}/versions/1:predict", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    predictions = answer.json()["predictions"]
    assert np.asarray(predictions).shape == (2, 2)
    np.testing.assert_allclose(predictions, expected_scores(1, CONTEXT, ARMS), rtol=1e-5)


def test_columnar_format_predict_by_label(rest: httpx.Client) -> None:
    answer = rest.post(
        f"/v1/models/{RANKER}/labels/canary:predict", json={"inputs": {"context": CONTEXT, "arms": ARMS}}
    )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["outputs"], expected_scores(2, CONTEXT, ARMS), rtol=1e-5)


def test_model_status_as_tf_serving_prints_it(rest: httpx.Client) -> None:
    answer = rest.get(f"/v1/models/{RANKER}/versions/2")
    assert answer.status_code == 200
    assert answer.json() == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    every = rest.get(f"/v1/models/{RANKER}").json()["model_version_status"]
    assert sorted(int(s["version"]) for s in every) == [1, 2, 3, 4]


def test_metadata(rest: httpx.Client) -> None:
    answer = rest.get(f"/v1/models/{RANKER}/labels/stable/metadata")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    assert document["model_spec"] == {"name": RANKER, "version": "1", "signature_name": ""}
    serving = document["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["method_name"] == "tensorflow/serving/predict"
    assert serving["inputs"]["context"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in serving["inputs"]["context"]["tensor_shape"]["dim"]] == ["-1", "4"]


@pytest.mark.parametrize(
    "case",
    [
        ("POST", "/v1/models/nope:predict", {"instances": [1]}, 404, "Servable not found for request: Latest(nope)"),
        (
            "POST",
            f"/v1/models/{RANKER}/versions/9:predict",
            {"instances": [1]},
            404,
            f"Servable not found for request: Specific({RANKER}, 9)",
        ),
        (
            "POST",
            f"/v1/models/{RANKER}/labels/blue:predict",
            {"instances": [1]},
            400,
            "Unrecognized servable version label: blue",
        ),
        ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope"),
        ("GET", f"/v1/models/{RANKER}/versions/9", None, 404, f"Could not find version 9 of model {RANKER}"),
        ("GET", "/v1/models", None, 400, "Missing model name in request."),
        ("PUT", f"/v1/models/{RANKER}", None, 400, f"Malformed request: PUT /v1/models/{RANKER}"),
        ("POST", f"/v1/models/{RANKER}:explain", {}, 400, f"Malformed request: POST /v1/models/{RANKER}:explain"),
        (
            "POST",
            f"/v1/models/{RANKER}:predict",
            {"instances": []},
            400,
            "JSON Value: {\"instances\":[]} No values in 'instances' array",
        ),
        (
            "POST",
            f"/v1/models/{RANKER}:predict",
            {"instances": [{"context": [1, 2, 3, 4]}]},
            400,
            "Missing named input: arms in 'instances' list item 0",
        ),
        (
            "POST",
            f"/v1/models/{RANKER}:predict",
            {"inputs": {}, "instances": []},
            400,
            """JSON Value: {"inputs":{},"instances":[]} Not formatted correctly expecting only one of 'inputs' or """
            """'instances' keys to exist """,
        ),
        (
            "POST",
            f"/v1/models/{RANKER}:predict",
            {"signature_name": "nope", "instances": [1]},
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        ("POST", f"/v1/models/{RANKER}:predict", {"rows": []}, 400, "Missing 'inputs' or 'instances' key"),
        ("POST", f"/v1/models/{RANKER}:classify", {"examples": [{}]}, 400, "Expected one input Tensor."),
        (
            "POST",
            f"/v1/models/{SCORER}:regress",
            {"instances": [1]},
            400,
            """JSON Value: {"instances":[1]} When method is regress, key 'examples' is expected and was not found""",
        ),
        (
            "POST",
            f"/v1/models/{SCORER}:classify",
            {"examples": [{"x": [1, 2.5]}]},
            400,
            "Unexpected element type in feature: x expecting type: int64",
        ),
        (
            "POST",
            f"/v1/models/{SCORER}:classify",
            {"examples": [3]},
            400,
            "Example must be JSON object but got JSON Number",
        ),
    ],
)
def test_errors_have_tf_servings_codes_and_messages(rest: httpx.Client, case: tuple[str, str, Any, int, str]) -> None:
    method, path, body, status, error = case
    answer = rest.request(method, path, json=body)
    assert answer.status_code == status, answer.text
    assert answer.json() == {"error": error}


def test_body_that_is_not_json(rest: httpx.Client) -> None:
    empty = rest.post(f"/v1/models/{RANKER}:predict", content=b"")
    assert empty.status_code == 400
    assert empty.json() == {"error": "JSON Parse error: The document is empty"}
    broken = rest.post(f"/v1/models/{RANKER}:predict", content=b"{nope")
    assert broken.status_code == 400
    assert broken.json()["error"].startswith("JSON Parse error:")


def test_values_of_the_wrong_type_or_shape(rest: httpx.Client) -> None:
    text = rest.post(f"/v1/models/{RANKER}:predict", json={"inputs": {"context": "x", "arms": ARMS}})
    assert text.status_code == 400
    assert "context" in text.json()["error"]
    ragged = rest.post(f"/v1/models/{RANKER}:predict", json={"inputs": {"context": [[1, 2], [3]], "arms": ARMS}})
    assert ragged.status_code == 400


def test_classify_and_regress(rest: httpx.Client) -> None:
    features = [[0.5, 1.0, -0.5, 2.0], [1.5, -1.0, 0.25, 0.0]]
    body = {"signature_name": "regress", "examples": [{"x": f} for f in features]}
    answer = rest.post(f"/v1/models/{SCORER}/versions/1:regress", json=body)
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["results"], example_score(1, features), rtol=1e-5)
    body = {"signature_name": "classify", "context": {"x": features[1]}, "examples": [{}]}
    answer = rest.post(f"/v1/models/{SCORER}:classify", json=body)
    assert answer.status_code == 200, answer.text
    ((negative, positive),) = answer.json()["results"]
    p = 1 / (1 + np.exp(-example_score(1, [features[1]])[0]))
    assert negative[0] == "negative" and positive[0] == "positive"
    np.testing.assert_allclose([negative[1], positive[1]], [1 - p, p], rtol=1e-5)
    # Integers for a float feature: the model's own parse fails (TensorFlow's INVALID_ARGUMENT).
    wrong = rest.post(
        f"/v1/models/{SCORER}:regress", json={"signature_name": "regress", "examples": [{"x": [1, 2, 3, 4]}]}
    )
    assert wrong.status_code == 400
    assert "x" in wrong.json()["error"]
