"""The transport-free core: Predict, GetModelMetadata, Classify/Regress, GetModelStatus and reload on typed values.

The gRPC servicers and the REST handlers convert their wire formats to these calls and map ``ServingError`` to their
status codes; neither sees the other's format. Messages and codes follow TF Serving (predict_util.cc,
get_model_metadata_impl.cc, classifier.cc, regressor.cc).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from croupier.modelserver.config import BatchingParameters, ServerConfig
from croupier.modelserver.errors import Code, ServingError, failed_precondition, invalid_argument
from croupier.modelserver.manager import ModelManager, ModelRequest, Servable, VersionStatus

DEFAULT_SIGNATURE = "serving_default"

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Prediction:
    name: str
    version: int
    signature_name: str
    outputs: dict[str, Array]


@dataclass(frozen=True)
class Classification:
    name: str
    version: int
    signature_name: str
    results: list[list[tuple[str, float]]]  # per example: (label, score) per class


@dataclass(frozen=True)
class Regression:
    name: str
    version: int
    signature_name: str
    values: list[float]


@dataclass(frozen=True)
class Metadata:
    name: str
    version: int
    signature_defs: dict[str, Any]


def numpy_dtype(tf_dtype_enum: int) -> np.dtype[Any]:
    """The numpy dtype of a ``tensorflow.DataType`` enum value from a SignatureDef's TensorInfo."""
    dtype: np.dtype[Any] = np.dtype(tf.dtypes.as_dtype(tf_dtype_enum).as_numpy_dtype)
    return dtype


_TRACE_PREFIX = re.compile(r"^Graph execution error:\n\n(?:.*\n)*?<stack traces unavailable>\n", re.MULTILINE)


def _tf_message(message: str) -> str:
    """TensorFlow's status message without the Python-only 'Graph execution error' preamble TF Serving never shows."""
    return _TRACE_PREFIX.sub("", message).strip()


def _short(signature: Any) -> str:
    """A SignatureDef on one line (TF Serving prints its DebugString)."""
    return " ".join(str(signature).split())


