"""The stock TF Serving gRPC servicers (tensorflow_serving.apis) over the model service.

PredictionService: Predict, GetModelMetadata, Classify, Regress (MultiInference is not implemented: the stock
servicer answers UNIMPLEMENTED). ModelService: GetModelStatus, HandleReloadConfigRequest.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from croupier.modelserver.config import ConfigError, server_config_from_proto
from croupier.modelserver.errors import Code, ServingError, invalid_argument
from croupier.modelserver.manager import ModelRequest
from croupier.modelserver.metrics import ServingMetrics
from croupier.modelserver.service import ModelService

T = TypeVar("T")


def model_request(spec: Any) -> ModelRequest:
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return ModelRequest(spec.name, version=spec.version.value)
    if choice == "version_label":
        return ModelRequest(spec.name, label=spec.version_label)
    return ModelRequest(spec.name)


def tensor_value(key: str, proto: Any) -> Any:
    """A request TensorProto as an array; a malformed one is the client's error (INVALID_ARGUMENT)."""
    try:
        return tf.make_ndarray(proto)
    except (TypeError, ValueError) as error:
        raise invalid_argument(f"Input {key}: not a valid tensor: {error}") from error


def serialized_examples(message: Any) -> list[bytes]:
    """``tensorflow.serving.Input`` as serialized tf.Examples; a context is merged into each example (TF Serving
    concatenates the serialized context and example, which protobuf parses as a merge)."""
    kind = message.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in message.example_list.examples]
    if kind == "example_list_with_context":
        context = message.example_list_with_context.context.SerializeToString()
        return [context + e.SerializeToString() for e in message.example_list_with_context.examples]
    return []


def _answer_spec(spec: Any, name: str, version: int, signature_name: str) -> None:
    spec.name = name
    spec.version.value = version
    spec.signature_name = signature_name


def _abort(context: grpc.ServicerContext, error: ServingError) -> NoReturn:
    context.abort(getattr(grpc.StatusCode, error.code.name), error.message)
    raise AssertionError("grpc abort returned")  # pragma: no cover - abort always raises


class PredictionServicer(prediction_service_pb2_grpc.PredictionServiceServicer):  # type: ignore[misc]
    def __init__(self, service: ModelService, metrics: ServingMetrics) -> None:
        self.service = service
        self.metrics = metrics

    def _measured(self, api: str, model_name: str, context: grpc.ServicerContext, call: Callable[[], T]) -> T:
        start = time.perf_counter()
        try:
            result = call()
        except ServingError as error:
            self.metrics.record(model_name, api, "GRPC", error.code, 0.0)
            _abort(context, error)
        self.metrics.record(model_name, api, "GRPC", Code.OK, (time.perf_counter() - start) * 1e6)
        return result

    def Predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run() -> Any:
            inputs = {key: tensor_value(key, proto) for key, proto in request.inputs.items()}
            prediction = self.service.predict(
                model_request(request.model_spec),
                request.model_spec.signature_name,
                inputs,
                list(request.output_filter),
                exact_dtypes=True,
            )
            response = predict_pb2.PredictResponse()
            response.model_spec.name = prediction.name
            response.model_spec.version.value = prediction.version
            response.model_spec.signature_name = prediction.signature_name
            for key, value in prediction.outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response

        return self._measured("Predict", request.model_spec.name, context, run)

    def GetModelMetadata(self, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            metadata = self.service.metadata(model_request(request.model_spec), list(request.metadata_field))
        except ServingError as error:
            _abort(context, error)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = metadata.name
        response.model_spec.version.value = metadata.version
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        for name, signature in metadata.signature_defs.items():
            signature_map.signature_def[name].CopyFrom(signature)
        response.metadata["signature_def"].Pack(signature_map)
        return response

    def Classify(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run() -> Any:
            result = self.service.classify(
                model_request(request.model_spec), request.model_spec.signature_name, serialized_examples(request.input)
            )
            response = classification_pb2.ClassificationResponse()
            _answer_spec(response.model_spec, result.name, result.version, result.signature_name)
            for row in result.results:
                classifications = response.result.classifications.add()
                for label, score in row:
                    classifications.classes.add(label=label, score=score)
            return response

        return self._measured("Classify", request.model_spec.name, context, run)

    def Regress(self, request: Any, context: grpc.ServicerContext) -> Any:
        def run() -> Any:
            result = self.service.regress(
                model_request(request.model_spec), request.model_spec.signature_name, serialized_examples(request.input)
            )
            response = regression_pb2.RegressionResponse()
            _answer_spec(response.model_spec, result.name, result.version, result.signature_name)
            for value in result.values:
                response.result.regressions.add(value=value)
            return response

        return self._measured("Regress", request.model_spec.name, context, run)


class ModelServicer(model_service_pb2_grpc.ModelServiceServicer):  # type: ignore[misc]
    def __init__(self, service: ModelService, *, reload_wait_seconds: float | None) -> None:
        self.service = service
        self.reload_wait_seconds = reload_wait_seconds

    def GetModelStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        if not request.HasField("model_spec"):
            _abort(context, invalid_argument("Missing ModelSpec"))
        spec = request.model_spec
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        try:
            statuses = self.service.status(spec.name, version)
        except ServingError as error:
            _abort(context, error)
        response = get_model_status_pb2.GetModelStatusResponse()
        for status in statuses:
            entry = response.model_version_status.add()
            entry.version = status.version
            entry.state = int(status.state)
            if status.error is not None:
                entry.status.error_code = int(status.error.code)
                entry.status.error_message = status.error.message
        return response

    def HandleReloadConfigRequest(self, request: Any, context: grpc.ServicerContext) -> Any:
        response = model_management_pb2.ReloadConfigResponse()
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. Only ModelConfigList is "
                    "currently supported"
                )
            try:
                config = server_config_from_proto(request.config, source="ReloadConfigRequest")
            except ConfigError as error:
                raise invalid_argument(str(error)) from error
            self.service.reload(config, self.reload_wait_seconds)
        except ServingError as error:
            _abort(context, error)
        response.status.error_code = 0
        return response


def add_servicers(server: grpc.Server, prediction: PredictionServicer, model: ModelServicer) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(prediction, server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(model, server)
