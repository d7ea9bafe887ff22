"""The tensors of one scoring call, and the check of a model's signature against them.

Layout (one TF Serving Predict per decision, batch dimension first as TF Serving's batching expects):

- input ``context``: float32 [1, d_context], the request's context in the policy's feature order (d_context = 0 for a
  policy without spec.context);
- input ``arms``: float32 [1, n, d_arm], the features of the n eligible arms in the request's candidate order (spec
  order without candidates), columns in sorted feature name order (d_arm = 0 without arms[].features);
- output ``scores``: float32 (or float64) [1, n], higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from croupier.runtime.scoring import prediction_service_pb2 as pb

CONTEXT_INPUT = "context"
ARMS_INPUT = "arms"
SCORES_OUTPUT = "scores"
SIGNATURE_DEF_MAP = "tensorflow.serving.SignatureDefMap"
_FLOATS = (pb.DT_FLOAT, pb.DT_DOUBLE)


class SignatureMismatch(ValueError):
    """The model's signature does not take or give the tensors of the layout above; the message names the difference."""


class BadScores(ValueError):
    """A Predict response without a usable score per eligible arm."""


def _shape(*dims: int) -> pb.TensorShapeProto:
    return pb.TensorShapeProto(dim=[pb.TensorShapeProto.Dim(size=d) for d in dims])


def float_tensor(values: np.ndarray) -> pb.TensorProto:
    """A float32 TensorProto of ``values`` (its bytes in ``tensor_content``, little-endian as TensorFlow reads them)."""
    array = np.ascontiguousarray(values, dtype="<f4")
    return pb.TensorProto(dtype=pb.DT_FLOAT, tensor_shape=_shape(*array.shape), tensor_content=array.tobytes())


def predict_request(
    spec: pb.ModelSpec, context: Sequence[float] | None, context_size: int, arm_rows: np.ndarray
) -> pb.PredictRequest:
    """The request for one decision: ``arm_rows`` [n, d_arm] are the eligible arms' features (float32)."""
    ctx = np.asarray(context if context is not None else (), dtype="<f4").reshape(1, context_size)
    request = pb.PredictRequest(model_spec=spec, output_filter=[SCORES_OUTPUT])
    request.inputs[CONTEXT_INPUT].CopyFrom(float_tensor(ctx))
    request.inputs[ARMS_INPUT].CopyFrom(float_tensor(arm_rows[np.newaxis, :, :]))
    return request


def scores_of(response: pb.PredictResponse, count: int) -> list[float]:
    """The ``count`` scores of a response, as Python floats; raises BadScores naming what is wrong."""
    if SCORES_OUTPUT not in response.outputs:
        raise BadScores(f"the response has no output {SCORES_OUTPUT!r} (outputs: {sorted(response.outputs)})")
    tensor = response.outputs[SCORES_OUTPUT]
    if tensor.dtype == pb.DT_FLOAT:
        values = (
            np.frombuffer(tensor.tensor_content, dtype="<f4").tolist()
            if tensor.tensor_content
            else list(tensor.float_val)
        )
    elif tensor.dtype == pb.DT_DOUBLE:
        values = (
            np.frombuffer(tensor.tensor_content, dtype="<f8").tolist()
            if tensor.tensor_content
            else list(tensor.double_val)
        )
    else:
        raise BadScores(f"output {SCORES_OUTPUT!r} has dtype {pb.DataType.Name(tensor.dtype)}, expected DT_FLOAT")
    if len(values) != count:
        raise BadScores(f"output {SCORES_OUTPUT!r} has {len(values)} values for {count} arms")
    if not all(map(math.isfinite, values)):
        raise BadScores(f"output {SCORES_OUTPUT!r} holds a value that is not finite")
    return values


def signature_of(response: pb.GetModelMetadataResponse, name: str) -> pb.SignatureDef:
    """The signature ``name`` from a GetModelMetadata response; raises SignatureMismatch when it has none."""
    packed = response.metadata.get("signature_def")
    if packed is None or not packed.type_url.endswith("/" + SIGNATURE_DEF_MAP):
        raise SignatureMismatch("GetModelMetadata answered without a signature_def map")
    signatures = pb.SignatureDefMap.FromString(packed.value).signature_def
    if name not in signatures:
        raise SignatureMismatch(f"the model has no signature {name!r} (it has {sorted(signatures)})")
    return signatures[name]


def _dims(info: pb.TensorInfo) -> list[int] | None:
    return None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim]


def _check(kind: str, key: str, info: pb.TensorInfo, expected: list[int | None]) -> None:
    """``expected``: the layout's dims, None where any size is fine (the batch and arm counts)."""
    if info.dtype not in _FLOATS:
        raise SignatureMismatch(
            f"{kind} {key!r} has dtype {pb.DataType.Name(info.dtype)}; Croupier sends and reads DT_FLOAT"
        )
    dims = _dims(info)
    if dims is None:
        return
    shown = "[" + ", ".join("n" if e is None else str(e) for e in expected) + "]"
    if len(dims) != len(expected):
        raise SignatureMismatch(f"{kind} {key!r} has shape {dims}; Croupier's layout is {shown}")
    for got, want in zip(dims, expected, strict=True):
        if want is not None and got not in (-1, want):
            raise SignatureMismatch(f"{kind} {key!r} has shape {dims}; Croupier's layout is {shown}")


def check_signature(signature: pb.SignatureDef, context_size: int, arm_size: int) -> None:
    """Raise SignatureMismatch unless the signature takes exactly ``context`` [n, context_size] and ``arms``
    [n, n, arm_size] and gives ``scores`` [n, n] (n: any size)."""
    inputs = dict(signature.inputs)
    expected = {CONTEXT_INPUT, ARMS_INPUT}
    missing = sorted(expected - set(inputs))
    if missing:
        raise SignatureMismatch(f"the signature has no input {missing[0]!r} (its inputs: {sorted(inputs)})")
    extra = sorted(set(inputs) - expected)
    if extra:
        raise SignatureMismatch(
            f"the signature needs input {extra[0]!r}, which Croupier does not send (it sends {sorted(expected)})"
        )
    _check("input", CONTEXT_INPUT, inputs[CONTEXT_INPUT], [None, context_size])
    _check("input", ARMS_INPUT, inputs[ARMS_INPUT], [None, None, arm_size])
    outputs = dict(signature.outputs)
    if SCORES_OUTPUT not in outputs:
        raise SignatureMismatch(f"the signature has no output {SCORES_OUTPUT!r} (its outputs: {sorted(outputs)})")
    _check("output", SCORES_OUTPUT, outputs[SCORES_OUTPUT], [None, None])