class ModelService:
    def __init__(self, manager: ModelManager, *, batching: BatchingParameters | None = None) -> None:
        self.manager = manager
        self.batching = batching

    # --- Predict ----------------------------------------------------------------------------------------------------
    def signature_inputs(self, request: ModelRequest, signature_name: str) -> dict[str, Any]:
        """The TensorInfo of each input of a signature (REST needs them to read JSON), or TF Serving's REST error."""
        servable = self.manager.resolve(request)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f'Serving signature name: "{name}" not found in signature def')
        return dict(signature.inputs)

    def predict(
        self,
        request: ModelRequest,
        signature_name: str,
        inputs: dict[str, Any],
        output_filter: list[str] | None = None,
        *,
        exact_dtypes: bool = False,
    ) -> Prediction:
        """Run a signature. REST values are converted to the signature's dtypes (as TF Serving's JSON reader does);
        gRPC tensors must already have them (``exact_dtypes``), as TF Serving's session requires."""
        servable = self.manager.resolve(request)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise failed_precondition(f'Serving signature key "{name}" not found.')
        expected = sorted(signature.inputs)
        sent = sorted(inputs)
        if len(sent) > len(expected) or (len(sent) < len(expected) and not signature.defaults):
            extra = sorted(set(sent) - set(expected))
            missing = sorted(set(expected) - set(sent))
            raise invalid_argument(
                f"input size does not match signature: {len(sent)}!={len(expected)} len({{{','.join(sent)}}}) != "
                f"len({{{','.join(expected)}}}). Sent extra: {{{','.join(extra)}}}. "
                f"Missing but required: {{{','.join(missing)}}}."
            )
        unknown = sorted(set(sent) - set(expected))
        if unknown:
            raise invalid_argument(
                f"input tensor alias not found in signature: {unknown[0]}. Inputs expected to be in the set "
                f"{{{','.join(expected)}}}."
            )
        aliases = list(output_filter or [])
        for alias in aliases:
            if alias not in signature.outputs:
                raise invalid_argument(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the set "
                    f"{{{','.join(sorted(signature.outputs))}}}."
                )
        if len(set(aliases)) != len(aliases):
            duplicate = next(a for a in aliases if aliases.count(a) > 1)
            raise invalid_argument(f"duplicate output tensor alias: {duplicate}")
        arrays = {
            key: self._convert(index, key, value, signature.inputs[key], exact_dtypes)
            for index, (key, value) in enumerate(sorted(inputs.items()))
        }
        self._check_batch(arrays)
        outputs = self._run(servable, name, arrays)
        if aliases:
            outputs = {alias: outputs[alias] for alias in aliases}
        return Prediction(servable.name, servable.version, name, outputs)

    def _convert(self, index: int, key: str, value: Any, tensor_info: Any, exact: bool) -> Array:
        dtype = numpy_dtype(tensor_info.dtype)
        if isinstance(value, np.ndarray) and (value.dtype == dtype or (dtype.kind == "O" and value.dtype.kind in "OS")):
            return value
        if exact and isinstance(value, np.ndarray):
            expected = types_pb2.DataType.Name(tensor_info.dtype).removeprefix("DT_").lower()
            given = (
                types_pb2.DataType.Name(tf.dtypes.as_dtype(value.dtype).as_datatype_enum).removeprefix("DT_").lower()
            )
            raise invalid_argument(f"Expects arg[{index}] to be {expected} but {given} is provided")
        try:
            return np.asarray(value, dtype=dtype)
        except (TypeError, ValueError) as error:
            raise invalid_argument(f"Input {key}: cannot convert to {dtype.name}: {error}") from error

    def _check_batch(self, arrays: dict[str, Array]) -> None:
        """With ``--enable_batching``, a request larger than max_batch_size fails as in TF Serving's batcher."""
        if self.batching is None or not arrays:
            return
        sizes = {a.shape[0] if a.ndim else 1 for a in arrays.values()}
        if len(sizes) > 1:
            raise invalid_argument("Batching session Run() input tensors must have equal 0th-dimension size")
        size = sizes.pop()
        limit = self.batching.max_batch_size
        if size > limit and not self.batching.enable_large_batch_splitting:
            raise invalid_argument(f"Task size {size} is larger than maximum input batch size {limit}")

    def _run(self, servable: Servable, signature_name: str, arrays: dict[str, Array]) -> dict[str, Array]:
        function = servable.function(signature_name)
        try:
            result = function(**{k: tf.constant(v) for k, v in arrays.items()})
        except tf.errors.OpError as error:
            raise ServingError(Code(error.error_code), _tf_message(error.message)) from error
        except (TypeError, ValueError) as error:
            raise invalid_argument(str(error)) from error
        return {key: tensor.numpy() for key, tensor in result.items()}

    # --- Classify / Regress -----------------------------------------------------------------------------------------
    def _example_signature(self, request: ModelRequest, signature_name: str) -> tuple[Servable, str, Any]:
        servable = self.manager.resolve(request)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        return servable, name, signature

    def _run_examples(self, servable: Servable, name: str, examples: list[bytes]) -> dict[str, Array]:
        if not examples:
            raise invalid_argument("Input is empty.")
        self._check_batch({"inputs": np.empty((len(examples),))})
        return self._run(servable, name, {"inputs": np.asarray(examples, dtype=object)})

    def classify(self, request: ModelRequest, signature_name: str, examples: list[bytes]) -> Classification:
        """Classify serialized tf.Examples (classifier.cc: one string input ``inputs``; ``classes`` and/or
        ``scores`` outputs of shape [batch, classes]). The method-name check is off, TF Serving's default."""
        servable, name, signature = self._example_signature(request, signature_name)
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if len(signature.outputs) not in (1, 2):
            raise invalid_argument(f"Expected one or two output Tensors, found {len(signature.outputs)}")
        if "inputs" not in signature.inputs:
            raise invalid_argument(f"No classification inputs found in SignatureDef: {_short(signature)}")
        if "classes" not in signature.outputs and "scores" not in signature.outputs:
            raise invalid_argument(
                'Expected classification signature outputs to contain at least one of "classes" or "scores". '
                f"Signature was: {_short(signature)}"
            )
        outputs = self._run_examples(servable, name, examples)
        classes, scores = outputs.get("classes"), outputs.get("scores")
        count = len(examples)
        for key, array, kind in (("classes", classes, "DT_STRING"), ("scores", scores, "DT_FLOAT")):
            if array is None:
                continue
            if array.ndim != 2:
                raise invalid_argument(f"Expected Tensor shape: [batch_size num_classes] but got {list(array.shape)}")
            if (kind == "DT_STRING") != (array.dtype.kind in "OS") or (
                kind == "DT_FLOAT" and array.dtype != np.float32
            ):
                raise invalid_argument(f"Expected {key} Tensor of {kind}. Got: {array.dtype.name}")
            if array.shape[0] != count:
                raise invalid_argument(f"Expected {key} output batch size of {count}. Got: {array.shape[0]}")
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise invalid_argument(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
            )
        width = (classes if classes is not None else scores).shape[1]  # type: ignore[union-attr]
        rows = []
        for i in range(count):
            rows.append(
                [
                    (
                        bytes(classes[i, j]).decode("utf-8", "replace") if classes is not None else "",
                        float(scores[i, j]) if scores is not None else 0.0,
                    )
                    for j in range(width)
                ]
            )
        return Classification(servable.name, servable.version, name, rows)

    def regress(self, request: ModelRequest, signature_name: str, examples: list[bytes]) -> Regression:
        """Regress serialized tf.Examples (regressor.cc: one string input ``inputs``, one output ``outputs`` of
        shape [batch] or [batch, 1])."""
        servable, name, signature = self._example_signature(request, signature_name)
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        if len(signature.outputs) != 1:
            raise invalid_argument("Expected one output Tensor.")
        if "inputs" not in signature.inputs:
            raise invalid_argument(f"No regression inputs found in SignatureDef: {_short(signature)}")
        if "outputs" not in signature.outputs:
            raise invalid_argument(f"No regression outputs found in SignatureDef: {_short(signature)}")
        values = self._run_examples(servable, name, examples)["outputs"]
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise invalid_argument(
                "Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                f"{list(values.shape)}"
            )
        if values.shape[0] != len(examples):
            raise invalid_argument(
                f"Input batch size did not match output batch size: {len(examples)} vs. {values.shape[0]}"
            )
        return Regression(servable.name, servable.version, name, [float(v) for v in values.reshape(-1)])

    # --- Metadata and status ----------------------------------------------------------------------------------------
    def metadata(self, request: ModelRequest, fields: list[str]) -> Metadata:
        if not fields:
            raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
        for field in fields:
            if field != "signature_def":
                raise invalid_argument(f"Metadata field {field} is not supported")
        servable = self.manager.resolve(request)
        return Metadata(servable.name, servable.version, servable.signature_defs)

    def status(self, name: str, version: int | None) -> list[VersionStatus]:
        if not name:
            raise invalid_argument("Missing model name in request.")
        return self.manager.status(name, version)

    def reload(self, config: ServerConfig, wait_seconds: float | None) -> None:
        self.manager.apply_config(config, wait_seconds=wait_seconds)
