"""The stock TF Serving gRPC stubs against the local model server: Predict, metadata, status, errors and codes."""

from __future__ import annotations

import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from support.savedmodels import FAILING_VERSION, RANKER, SCORER, SLOW_MS, SLOW_VERSION
from tensorflow.core.example import example_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from croupier.modelserver.savedmodels import example_score, expected_scores, failing_row

Stub = prediction_service_pb2_grpc.PredictionServiceStub

RNG = np.random.default_rng(7)
CONTEXT = RNG.random((3, 4)).astype(np.float32)
CONTEXT[:, 0] = 0.5 + 0.49 * CONTEXT[:, 0]  # first features in [0.5, 1): rows the failing model accepts
ARMS = RNG.random((3, 5, 4)).astype(np.float32)


def predict_request(
    version: int | None = None, label: str | None = None, **inputs: np.ndarray
) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = RANKER
    request.model_spec.signature_name = "serving_default"
    if version is not None:
        request.model_spec.version.value = version
    if label is not None:
        request.model_spec.version_label = label
    for key, value in (inputs or {"context": CONTEXT, "arms": ARMS}).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return request


def scores(response: predict_pb2.PredictResponse) -> np.ndarray:
    return tf.make_ndarray(response.outputs["scores"])


def test_predict_by_version_answers_each_versions_own_scores(prediction: Stub) -> None:
    one = prediction.Predict(predict_request(version=1), timeout=30)
    two = prediction.Predict(predict_request(version=2), timeout=30)
    assert one.model_spec.name == RANKER and one.model_spec.version.value == 1
    assert one.model_spec.signature_name == "serving_default"
    assert scores(one).shape == (3, 5)
    np.testing.assert_allclose(scores(one), expected_scores(1, CONTEXT, ARMS), rtol=1e-5)
    np.testing.assert_allclose(scores(two), expected_scores(2, CONTEXT, ARMS), rtol=1e-5)
    assert np.abs(scores(one) - scores(two)).mean() > 0.1  # version 2 differs measurably


def test_predict_by_label_and_latest(prediction: Stub) -> None:
    assert prediction.Predict(predict_request(label="stable"), timeout=30).model_spec.version.value == 1
    assert prediction.Predict(predict_request(label="canary"), timeout=30).model_spec.version.value == 2
    latest = prediction.Predict(predict_request(), timeout=30)
    assert latest.model_spec.version.value == SLOW_VERSION  # the highest available version


