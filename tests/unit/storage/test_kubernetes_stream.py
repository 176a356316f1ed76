"""A streamed log on the event loop, against a local stand-in for the API server: lines however
the chunks fall, refusals translated, the upstream response closed when the reader leaves."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from kubernetes import client

from kuberth.exceptions import ForbiddenError, KubernetesUnavailableError, NotFoundError
from kuberth.storage.kubernetes.api import Identity, KubernetesApi

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def api_server(handler: Handler) -> AsyncIterator[KubernetesApi]:
    """A KubernetesApi whose server is ``handler`` on a loopback port (plain HTTP)."""
    app = web.Application()
    app.router.add_get("/{path:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    configuration = client.Configuration(host=f"http://127.0.0.1:{port}")
    api = KubernetesApi(client.ApiClient(configuration), timeout=5, retry_after=7)
    try:
        yield api
    finally:
        await api.aclose()
        await runner.cleanup()


async def read_all(api: KubernetesApi, identity: Identity | None = None) -> list[str]:
    async with api.stream_lines(
        "/api/v1/namespaces/a/pods/p/log", query={"follow": True}, identity=identity, what="pod p"
    ) as lines:
        return [line async for line in lines]


def test_lines_come_whole_however_the_chunks_fall() -> None:
    seen: dict[str, str] = {}
    long = "x" * 300_000  # past aiohttp's own line limit

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.update(request.headers)
        seen.update(request.query)
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for chunk in (b"one\r", b"\ntw", b"o\n", b"\xc3", b"\xa9t\xc3\xa9\n\n", long.encode()):
            await response.write(chunk)
            await asyncio.sleep(0.01)
        await response.write(b"\nlast\xff")
        return response

    async def scenario() -> list[str]:
        async with api_server(handler) as api:
            return await read_all(api, Identity("alice", ("tenants",)))

    assert asyncio.run(scenario()) == ["one", "two", "été", "", long, "last\ufffd"]
    assert seen["follow"] == "true"
    assert seen["Accept"] == "text/plain, */*"
    assert seen["Impersonate-User"] == "alice"
    assert seen["Impersonate-Group"] == "tenants"


@pytest.mark.parametrize(("status", "expected"), [(403, ForbiddenError), (404, NotFoundError)])
def test_a_refusal_is_its_typed_error(status: int, expected: type[Exception]) -> None:
    async def handler(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"kind": "Status", "message": "no"}, status=status)

    async def scenario() -> list[str]:
        async with api_server(handler) as api:
            return await read_all(api)

    with pytest.raises(expected):
        asyncio.run(scenario())


def test_leaving_the_context_closes_the_upstream_response() -> None:
    closed = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        await response.prepare(request)
        try:
            while True:  # a log that never ends
                await response.write(b"line\n")
                await asyncio.sleep(0.01)
        except ConnectionError:
            closed.set()
        return response

    async def scenario() -> None:
        async with api_server(handler) as api:
            async with api.stream_lines("/log", query={}) as lines:
                assert await anext(lines) == "line"
            await asyncio.wait_for(closed.wait(), timeout=5)

    asyncio.run(scenario())


def test_an_unreachable_server_is_unavailable() -> None:
    async def scenario() -> None:
        with socket.socket() as closed:
            closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
            configuration = client.Configuration(host=f"http://127.0.0.1:{closed.getsockname()[1]}")
            api = KubernetesApi(client.ApiClient(configuration), timeout=5, retry_after=7)
            try:
                with pytest.raises(KubernetesUnavailableError, match="the stream of pod p failed"):
                    await read_all(api)
            finally:
                await api.aclose()

    asyncio.run(scenario())
