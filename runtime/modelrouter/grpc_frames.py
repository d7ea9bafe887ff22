"""gRPC over HTTP/2, the parts the relay reads and writes itself (PROTOCOL-HTTP2.md of the gRPC repository): the
length-prefixed message, ``grpc-timeout``, and the status an HTTP answer without ``grpc-status`` maps to. Pure
functions: no sockets, no HTTP/2 state."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import grpc

PREFIX = 5  # compressed flag (1 byte) + length (4 bytes, big-endian)
_TIMEOUT_UNITS = {b"H": 3600.0, b"M": 60.0, b"S": 1.0, b"m": 1e-3, b"u": 1e-6, b"n": 1e-9}
_MAX_TIMEOUT_DIGITS = 8
CODE_NAMES: dict[int, str] = {code.value[0]: code.name for code in grpc.StatusCode}
CODE_NUMBERS: dict[str, int] = {name: number for number, name in CODE_NAMES.items()}


class FrameError(ValueError):
    """A request body that is not exactly one gRPC message; ``code`` is the status to answer with."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Message:
    compressed: bool
    payload: bytes


def frame(payload: bytes, *, compressed: bool = False) -> bytes:
    return (b"\x01" if compressed else b"\x00") + len(payload).to_bytes(4, "big") + payload


def single_message(body: bytes, method: str) -> Message:
    """The one message of a unary call's request body. Raises FrameError naming what is wrong: no message, a
    truncated one, a flag that is neither 0 nor 1, or more than one message (streaming is not offered)."""
    size = len(body)
    if size == 0:
        raise FrameError(grpc.StatusCode.INVALID_ARGUMENT, f"{method}: the request carried no message")
    if size < PREFIX:
        raise FrameError(grpc.StatusCode.INTERNAL, f"{method}: truncated gRPC message prefix ({size} of 5 bytes)")
    flag = body[0]
    if flag > 1:
        raise FrameError(grpc.StatusCode.INTERNAL, f"{method}: invalid gRPC message flag {flag} (0 or 1)")
    length = int.from_bytes(body[1:PREFIX], "big")
    end = PREFIX + length
    if end > size:
        raise FrameError(
            grpc.StatusCode.INTERNAL, f"{method}: truncated gRPC message ({size - PREFIX} of {length} bytes)"
        )
    if end < size:
        raise FrameError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"{method} is unary: the request carried more than one message (streaming is not offered)",
        )
    return Message(flag == 1, body[PREFIX:])


def decompress(message: Message, encoding: bytes | None, method: str) -> bytes:
    """A compressed message's payload (gzip and deflate, the encodings gRPC's own implementations offer)."""
    if not message.compressed:
        return message.payload
    name = (encoding or b"identity").decode("latin-1")
    wbits = {"gzip": 31, "deflate": 15}.get(name)
    if wbits is None:
        code = grpc.StatusCode.INTERNAL if name == "identity" else grpc.StatusCode.UNIMPLEMENTED
        raise FrameError(code, f"{method}: a compressed message with grpc-encoding {name!r} cannot be read")
    try:
        return zlib.decompress(message.payload, wbits)
    except zlib.error as error:
        raise FrameError(
            grpc.StatusCode.INTERNAL, f"{method}: the {name} message does not decompress: {error}"
        ) from error


def parse_timeout(value: bytes) -> float:
    """``grpc-timeout`` (1 to 8 digits and a unit: H M S m u n) in seconds. Raises ValueError naming the problem."""
    digits, unit = value[:-1], value[-1:]
    if not digits.isdigit() or len(digits) > _MAX_TIMEOUT_DIGITS or unit not in _TIMEOUT_UNITS:
        raise ValueError(f"grpc-timeout must be 1 to 8 digits and a unit (H, M, S, m, u, n), got {value[:32]!r}")
    return int(digits) * _TIMEOUT_UNITS[unit]


def format_timeout(seconds: float) -> bytes:
    """``seconds`` as ``grpc-timeout``, in the finest unit that fits 8 digits (rounded up: never shorter)."""
    seconds = max(seconds, 0.0)
    for unit, scale in ((b"n", 1e-9), (b"u", 1e-6), (b"m", 1e-3), (b"S", 1.0), (b"M", 60.0)):
        count = math.ceil(round(seconds / scale, 6))  # rounded first: 0.25 / 1e-6 is 250000.00000000003
        if count < 10**_MAX_TIMEOUT_DIGITS:
            return b"%d%s" % (max(count, 1), unit)
    return b"%dH" % min(math.ceil(seconds / 3600.0), 10**_MAX_TIMEOUT_DIGITS - 1)


def status_of_http(status: int) -> grpc.StatusCode:
    """The gRPC status of an HTTP answer that carries no ``grpc-status`` (http-grpc-status-mapping.md)."""
    return {
        400: grpc.StatusCode.INTERNAL,
        401: grpc.StatusCode.UNAUTHENTICATED,
        403: grpc.StatusCode.PERMISSION_DENIED,
        404: grpc.StatusCode.UNIMPLEMENTED,
        429: grpc.StatusCode.UNAVAILABLE,
        502: grpc.StatusCode.UNAVAILABLE,
        503: grpc.StatusCode.UNAVAILABLE,
        504: grpc.StatusCode.UNAVAILABLE,
    }.get(status, grpc.StatusCode.UNKNOWN)


def encode_message(text: str) -> bytes:
    """``grpc-message``: percent-encoded UTF-8 outside printable ASCII (and ``%`` itself)."""
    out = bytearray()
    for byte in text.encode():
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)
