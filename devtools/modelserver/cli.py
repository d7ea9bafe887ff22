"""``croupier-modelserver``: parse TF Serving's flags, load the models, serve gRPC and REST until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent import futures

import grpc
from aiohttp import web

from croupier.modelserver.config import ConfigError, ServerConfig, load_server_config
from croupier.modelserver.errors import ServingError
from croupier.modelserver.flags import FlagError, Settings, parse
from croupier.modelserver.grpcapi import ModelServicer, PredictionServicer, add_servicers
from croupier.modelserver.manager import ModelManager
from croupier.modelserver.metrics import ServingMetrics
from croupier.modelserver.rest import RestApi
from croupier.modelserver.service import ModelService


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Poller:
    """TF Serving's two polls: version folders every --file_system_poll_wait_seconds, and the config file every
    --model_config_file_poll_wait_seconds (a changed file is a full reload)."""

    def __init__(
        self,
        settings: Settings,
        reload: Callable[[ServerConfig], None],
        rescan: Callable[[], None],
        stop: threading.Event,
    ) -> None:
        self.settings = settings
        self.stop = stop
        self._reload = reload
        self._rescan = rescan

    def run(self) -> None:
        settings = self.settings
        last_text = settings.config_file.read_text() if settings.config_file else None
        now = time.monotonic()
        next_config = now + settings.config_poll_seconds if settings.config_poll_seconds else None
        next_scan = now + settings.file_system_poll_seconds if settings.file_system_poll_seconds else None
        while True:
            due = min(t for t in (next_config, next_scan) if t is not None)
            if self.stop.wait(max(0.0, due - time.monotonic())):
                return
            now = time.monotonic()
            if next_config is not None and settings.config_file is not None and now >= next_config:
                next_config = now + settings.config_poll_seconds
                try:
                    text = settings.config_file.read_text()
                    if text != last_text:
                        last_text = text
                        self._reload(load_server_config(settings.config_file))
                        _log(f"Reloaded model config from {settings.config_file}")
                except (OSError, ConfigError, ServingError) as error:
                    _log(f"Failed to reload model config {settings.config_file}: {error}")
            if next_scan is not None and now >= next_scan:
                next_scan = now + settings.file_system_poll_seconds
                self._rescan()


def serve(settings: Settings) -> int:
    manager = ModelManager(
        load_delay_seconds=settings.load_delay_seconds,
        max_load_retries=settings.max_load_retries,
        load_retry_interval_seconds=settings.load_retry_interval_seconds,
        allow_version_labels_for_unavailable_models=settings.allow_labels_for_unavailable,
    )
    manager.start()
    try:
        # Like TF Serving, load the initial config before opening the ports; a model that does not load is fatal.
        manager.apply_config(settings.config)
    except ServingError as error:
        _log(f"Failed to start the model server: {error.code.name}: {error.message}")
        manager.stop()
        return 1
    service = ModelService(manager, batching=settings.batching)
    metrics = ServingMetrics()
    workers = futures.ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2), thread_name_prefix="predict")
    grpc_server = grpc.server(workers, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])
    add_servicers(grpc_server, PredictionServicer(service, metrics), ModelServicer(service, reload_wait_seconds=None))
    grpc_address = f"{settings.host}:{settings.grpc_port}"
    if grpc_server.add_insecure_port(grpc_address) == 0:
        _log(f"Failed to bind the gRPC port {grpc_address}")
        return 1
    grpc_server.start()
    _log(f"Running gRPC ModelServer at {grpc_address} ...")

    stop = threading.Event()
    if settings.file_system_poll_seconds or settings.config_poll_seconds:
        poller = Poller(settings, manager.apply_config, manager.rescan, stop)
        threading.Thread(target=poller.run, name="modelserver-poll", daemon=True).start()

    async def main() -> None:
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, done.set)
        runner = None
        if settings.rest_port:
            api = RestApi(
                service,
                metrics,
                executor=workers,
                timeout_seconds=settings.rest_timeout_seconds,
                prometheus_path=settings.prometheus_path,
            )
            runner = web.AppRunner(api.app(), access_log=None)
            await runner.setup()
            await web.TCPSite(runner, settings.host, settings.rest_port).start()
            _log(f"Exporting HTTP/REST API at:{settings.host}:{settings.rest_port} ...")
        await done.wait()
        if runner is not None:
            await runner.cleanup()

    try:
        asyncio.run(main())
    finally:
        stop.set()
        grpc_server.stop(grace=2).wait(timeout=5)
        manager.stop()
        workers.shutdown(wait=False, cancel_futures=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse(list(sys.argv[1:] if argv is None else argv))
    except FlagError as error:
        _log(f"croupier-modelserver: {error}")
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        return serve(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
