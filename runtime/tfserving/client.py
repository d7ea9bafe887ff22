"""TF Serving over ``grpc.aio``: ``ModelService.GetModelStatus`` (which versions of a model TF Serving manages, and
their states) and ``PredictionService.GetModelMetadata`` by label (which version a label resolves to now).

The request and response are Croupier's mirror of TF Serving's messages (same field numbers), sent on TF Serving's own
method path, so any TF Serving (the ``tensorflow/serving`` image, or the local model server of the development tools)
answers it. One channel per address, reused across calls; ``close`` ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import grpc

from croupier.api.modeldeployment import ModelVersionState
from croupier.runtime.tfserving import model_service_pb2 as pb

GET_MODEL_STATUS = "/tensorflow.serving.ModelService/GetModelStatus"
GET_MODEL_METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"

_STATES = {
    pb.ModelVersionStatus.START: ModelVersionState.START,
    pb.ModelVersionStatus.LOADING: ModelVersionState.LOADING,
    pb.ModelVersionStatus.AVAILABLE: ModelVersionState.AVAILABLE,
    pb.ModelVersionStatus.UNLOADING: ModelVersionState.UNLOADING,
    pb.ModelVersionStatus.END: ModelVersionState.END,
}


class ErrorCode(IntEnum):
    """``tensorflow.error.Code``: what a version's StatusProto carries (the same numbers as gRPC status codes)."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16

    @classmethod
    def of(cls, value: int) -> ErrorCode:
        try:
            return cls(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass(frozen=True)
class VersionStatus:
    """One version as GetModelStatus reports it."""

    version: int
    state: ModelVersionState
    error_code: ErrorCode = ErrorCode.OK
    error_message: str = ""

    @property
    def failed(self) -> bool:
        return self.error_code != ErrorCode.OK


class ModelServerError(Exception):
    """The call failed: ``code`` is the gRPC status code, ``details`` TF Serving's (or gRPC's) own text."""

    def __init__(self, address: str, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"GetModelStatus on {address} failed: {code.name}: {details}")
        self.address = address
        self.code = code
        self.details = details


def request(model: str, version: int | None = None, label: str | None = None) -> pb.GetModelStatusRequest:
    """A GetModelStatusRequest for every version of ``model``, one ``version``, or the version a ``label`` names."""
    if version is not None and label is not None:
        raise ValueError("ask for a version or a label, not both")
    spec = pb.ModelSpec(name=model)
    if version is not None:
        spec.version.value = version
    if label is not None:
        spec.version_label = label
    return pb.GetModelStatusRequest(model_spec=spec)


def versions_of(response: pb.GetModelStatusResponse) -> tuple[VersionStatus, ...]:
    """The response as typed values, by version."""
    found = [
        VersionStatus(
            version=int(entry.version),
            state=_STATES.get(entry.state, ModelVersionState.UNKNOWN),
            error_code=ErrorCode.of(entry.status.error_code),
            error_message=entry.status.error_message,
        )
        for entry in response.model_version_status
    ]
    return tuple(sorted(found, key=lambda v: v.version))


class ModelServiceClient:
    """An async client of one TF Serving address (``host:port`` of its gRPC port)."""

    def __init__(self, address: str, *, timeout: float = 2.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel = grpc.aio.insecure_channel(address)
        self._get_model_status = self._channel.unary_unary(
            GET_MODEL_STATUS,
            request_serializer=pb.GetModelStatusRequest.SerializeToString,
            response_deserializer=pb.GetModelStatusResponse.FromString,
        )
        self._get_model_metadata = self._channel.unary_unary(
            GET_MODEL_METADATA,
            request_serializer=pb.GetModelMetadataRequest.SerializeToString,
            response_deserializer=pb.GetModelMetadataResponse.FromString,
        )

    async def get_model_status(self, model: str, version: int | None = None) -> tuple[VersionStatus, ...]:
        """Every version of ``model`` TF Serving manages (or just ``version``); raises ModelServerError."""
        try:
            response = await self._get_model_status(request(model, version), timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise ModelServerError(self.address, error.code(), error.details() or "") from error
        if not isinstance(response, pb.GetModelStatusResponse):  # pragma: no cover - the deserializer guarantees it
            raise TypeError(f"unexpected response {type(response).__name__}")
        return versions_of(response)

    async def resolve_label(self, model: str, label: str) -> int:
        """The version TF Serving serves for ``label`` now (GetModelMetadata by label: GetModelStatus ignores labels);
        raises ModelServerError (e.g. INVALID_ARGUMENT for a label it does not know yet)."""
        spec = pb.ModelSpec(name=model, version_label=label)
        ask = pb.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        try:
            response = await self._get_model_metadata(ask, timeout=self.timeout)
        except grpc.aio.AioRpcError as error:
            raise ModelServerError(self.address, error.code(), error.details() or "") from error
        if not isinstance(response, pb.GetModelMetadataResponse):  # pragma: no cover - the deserializer guarantees it
            raise TypeError(f"unexpected response {type(response).__name__}")
        return int(response.model_spec.version.value)

    async def close(self) -> None:
        await self._channel.close()
