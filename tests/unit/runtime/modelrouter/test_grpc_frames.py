"""The gRPC framing the relay reads itself: one length-prefixed message per unary call, grpc-timeout both ways,
compressed messages, and the status of an HTTP answer without grpc-status."""

from __future__ import annotations

import gzip
import zlib

import grpc
import pytest

from croupier.runtime.modelrouter.grpc_frames import (
    FrameError,
    Message,
    decompress,
    encode_message,
    format_timeout,
    frame,
    parse_timeout,
    single_message,
    status_of_http,
)

METHOD = "/tensorflow.serving.PredictionService/Predict"


def test_one_message_round_trips() -> None:
    payload = b"\x0a\x08\x0a\x06ranker"
    assert single_message(frame(payload), METHOD) == Message(False, payload)
    assert single_message(frame(b""), METHOD) == Message(False, b"")


def test_a_large_message_round_trips() -> None:
    payload = bytes(range(256)) * (40 << 10)  # 10 MiB: larger than any HTTP/2 frame or default window
    body = frame(payload)
    assert body[1:5] == len(payload).to_bytes(4, "big")
    assert single_message(body, METHOD).payload == payload


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        (b"", grpc.StatusCode.INVALID_ARGUMENT, "no message"),
        (b"\x00\x00\x00", grpc.StatusCode.INTERNAL, "truncated gRPC message prefix (3 of 5 bytes)"),
        (b"\x02\x00\x00\x00\x00", grpc.StatusCode.INTERNAL, "invalid gRPC message flag 2"),
        (b"\x00\x00\x00\x00\x09abc", grpc.StatusCode.INTERNAL, "truncated gRPC message (3 of 9 bytes)"),
        (frame(b"a") + frame(b"b"), grpc.StatusCode.UNIMPLEMENTED, "streaming is not offered"),
        (frame(b"a") + b"\x00", grpc.StatusCode.UNIMPLEMENTED, "more than one message"),
    ],
)
def test_bad_frames_are_named(body: bytes, code: grpc.StatusCode, words: str) -> None:
    with pytest.raises(FrameError) as raised:
        single_message(body, METHOD)
    assert raised.value.code == code
    assert words in raised.value.message and METHOD in raised.value.message


def test_compressed_messages_are_read() -> None:
    payload = b"model_spec" * 100
    assert decompress(Message(True, gzip.compress(payload)), b"gzip", METHOD) == payload
    assert decompress(Message(True, zlib.compress(payload)), b"deflate", METHOD) == payload
    assert decompress(Message(False, payload), b"gzip", METHOD) == payload  # flag 0: not compressed whatever the header
    with pytest.raises(FrameError) as unknown:
        decompress(Message(True, payload), b"snappy", METHOD)
    assert unknown.value.code == grpc.StatusCode.UNIMPLEMENTED and "snappy" in unknown.value.message
    with pytest.raises(FrameError) as identity:
        decompress(Message(True, payload), None, METHOD)
    assert identity.value.code == grpc.StatusCode.INTERNAL
    with pytest.raises(FrameError) as broken:
        decompress(Message(True, b"not gzip"), b"gzip", METHOD)
    assert "does not decompress" in broken.value.message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(b"1H", 3600.0), (b"2M", 120.0), (b"30S", 30.0), (b"250m", 0.25), (b"99999999u", 99.999999), (b"7n", 7e-9)],
)
def test_grpc_timeout_is_read(value: bytes, seconds: float) -> None:
    assert parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"10", b"10s", b"123456789S", b"-1S", b"1.5S", b"10 S"])
def test_a_bad_grpc_timeout_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="grpc-timeout must be 1 to 8 digits and a unit"):
        parse_timeout(value)


@pytest.mark.parametrize("seconds", [0.0, 1e-9, 0.004999, 0.25, 1.0, 29.5, 600.0, 1e6])
def test_a_timeout_passed_on_is_never_shorter(seconds: float) -> None:
    value = format_timeout(seconds)
    assert len(value) <= 9
    assert parse_timeout(value) >= seconds
    assert parse_timeout(value) <= max(seconds * 1.000001, 1e-9) + 1e-9


def test_http_answers_without_grpc_status_map_as_grpc_says() -> None:
    assert status_of_http(404) == grpc.StatusCode.UNIMPLEMENTED
    assert status_of_http(503) == grpc.StatusCode.UNAVAILABLE
    assert status_of_http(401) == grpc.StatusCode.UNAUTHENTICATED
    assert status_of_http(418) == grpc.StatusCode.UNKNOWN


def test_grpc_message_is_percent_encoded() -> None:
    assert encode_message("plain text: ok") == b"plain text: ok"
    assert encode_message("100% ünïcode\n") == b"100%25 %C3%BCn%C3%AFcode%0A"
