"""The scoring layout: the Predict request's tensors, reading scores, and the signature check's messages."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf.any_pb2 import Any as AnyProto

from croupier.runtime.scoring import prediction_service_pb2 as pb
from croupier.runtime.scoring.tensors import (
    BadScores,
    SignatureMismatch,
    check_signature,
    float_tensor,
    predict_request,
    scores_of,
    signature_of,
)


def info(dims: list[int], dtype: int = pb.DT_FLOAT) -> pb.TensorInfo:
    shape = pb.TensorShapeProto(dim=[pb.TensorShapeProto.Dim(size=d) for d in dims])
    return pb.TensorInfo(name="x:0", dtype=dtype, tensor_shape=shape)  # type: ignore[arg-type]


def signature(**overrides: pb.TensorInfo | None) -> pb.SignatureDef:
    inputs = {"context": info([-1, 3]), "arms": info([-1, -1, 2])}
    outputs = {"scores": info([-1, -1])}
    for key, value in overrides.items():
        target = outputs if key == "scores" else inputs
        if value is None:
            target.pop(key)
        else:
            target[key] = value
    return pb.SignatureDef(inputs=inputs, outputs=outputs)


def test_the_request_carries_the_layout() -> None:
    spec = pb.ModelSpec(name="m", version_label="stable", signature_name="serving_default")
    rows = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype="<f4")
    request = predict_request(spec, [0.5, -1.0, 2.0], 3, rows)
    context, arms = request.inputs["context"], request.inputs["arms"]
    assert [d.size for d in context.tensor_shape.dim] == [1, 3] and context.dtype == pb.DT_FLOAT
    assert np.frombuffer(context.tensor_content, "<f4").tolist() == [0.5, -1.0, 2.0]
    assert [d.size for d in arms.tensor_shape.dim] == [1, 3, 2]
    assert np.frombuffer(arms.tensor_content, "<f4").tolist() == [1, 2, 3, 4, 5, 6]
    assert list(request.output_filter) == ["scores"] and request.model_spec.version_label == "stable"
    empty = predict_request(spec, None, 0, rows)
    assert [d.size for d in empty.inputs["context"].tensor_shape.dim] == [1, 0]


def test_scores_are_read_from_either_encoding() -> None:
    response = pb.PredictResponse()
    response.outputs["scores"].CopyFrom(float_tensor(np.array([[0.25, -1.5]])))
    assert scores_of(response, 2) == [0.25, -1.5]
    listed = pb.PredictResponse()
    listed.outputs["scores"].CopyFrom(pb.TensorProto(dtype=pb.DT_DOUBLE, double_val=[1.0, 2.0, 3.0]))
    assert scores_of(listed, 3) == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("tensor", "message"),
    [
        (None, "the response has no output 'scores'"),
        (pb.TensorProto(dtype=pb.DT_FLOAT, float_val=[1.0]), "has 1 values for 2 arms"),
        (pb.TensorProto(dtype=pb.DT_FLOAT, float_val=[1.0, float("nan")]), "not finite"),
        (pb.TensorProto(dtype=pb.DT_INT64, int64_val=[1, 2]), "dtype DT_INT64"),
    ],
)
def test_unusable_scores_are_named(tensor: pb.TensorProto | None, message: str) -> None:
    response = pb.PredictResponse()
    if tensor is not None:
        response.outputs["scores"].CopyFrom(tensor)
    with pytest.raises(BadScores, match=message):
        scores_of(response, 2)


def test_a_fitting_signature_passes() -> None:
    check_signature(signature(), 3, 2)
    check_signature(signature(context=info([-1, -1]), scores=info([1, -1])), 3, 2)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"context": None}, "the signature has no input 'context' (its inputs: ['arms'])"),
        ({"extra": info([-1])}, "the signature needs input 'extra', which Croupier does not send"),
        ({"context": info([-1, 4])}, "input 'context' has shape [-1, 4]; Croupier's layout is [n, 3]"),
        ({"arms": info([-1, 2])}, "input 'arms' has shape [-1, 2]; Croupier's layout is [n, n, 2]"),
        ({"arms": info([-1, -1, 2], pb.DT_STRING)}, "input 'arms' has dtype DT_STRING"),
        ({"scores": None}, "the signature has no output 'scores'"),
        ({"scores": info([-1])}, "output 'scores' has shape [-1]; Croupier's layout is [n, n]"),
    ],
)
def test_a_mismatch_is_named(overrides: dict[str, pb.TensorInfo | None], message: str) -> None:
    with pytest.raises(SignatureMismatch) as raised:
        check_signature(signature(**overrides), 3, 2)
    assert message in str(raised.value)


def test_the_signature_comes_from_the_metadata_map() -> None:
    packed = AnyProto(
        type_url="type.googleapis.com/tensorflow.serving.SignatureDefMap",
        value=pb.SignatureDefMap(signature_def={"serving_default": signature()}).SerializeToString(),
    )
    response = pb.GetModelMetadataResponse(metadata={"signature_def": packed})
    assert signature_of(response, "serving_default") == signature()
    with pytest.raises(SignatureMismatch, match=r"no signature 'predict' \(it has \['serving_default'\]\)"):
        signature_of(response, "predict")
    with pytest.raises(SignatureMismatch, match="without a signature_def map"):
        signature_of(pb.GetModelMetadataResponse(), "serving_default")
