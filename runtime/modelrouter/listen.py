"""The router's listening sockets: both adapters are asyncio protocols served the same way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

BACKLOG = 4096


async def listen(factory: Callable[[], asyncio.Protocol], host: str, port: int) -> tuple[asyncio.Server, int]:
    """Serve ``factory``'s protocol on ``host:port`` (0 picks a free port); the server and the port it got."""
    server = await asyncio.get_running_loop().create_server(factory, host, port, backlog=BACKLOG)
    return server, int(server.sockets[0].getsockname()[1])
