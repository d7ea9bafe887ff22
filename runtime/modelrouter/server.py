"""One router process: the REST and gRPC adapters on one event loop (their sockets opened by ``listen``), the routing
file watched beside them."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass

import grpc
import structlog

from croupier.runtime.metrics import RuntimeMetrics
from croupier.runtime.modelrouter.grpc_api import GrpcRouter
from croupier.runtime.modelrouter.listen import listen_grpc
from croupier.runtime.modelrouter.rest import RestRouter
from croupier.runtime.modelrouter.service import RouterService
from croupier.runtime.modelrouter.table_file import TableFile
from croupier.runtime.settings import RouterSettings

log = structlog.get_logger("croupier.runtime.modelrouter")


@dataclass(frozen=True)
class Bound:
    rest_port: int
    grpc_port: int


class RouterServer:
    def __init__(self, settings: RouterSettings, metrics: RuntimeMetrics) -> None:
        self.settings = settings
        self.service = RouterService(metrics)
        self.table_file = TableFile(settings.routing_file, self.service.replace, self.service.record_reload)
        self.rest = RestRouter(
            self.service,
            settings.upstream_rest,
            unit_header=settings.unit_header,
            timeout_seconds=settings.upstream_timeout_seconds,
            max_body_bytes=settings.max_body_bytes,
        )
        self.grpc = GrpcRouter(
            self.service,
            settings.upstream_grpc,
            unit_header=settings.unit_header,
            timeout_seconds=settings.upstream_timeout_seconds,
        )
        self._grpc_server: grpc.aio.Server | None = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> Bound:
        s = self.settings
        self.table_file.check()
        self._watch = asyncio.create_task(self.table_file.watch(s.poll_seconds))
        rest_port = await self.rest.start(s.host, s.rest_port)
        await self.grpc.open()
        self._grpc_server, grpc_port = await listen_grpc(self.grpc.handlers(), s.host, s.grpc_port)
        log.info(
            "routing",
            host=s.host,
            rest_port=rest_port,
            grpc_port=grpc_port,
            upstream_rest=s.upstream_rest,
            upstream_grpc=s.upstream_grpc,
            routing_file=str(s.routing_file),
        )
        return Bound(rest_port, grpc_port)

    async def stop(self) -> None:
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        if self._grpc_server is not None:
            await self._grpc_server.stop(grace=5)
        await self.grpc.close()
        await self.rest.close()


async def serve(settings: RouterSettings, metrics: RuntimeMetrics, ready: asyncio.Event | None = None) -> None:
    """Run until SIGTERM or SIGINT."""
    server = RouterServer(settings, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        log.info("stopping")
        await server.stop()
