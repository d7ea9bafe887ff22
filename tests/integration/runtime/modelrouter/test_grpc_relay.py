"""The router's gRPC relay against a real gRPC server standing in for the model server (grpcio, in this process), so
the faults a model server rarely shows can be made at will: a slow answer (deadline), an error with its own code and
message, an upstream that goes away mid-call, large messages both ways; and against callers that send what a unary
method cannot take (two messages, a broken frame, a method that is not offered, not gRPC at all). The router runs as a
real process (`croupier-runtime router`)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import ResponseReceived, StreamEnded, TrailersReceived
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from croupier.modelserver.process import free_port

from .test_router import RouterProcess

PREDICT = "/tensorflow.serving.PredictionService/Predict"


class StandIn:
    """A PredictionService that answers by the requested model's name: ``echo`` sends the request's inputs back with
    the model_spec it received and the caller's ``authorization`` as trailing metadata; ``slow`` answers after 3 s;
    ``fail`` is NOT_FOUND with its own message; ``die`` stops the server in the middle of the call."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=8),
            options=[("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)],
        )
        handler = grpc.unary_unary_rpc_method_handler(
            self.predict,
            request_deserializer=predict_pb2.PredictRequest.FromString,
            response_serializer=predict_pb2.PredictResponse.SerializeToString,
        )
        self.server.add_generic_rpc_handlers(
            [grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {"Predict": handler})]
        )
        self.server.add_insecure_port(f"127.0.0.1:{self.port}")
        self.deadlines: list[float | None] = []

    def predict(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.model_spec.name
        self.deadlines.append(context.time_remaining())
        if name == "slow":
            time.sleep(3)
        elif name == "fail":
            context.abort(grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(fail)")
        elif name == "die":
            threading.Thread(target=self.server.stop, args=(0,)).start()
            time.sleep(2)
        metadata = dict(context.invocation_metadata())
        context.set_trailing_metadata((("seen-authorization", str(metadata.get("authorization", ""))),))
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for key, tensor in request.inputs.items():
            response.outputs[key].CopyFrom(tensor)
        return response


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[tuple[RouterProcess, StandIn]]:
    stand_in = StandIn()
    stand_in.server.start()
    router = RouterProcess(
        tmp_path / "routing.json", f"http://127.0.0.1:{free_port()}", f"127.0.0.1:{stand_in.port}", tmp_path / "log"
    )
    router.routing_file.write_text('{"models": {"echo": {"stable": 1, "canary": 2, "canaryWeight": 100}}}')
    router.start()
    try:
        yield router, stand_in
    finally:
        router.stop()
        stand_in.server.stop(0)


def _request(name: str, size: int = 0) -> Any:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    if size:
        request.inputs["x"].dtype = 7  # DT_STRING
        request.inputs["x"].string_val.append(b"\xab" * size)
    return request


def test_large_messages_metadata_and_the_route_pass(relay: tuple[RouterProcess, StandIn]) -> None:
    router, _ = relay
    with grpc.insecure_channel(router.grpc_target, options=[("grpc.max_receive_message_length", -1)]) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for size in (0, 100_000, 20 << 20):  # 20 MiB: beyond the relay's 16 MiB window both ways
            response, call = stub.Predict.with_call(
                _request("echo", size), timeout=30, metadata=(("authorization", "Bearer abc"),)
            )
            assert response.model_spec.version_label == "canary"  # the router chose the label (weight 100)
            assert len(response.outputs["x"].string_val[0]) == size if size else "x" not in response.outputs
            trailing = dict(call.trailing_metadata())
            assert trailing["seen-authorization"] == "Bearer abc"  # the caller's metadata reached the model server
            assert trailing["x-croupier-model-version"] == "2" and trailing["x-croupier-model-label"] == "canary"
    assert router.metric("croupier_router_requests_total", model="echo", version="2", code="OK") == 3


def test_codes_and_messages_pass_through(relay: tuple[RouterProcess, StandIn]) -> None:
    router, _ = relay
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(_request("fail"), timeout=10)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "Servable not found for request: Latest(fail)"
    assert router.metric("croupier_router_requests_total", model="other", code="NOT_FOUND") == 1


def test_the_callers_deadline_is_passed_on_and_kept(relay: tuple[RouterProcess, StandIn]) -> None:
    router, stand_in = relay
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        stub.Predict(_request("echo"), timeout=7)
        start = time.monotonic()
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(_request("slow"), timeout=0.5)
        assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - start < 2.5
    seen = stand_in.deadlines[0]
    assert seen is not None and 5 < seen <= 7  # not the router's own 30 s
    end = time.monotonic() + 10
    while time.monotonic() < end:  # counted when the router's own timer fires, at the caller's deadline
        if router.metric("croupier_router_requests_total", model="other", code="DEADLINE_EXCEEDED") == 1:
            break
        time.sleep(0.1)
    assert router.metric("croupier_router_requests_total", model="other", code="DEADLINE_EXCEEDED") == 1


def test_a_model_server_going_away_mid_call_is_unavailable(relay: tuple[RouterProcess, StandIn]) -> None:
    router, _ = relay
    with grpc.insecure_channel(router.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.Predict(_request("die"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "is unreachable" in (raised.value.details() or "")
        with pytest.raises(grpc.RpcError) as after:  # and later calls, while it stays away
            stub.Predict(_request("echo"), timeout=10)
        assert after.value.code() == grpc.StatusCode.UNAVAILABLE and "is unreachable" in (after.value.details() or "")


def test_streaming_is_not_offered(relay: tuple[RouterProcess, StandIn]) -> None:
    router, _ = relay
    with grpc.insecure_channel(router.grpc_target) as channel:
        streaming = channel.stream_unary(PREDICT)
        two = [_request("echo").SerializeToString()] * 2
        with pytest.raises(grpc.RpcError) as raised:
            streaming(iter(two), timeout=10)
        assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "streaming is not offered" in (raised.value.details() or "")
        other = channel.unary_unary("/tensorflow.serving.ModelService/HandleReloadConfigRequest")
        with pytest.raises(grpc.RpcError) as refused:
            other(b"", timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "Method not found" in (refused.value.details() or "")


def _raw_call(target: str, headers: list[tuple[bytes, bytes]], body: bytes) -> dict[bytes, bytes]:
    """One call over a hand-driven HTTP/2 connection: the response headers and trailers, merged."""
    host, port = target.rsplit(":", 1)
    connection = H2Connection(config=H2Configuration(client_side=True, header_encoding=None))
    connection.initiate_connection()
    answer: dict[bytes, bytes] = {}
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, headers)
        connection.send_data(stream, body, end_stream=True)
        sock.sendall(connection.data_to_send())
        ended = False
        while not ended:
            data = sock.recv(65536)
            assert data, "the router closed the connection"
            for event in connection.receive_data(data):
                if isinstance(event, ResponseReceived | TrailersReceived):
                    answer.update(dict(event.headers))
                ended = ended or (isinstance(event, StreamEnded) and event.stream_id == stream)
            sock.sendall(connection.data_to_send())
    return answer


def _headers(path: str = PREDICT, content_type: bytes = b"application/grpc") -> list[tuple[bytes, bytes]]:
    return [
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", path.encode()),
        (b":authority", b"router"),
        (b"te", b"trailers"),
        (b"content-type", content_type),
    ]


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b"\x00\x00\x00\x00\x40abc", b"13", b"truncated gRPC message (3 of 64 bytes)"),
        (b"\x07\x00\x00\x00\x00", b"13", b"invalid gRPC message flag 7"),
        (b"", b"3", b"the request carried no message"),
    ],
)
def test_bad_frames_get_a_status_that_names_them(
    relay: tuple[RouterProcess, StandIn], body: bytes, status: bytes, words: bytes
) -> None:
    router, _ = relay
    answer = _raw_call(router.grpc_target, _headers(), body)
    assert answer[b"grpc-status"] == status and words in answer[b"grpc-message"]


def test_a_bad_timeout_and_not_grpc_are_refused(relay: tuple[RouterProcess, StandIn]) -> None:
    router, _ = relay
    bad_timeout = _raw_call(router.grpc_target, [*_headers(), (b"grpc-timeout", b"soon")], b"")
    assert bad_timeout[b"grpc-status"] == b"3" and b"grpc-timeout must be" in bad_timeout[b"grpc-message"]
    assert _raw_call(router.grpc_target, _headers(content_type=b"application/json"), b"{}")[b":status"] == b"415"
