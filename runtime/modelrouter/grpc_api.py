"""The gRPC adapter: TF Serving's PredictionService and ModelService.GetModelStatus, forwarded as bytes.

Predict, Classify and Regress whose ``model_spec`` names no version and no label get ``version_label`` set by the
routing core (only ``model_spec`` is decoded, the rest of the request is written back as received); GetModelMetadata
and GetModelStatus go through unchanged. The served version and label go back as trailing metadata
(``x-croupier-model-version``, ``x-croupier-model-label``). The caller's deadline is passed on; codes and messages of
the model server's errors reach the caller as they are; a model server that cannot be reached is UNAVAILABLE with a
message that says so. The caller's own metadata (``authorization`` for a model server behind an authenticating proxy,
tracing headers) goes on to the model server; transport headers (``:``-pseudo headers, ``grpc-*``, ``user-agent``,
``te``, ``content-type``) are gRPC's own and are not copied."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError

from croupier.runtime.modelrouter.errors import RouterError, upstream_unavailable
from croupier.runtime.modelrouter.listen import GRPC_OPTIONS
from croupier.runtime.modelrouter.model_spec import RequestHead
from croupier.runtime.modelrouter.rest import route_headers
from croupier.runtime.modelrouter.routing import PIN_HEADER, Route, pinned_version
from croupier.runtime.modelrouter.service import RouterService

PREDICTION_SERVICE = "tensorflow.serving.PredictionService"
MODEL_SERVICE = "tensorflow.serving.ModelService"
ROUTED = frozenset({"Predict", "Classify", "Regress"})
TRANSPORT_METADATA = frozenset({"user-agent", "te", "content-type", "host"})
PASSED = {
    PREDICTION_SERVICE: ("Predict", "Classify", "Regress", "GetModelMetadata"),
    MODEL_SERVICE: ("GetModelStatus",),
}

Handler = Callable[[bytes, grpc.aio.ServicerContext[bytes, bytes]], Awaitable[bytes]]


class GrpcRouter:
    def __init__(self, service: RouterService, upstream: str, *, unit_header: str, timeout_seconds: float) -> None:
        self.service = service
        self.upstream = upstream
        self.unit_header = unit_header.lower()
        self.timeout = timeout_seconds
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Any] = {}
        self._trailers: dict[Route, tuple[tuple[str, str], ...]] = {}

    async def open(self) -> None:
        self._channel = grpc.aio.insecure_channel(self.upstream, options=list(GRPC_OPTIONS))
        for service, methods in PASSED.items():
            for method in methods:
                path = f"/{service}/{method}"
                self._calls[path] = self._channel.unary_unary(path)  # bytes in, bytes out

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        return [
            grpc.method_handlers_generic_handler(
                service,
                {method: grpc.unary_unary_rpc_method_handler(self._handler(service, method)) for method in methods},
            )
            for service, methods in PASSED.items()
        ]

    def _handler(self, service: str, method: str) -> Handler:
        path = f"/{service}/{method}"
        routed = method in ROUTED

        call = self._calls[path]

        async def forward(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
            start = time.perf_counter()
            route: Route | None = None
            if routed:
                try:
                    request, route = self._route(request, context)
                except RouterError as error:
                    await context.abort(error.code, error.message)
            try:
                answer: bytes = await call(
                    request, timeout=self._timeout(context), metadata=forwarded_metadata(context.invocation_metadata())
                )
            except grpc.aio.AioRpcError as error:
                code, details = error.code(), error.details() or ""
                if code == grpc.StatusCode.UNAVAILABLE:
                    details = upstream_unavailable(self.upstream, details).message
                if route is not None:
                    context.set_trailing_metadata(self._trailer(route))
                    self.service.record(route, code.name, time.perf_counter() - start)
                await context.abort(code, details)
            if route is not None:
                context.set_trailing_metadata(self._trailer(route))
                self.service.record(route, "OK", time.perf_counter() - start)
            return answer

        return forward

    def _route(self, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> tuple[bytes, Route | None]:
        try:
            head = RequestHead.FromString(request)
        except DecodeError:
            return request, None  # the model server answers the malformed request itself
        spec = head.model_spec
        choice = spec.WhichOneof("version_choice")
        version = spec.version.value if choice == "version" else None
        label = spec.version_label if choice == "version_label" else None
        unit, pin_value = self._unit_and_pin(context)
        pin = None
        if choice is None:
            try:
                pin = pinned_version(pin_value)
            except ValueError as error:
                raise RouterError(grpc.StatusCode.INVALID_ARGUMENT, str(error)) from error
        route = self.service.route(spec.name, version if pin is None else pin, label, unit)
        if pin is not None:
            spec.version.value = pin
            return head.SerializeToString(), route
        if not route.rewrite:
            return request, route
        spec.version_label = route.label
        return head.SerializeToString(), route

    def _unit_and_pin(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> tuple[str | None, str | None]:
        """The unit key and the pin header from the call's metadata, in one pass (the first of each)."""
        unit: str | None = None
        pin: str | None = None
        for found, value in context.invocation_metadata() or ():
            if found == self.unit_header and unit is None:
                unit = value if isinstance(value, str) else value.decode(errors="replace")
            elif found == PIN_HEADER and pin is None:
                pin = value if isinstance(value, str) else value.decode(errors="replace")
        return unit, pin

    def _trailer(self, route: Route) -> tuple[tuple[str, str], ...]:
        trailer = self._trailers.get(route)
        if trailer is None:
            trailer = self._trailers[route] = tuple(route_headers(route).items())
        return trailer

    def _timeout(self, context: grpc.aio.ServicerContext[bytes, bytes]) -> float:
        remaining = context.time_remaining()
        return self.timeout if remaining is None else min(self.timeout, max(remaining, 0.0))


def forwarded_metadata(metadata: Any) -> tuple[tuple[str, str | bytes], ...]:
    """The caller's metadata the model server should see: everything but gRPC's own transport headers."""
    return tuple(
        (key, value)
        for key, value in metadata or ()
        if not key.startswith((":", "grpc-")) and key not in TRANSPORT_METADATA
    )
