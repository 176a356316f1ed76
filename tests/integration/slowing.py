"""A slow network, and a way to see that the event loop runs on while a service waits on it.

:class:`SlowProxy` is a TCP proxy (TLS passes through it untouched) whose every answer comes
``delay`` seconds late; it runs on an event loop in a thread of its own, so a service that held
the test's loop while it waited would still get its answers, only the loop's other work would
stop: :func:`ticks_while` counts that other work.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from pathlib import Path
from types import TracebackType
from typing import TypeVar
from urllib.parse import urlsplit

import anyio
import yaml

T = TypeVar("T")

#: How late the tests' slow proxies answer, each time.
DELAY = 0.2


class SlowProxy:
    """``with SlowProxy(port, delay=...) as proxy``: 127.0.0.1:``proxy.port`` answers as the
    upstream port does, each chunk of the answers ``delay`` seconds late."""

    def __init__(self, upstream_port: int, *, delay: float) -> None:
        self.upstream_port = upstream_port
        self.delay = delay
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    def __enter__(self) -> SlowProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the slow proxy did not start")
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _value: BaseException | None,
        _traceback: TracebackType | None,
    ) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    async def _serve(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        server = await asyncio.start_server(self._connect, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)

        async def pipe(
            source: asyncio.StreamReader, sink: asyncio.StreamWriter, delay: float
        ) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    await asyncio.sleep(delay)
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, 0), pipe(up_reader, writer, self.delay))


def server_port(kubeconfig: Path) -> int:
    """The port of the API server a kubeconfig names."""
    config = yaml.safe_load(kubeconfig.read_text())
    server: str = config["clusters"][0]["cluster"]["server"]
    port = urlsplit(server).port
    assert port is not None
    return port


def through(kubeconfig: Path, port: int, path: Path) -> Path:
    """A copy of ``kubeconfig`` (written to ``path``) that reaches its API server through
    127.0.0.1:``port`` (the API server's certificate names 127.0.0.1)."""
    config = yaml.safe_load(kubeconfig.read_text())
    for cluster in config["clusters"]:
        cluster["cluster"]["server"] = f"https://127.0.0.1:{port}"
    path.write_text(yaml.safe_dump(config))
    return path


async def ticks_while(work: Awaitable[T], *, every: float = 0.01) -> tuple[T, int]:
    """``work``'s answer, and how many times a task sleeping ``every`` seconds woke meanwhile:
    about its duration / ``every`` when the work left the loop free, none when it held it."""
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await anyio.sleep(every)
            ticks += 1

    async with anyio.create_task_group() as group:
        group.start_soon(tick)
        answer = await work
        group.cancel_scope.cancel()
    return answer, ticks
