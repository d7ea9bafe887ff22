"""The router's listening sockets, both adapters' in one place: the same host (an IPv6 address included) and port
rules (0 picks a free port), the port each one got."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import grpc

BACKLOG = 4096
GRPC_OPTIONS = (("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1))


def address(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host and not host.startswith("[") else f"{host}:{port}"


async def listen(factory: Callable[[], asyncio.Protocol], host: str, port: int) -> tuple[asyncio.Server, int]:
    """Serve ``factory``'s protocol on ``host:port``; the server and the port it got."""
    server = await asyncio.get_running_loop().create_server(factory, host, port, backlog=BACKLOG)
    return server, int(server.sockets[0].getsockname()[1])


async def listen_grpc(handlers: Sequence[grpc.GenericRpcHandler], host: str, port: int) -> tuple[grpc.aio.Server, int]:
    """Serve gRPC ``handlers`` (no message size limit: the model server sets its own) on ``host:port``; the started
    server and the port it got. Raises OSError when the address cannot be bound."""
    server = grpc.aio.server(handlers=list(handlers), options=list(GRPC_OPTIONS))
    try:
        bound = server.add_insecure_port(address(host, port))
    except RuntimeError as error:  # grpc's "Failed to bind"
        raise OSError(f"cannot listen for gRPC on {address(host, port)}: {error}") from error
    if bound == 0:  # older grpc releases report a failed bind as port 0
        raise OSError(f"cannot listen for gRPC on {address(host, port)}")
    await server.start()
    return server, bound
