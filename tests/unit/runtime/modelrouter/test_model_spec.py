"""The mirror ModelSpec reads TF Serving's requests and writes them back with every other field intact."""

from __future__ import annotations

from tensorflow_serving.apis import classification_pb2, predict_pb2

from croupier.runtime.modelrouter.model_spec import RequestHead


def test_a_label_is_set_and_the_rest_of_the_request_survives() -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "ranker"
    request.model_spec.signature_name = "serving_default"
    request.inputs["x"].dtype = 1
    request.inputs["x"].float_val.extend([1.0, 2.5])
    request.output_filter.append("scores")
    head = RequestHead.FromString(request.SerializeToString())
    assert head.model_spec.name == "ranker" and head.model_spec.WhichOneof("version_choice") is None
    head.model_spec.version_label = "canary"
    forwarded = predict_pb2.PredictRequest.FromString(head.SerializeToString())
    expected = predict_pb2.PredictRequest()
    expected.CopyFrom(request)
    expected.model_spec.version_label = "canary"
    assert forwarded == expected


def test_versions_and_labels_are_read() -> None:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = "scorer"
    request.model_spec.version.value = 7
    spec = RequestHead.FromString(request.SerializeToString()).model_spec
    assert spec.WhichOneof("version_choice") == "version" and spec.version.value == 7
    request.model_spec.version_label = "stable"
    spec = RequestHead.FromString(request.SerializeToString()).model_spec
    assert spec.WhichOneof("version_choice") == "version_label" and spec.version_label == "stable"
