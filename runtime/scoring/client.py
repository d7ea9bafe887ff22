"""TF Serving's PredictionService over ``grpc.aio``: Predict and GetModelMetadata, on TF Serving's own method paths
with Croupier's mirror of the messages (`prediction_service.proto`). One channel per scorer, reused; ``close`` ends it.
"""

from __future__ import annotations

import grpc

from croupier.runtime.scoring import prediction_service_pb2 as pb

PREDICT = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA = "/tensorflow.serving.PredictionService/GetModelMetadata"


class PredictionClient:
    def __init__(self, address: str) -> None:
        self.address = address
        self._channel = grpc.aio.insecure_channel(address)
        self._predict = self._channel.unary_unary(
            PREDICT,
            request_serializer=pb.PredictRequest.SerializeToString,
            response_deserializer=pb.PredictResponse.FromString,
        )
        self._metadata = self._channel.unary_unary(
            GET_MODEL_METADATA,
            request_serializer=pb.GetModelMetadataRequest.SerializeToString,
            response_deserializer=pb.GetModelMetadataResponse.FromString,
        )

    async def predict(self, request: pb.PredictRequest, timeout: float) -> pb.PredictResponse:
        """Raises ``grpc.aio.AioRpcError`` (DEADLINE_EXCEEDED after ``timeout`` seconds)."""
        response: pb.PredictResponse = await self._predict(request, timeout=timeout)
        return response

    async def metadata(self, spec: pb.ModelSpec, timeout: float) -> pb.GetModelMetadataResponse:
        ask = pb.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])
        response: pb.GetModelMetadataResponse = await self._metadata(ask, timeout=timeout)
        return response

    async def close(self) -> None:
        await self._channel.close()
