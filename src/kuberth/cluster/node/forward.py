"""A TCP forwarder from the host end of the node's veth to the API server on 127.0.0.1.

Why: the plane's API server listens on loopback only, which the node's network namespace cannot
reach. This process listens on the veth's host address and copies bytes both ways; TLS passes
through untouched (the node's kubeconfigs name a host the serving certificate has).

It accepts only what arrives on the veth (``SO_BINDTODEVICE``): Linux would otherwise take a
packet for the veth's address on any interface, and the API server, which listens on loopback
only, must not become reachable from the host's network through it.

Run as ``python -m kuberth.cluster.node.forward DEVICE LISTEN_HOST LISTEN_PORT TARGET_HOST
TARGET_PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys

_CHUNK = 64 * 1024


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


def listener(device: str, listen: tuple[str, int]) -> socket.socket:
    """A listening socket on ``listen`` that takes connections arriving on ``device`` only."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    sock.bind(listen)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def serve(device: str, listen: tuple[str, int], target: tuple[str, int]) -> None:
    """Accept on ``listen`` (via ``device``) and connect each client to ``target`` until
    SIGTERM."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_server(handle, sock=listener(device, listen))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()


def main(argv: list[str]) -> None:
    device, listen_host, listen_port, target_host, target_port = argv
    asyncio.run(serve(device, (listen_host, int(listen_port)), (target_host, int(target_port))))


if __name__ == "__main__":
    main(sys.argv[1:])
