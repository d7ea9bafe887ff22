"""The operator's API client under a burst: requests that queue for one of its connections do not time out, a request
the server does not answer does (a local HTTP server on 127.0.0.1 stands in for the API server)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from croupier.operator.core import kube
from croupier.operator.core.kube import KubeClient, KubeError

pytestmark = pytest.mark.integration


async def slow_api_server(answer_after: float) -> tuple[web.AppRunner, str]:
    async def get(request: web.Request) -> web.Response:
        await asyncio.sleep(answer_after)
        return web.json_response({"kind": "ConfigMap", "metadata": {"name": request.match_info["name"]}})

    app = web.Application()
    app.router.add_get("/api/v1/namespaces/{namespace}/configmaps/{name}", get)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


def api_client(host: str) -> KubeClient:
    configuration = client.Configuration()
    configuration.host = host
    return KubeClient(configuration, max_connections=1)


def test_requests_queued_for_a_connection_do_not_time_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", 0.5)

    async def scenario() -> list[Any]:
        runner, host = await slow_api_server(answer_after=0.2)
        api = api_client(host)
        try:
            # one connection, six requests of 0.2 s: the last waits about 1 s for the connection, twice the timeout
            return await asyncio.gather(
                *(api.get("ConfigMap", "games", f"c{i}") for i in range(6)), return_exceptions=True
            )
        finally:
            await api.aclose()
            await runner.cleanup()

    answers = asyncio.run(scenario())
    assert [a["metadata"]["name"] for a in answers] == [f"c{i}" for i in range(6)]


def test_a_request_the_server_does_not_answer_still_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kube, "REQUEST_TIMEOUT", 0.3)

    async def scenario() -> BaseException | None:
        runner, host = await slow_api_server(answer_after=5)
        api = api_client(host)
        try:
            await api.get("ConfigMap", "games", "stuck")
        except KubeError as error:
            return error
        finally:
            await api.aclose()
            await runner.cleanup()
        return None

    error = asyncio.run(scenario())
    assert isinstance(error, KubeError) and error.status == 0 and "Timeout" in error.reason