def test_unknown_model_version_and_label_get_tf_servings_errors(prediction: Stub) -> None:
    request = predict_request()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as missing:
        prediction.Predict(request, timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == "Servable not found for request: Latest(nope)"
    with pytest.raises(grpc.RpcError) as version:
        prediction.Predict(predict_request(version=9), timeout=30)
    assert version.value.code() == grpc.StatusCode.NOT_FOUND
    assert version.value.details() == f"Servable not found for request: Specific({RANKER}, 9)"
    with pytest.raises(grpc.RpcError) as label:
        prediction.Predict(predict_request(label="blue"), timeout=30)
    assert label.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert label.value.details() == "Unrecognized servable version label: blue"


def test_bad_inputs_and_signature(prediction: Stub) -> None:
    with pytest.raises(grpc.RpcError) as missing:
        prediction.Predict(predict_request(version=1, context=CONTEXT), timeout=30)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert missing.value.details() == (
        "input size does not match signature: 1!=2 len({context}) != len({arms,context}). "
        "Sent extra: {}. Missing but required: {arms}."
    )
    with pytest.raises(grpc.RpcError) as shape:
        prediction.Predict(predict_request(version=1, context=CONTEXT[:, :2], arms=ARMS), timeout=30)
    assert shape.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    request = predict_request(version=1)
    request.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as signature:
        prediction.Predict(request, timeout=30)
    assert signature.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert signature.value.details() == 'Serving signature key "nope" not found.'
    request = predict_request(version=1)
    request.output_filter.append("nope")
    with pytest.raises(grpc.RpcError) as output:
        prediction.Predict(request, timeout=30)
    assert output.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "output tensor alias not found in signature: nope" in output.value.details()


def test_failing_version_fails_with_a_tensorflow_error_for_its_inputs_only(prediction: Stub) -> None:
    good = predict_request(version=FAILING_VERSION)
    np.testing.assert_allclose(
        scores(prediction.Predict(good, timeout=30)), expected_scores(1, CONTEXT, ARMS), rtol=1e-5
    )
    bad_context = CONTEXT.copy()
    bad_context[1, 0] = 0.25
    assert failing_row(0.25, 0.5) and not failing_row(float(CONTEXT[0, 0]), 0.5)
    with pytest.raises(grpc.RpcError) as failed:
        prediction.Predict(predict_request(version=FAILING_VERSION, context=bad_context, arms=ARMS), timeout=30)
    assert failed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert failed.value.details().startswith("assertion failed: [croupier test model: injected failure")


def test_slow_version_takes_its_configured_time(prediction: Stub) -> None:
    prediction.Predict(predict_request(version=SLOW_VERSION), timeout=30)  # warm
    start = time.perf_counter()
    response = prediction.Predict(predict_request(version=SLOW_VERSION), timeout=30)
    elapsed_ms = (time.perf_counter() - start) * 1000
    assert elapsed_ms >= SLOW_MS
    np.testing.assert_allclose(scores(response), expected_scores(1, CONTEXT, ARMS), rtol=1e-5)


def test_model_metadata_lists_the_signature(prediction: Stub) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = RANKER
    request.model_spec.version_label = "canary"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request, timeout=30)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert serving.method_name == "tensorflow/serving/predict"
    assert sorted(serving.inputs) == ["arms", "context"]
    assert [d.size for d in serving.inputs["arms"].tensor_shape.dim] == [-1, -1, 4]
    assert list(serving.outputs) == ["scores"]
    request.ClearField("metadata_field")
    request.metadata_field.append("nope")
    with pytest.raises(grpc.RpcError) as error:
        prediction.GetModelMetadata(request, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Metadata field nope is not supported"


def test_classify_and_regress_on_a_predict_signature_fail_as_tf_serving_does(prediction: Stub) -> None:
    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = RANKER
    classify.input.example_list.examples.add()
    with pytest.raises(grpc.RpcError) as error:
        prediction.Classify(classify, timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Expected one input Tensor."
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = RANKER
    regress.model_spec.signature_name = "nope"
    with pytest.raises(grpc.RpcError) as missing:
        prediction.Regress(regress, timeout=30)
    assert missing.value.details() == "No signature was found with the name: nope"


def test_model_status_by_model_and_version(models: model_service_pb2_grpc.ModelServiceStub) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = RANKER
    response = models.GetModelStatus(request, timeout=30)
    states = {s.version: s.state for s in response.model_version_status}
    assert states == {v: get_model_status_pb2.ModelVersionStatus.AVAILABLE for v in (1, 2, 3, 4)}
    assert all(s.status.error_code == 0 for s in response.model_version_status)
    request.model_spec.version.value = 2
    one = models.GetModelStatus(request, timeout=30)
    assert [s.version for s in one.model_version_status] == [2]
    request.model_spec.version.value = 7
    with pytest.raises(grpc.RpcError) as missing:
        models.GetModelStatus(request, timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert missing.value.details() == f"Could not find version 7 of model {RANKER}"
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "nope"
    with pytest.raises(grpc.RpcError) as unknown:
        models.GetModelStatus(request, timeout=30)
    assert unknown.value.details() == "Could not find any versions of model nope"


def test_tensors_of_another_dtype_are_refused_not_cast(prediction: Stub) -> None:
    with pytest.raises(grpc.RpcError) as error:
        prediction.Predict(predict_request(version=1, context=CONTEXT.astype(np.float64), arms=ARMS), timeout=30)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.value.details() == "Expects arg[1] to be float but double is provided"
    malformed = predict_request(version=1)
    malformed.inputs["context"].tensor_content = b"\x00\x01\x02"  # 3 bytes for a [3, 4] float tensor
    with pytest.raises(grpc.RpcError) as broken:
        prediction.Predict(malformed, timeout=30)
    assert broken.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def example(**features: list[float]) -> example_pb2.Example:
    message = example_pb2.Example()
    for name, values in features.items():
        message.features.feature[name].float_list.value.extend(values)
    return message


FEATURES = [[0.5, 1.0, -0.5, 2.0], [1.5, -1.0, 0.25, 0.0]]


def test_classify_and_regress_on_example_signatures(prediction: Stub) -> None:
    regress = regression_pb2.RegressionRequest()
    regress.model_spec.name = SCORER
    regress.model_spec.signature_name = "regress"
    regress.input.example_list.examples.extend(example(x=f) for f in FEATURES)
    answer = prediction.Regress(regress, timeout=30)
    assert answer.model_spec.name == SCORER and answer.model_spec.version.value == 1
    assert answer.model_spec.signature_name == "regress"
    np.testing.assert_allclose([r.value for r in answer.result.regressions], example_score(1, FEATURES), rtol=1e-5)

    classify = classification_pb2.ClassificationRequest()
    classify.model_spec.name = SCORER
    classify.model_spec.signature_name = "classify"
    # The context carries the features; the examples are empty: TF Serving merges the context into each example.
    classify.input.example_list_with_context.context.CopyFrom(example(x=FEATURES[0]))
    classify.input.example_list_with_context.examples.extend([example(), example()])
    result = prediction.Classify(classify, timeout=30).result
    p = 1 / (1 + np.exp(-example_score(1, [FEATURES[0]])[0]))
    for classification in result.classifications:
        assert [c.label for c in classification.classes] == ["negative", "positive"]
        np.testing.assert_allclose([c.score for c in classification.classes], [1 - p, p], rtol=1e-5)
    assert len(result.classifications) == 2

    classify.ClearField("input")
    with pytest.raises(grpc.RpcError) as empty:
        prediction.Classify(classify, timeout=30)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert empty.value.details() == "Input is empty."
    regress.model_spec.signature_name = "classify"
    with pytest.raises(grpc.RpcError) as two_outputs:
        prediction.Regress(regress, timeout=30)
    assert two_outputs.value.details() == "Expected one output Tensor."
