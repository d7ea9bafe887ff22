"""The transport-free core: Predict, GetModelMetadata, Classify/Regress, GetModelStatus and reload on typed values.

The gRPC servicers and the REST handlers convert their wire formats to these calls and map ``ServingError`` to their
status codes; neither sees the other's format. Messages and codes follow TF Serving (predict_util.cc,
get_model_metadata_impl.cc, classifier.cc, regressor.cc).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import tensorflow as tf
from tensorflow.core.framework import types_pb2

from croupier.modelserver.config import BatchingParameters, ServerConfig
from croupier.modelserver.errors import Code, ServingError, failed_precondition, invalid_argument
from croupier.modelserver.manager import ModelManager, ModelRequest, Servable, VersionStatus

DEFAULT_SIGNATURE = "serving_default"
PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"

Array = npt.NDArray[Any]


@dataclass(frozen=True)
class Prediction:
    name: str
    version: int
    signature_name: str
    outputs: dict[str, Array]


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
    def check_inference_signature(self, request: ModelRequest, signature_name: str, method: str) -> NoReturn:
        """Classify/Regress: SavedModels written by TF2's ``tf.saved_model.save`` carry predict signatures only; the
        same checks TF Serving makes (classifier.cc / regressor.cc, method-name check off, its default) apply."""
        servable = self.manager.resolve(request)
        name = signature_name or DEFAULT_SIGNATURE
        signature = servable.signature_defs.get(name)
        if signature is None:
            raise invalid_argument(f"No signature was found with the name: {name}")
        if len(signature.inputs) != 1:
            raise invalid_argument("Expected one input Tensor.")
        what = "classification" if method == CLASSIFY_METHOD else "regression"
        raise invalid_argument(f"Expected {what} signature method_name to be {method}. Was: {signature.method_name}")

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
