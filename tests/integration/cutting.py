"""A TCP proxy in front of the API server whose connections a test cuts: how a watch's recovery
from a lost connection (an API server restarting, a network cut) is tested."""

from __future__ import annotations

import asyncio
import contextlib


class CuttingProxy:
    """A TCP proxy to the API server whose connections the test cuts (TLS passes through it
    untouched), and which can refuse new ones for a while, as a restarting server does."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self, *, refuse: bool) -> None:
        """Cut every connection; with ``refuse``, stop accepting new ones until :meth:`start`."""
        if refuse and self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
