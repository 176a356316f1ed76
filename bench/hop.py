"""The minimal async Python hop: the floor the overhead benchmark holds Kuberth against.

    BENCH_HOP_TOKENS='{"kbt_...": 12345}' \
        python -m bench.hop KUBECONFIG CERT KEY PORT CONNECTIONS [raw|fastapi]

What any Python service in Kuberth's place has to do at the least, and nothing more: a raw ASGI
app (no framework) on uvicorn with uvloop and httptools, serving HTTPS with the benchmark's
throwaway certificate, that

* checks ``Authorization: Bearer <token>`` against a dict {token: GitHub id} (401 otherwise),
* maps the paths the benchmark calls through Kuberth to Kubernetes' own: GET of a Deployment and
  the list of Deployments, POST (Kuberth's concise body, made into a Service manifest with plain
  dicts) and DELETE of a Service under ``/api/v1/namespaces/{ns}/...``,
* forwards with one aiohttp ClientSession: keep-alive connections (CONNECTIONS of them, like the
  benchmark's concurrency), TLS to the API server with the kubeconfig's admin client certificate,
  impersonating the tenant as Kuberth does (``Impersonate-User: kuberth:<id>``,
  ``Impersonate-Group: kuberth:tenants``),
* and returns the API server's status and JSON body as they are (a DELETE's 200 and the object,
  where Kuberth answers 204).

No database, no ownership check beyond what the API server's RBAC does for the impersonated user,
no validation, no audit, no metrics: it is a floor, not a service. ``GET /healthz`` answers 200.
Served as ``fastapi``, the same hop is a FastAPI app (:mod:`bench.fastapi_hop`): the floor of
any FastAPI service in Kuberth's place.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import ssl
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from pathlib import Path
from typing import Any

import aiohttp
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

TOKENS_VARIABLE = "BENCH_HOP_TOKENS"
#: Kubernetes' path prefix of each kind the hop serves.
GROUPS = {"deployments": "/apis/apps/v1", "services": "/api/v1"}
JSON = (b"content-type", b"application/json")
UNAUTHORIZED = 401, b'{"error":"unauthorized"}'
INVALID = 422, b'{"error":"invalid"}'


def api_server_tls(kubeconfig: Path) -> tuple[str, ssl.SSLContext]:
    """The API server's URL and a TLS context with the kubeconfig's admin client certificate."""
    from kubernetes import client, config

    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        str(kubeconfig), client_configuration=configuration
    )
    if not configuration.cert_file or not configuration.key_file:
        raise RuntimeError(f"{kubeconfig} has no client certificate to impersonate with")
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    context.load_cert_chain(configuration.cert_file, configuration.key_file)
    host: str = configuration.host
    return host, context


def service_manifest(namespace: str, body: dict[str, Any]) -> dict[str, Any]:
    """Kuberth's concise Service ({name, app, ports}) as the manifest Kuberth would send."""
    ports = [
        {
            "port": p["port"],
            "targetPort": p.get("target_port") or p["port"],
            "protocol": p.get("protocol", "TCP"),
        }
        for p in body["ports"]
    ]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": body["name"], "namespace": namespace, "labels": {"app": body["app"]}},
        "spec": {"type": "ClusterIP", "selector": {"app": body["app"]}, "ports": ports},
    }


class Hop:
    """The ASGI app. The session is made at start-up, on the server's loop."""

    def __init__(
        self, server: str, context: ssl.SSLContext, tokens: dict[str, int], connections: int
    ) -> None:
        self.server = server
        self.context = context
        self.tokens = {f"Bearer {token}".encode(): github_id for token, github_id in tokens.items()}
        self.connections = connections
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            status, body = await self.handle(scope, receive)
            headers = [JSON, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def open(self) -> None:
        connector = aiohttp.TCPConnector(
            limit=self.connections, ssl=self.context, keepalive_timeout=60
        )
        self.session = aiohttp.ClientSession(
            self.server, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
        )

    async def close(self) -> None:
        if self.session:
            await self.session.close()

    def caller(self, authorization: bytes) -> int | None:
        """The GitHub id of ``Authorization: Bearer <token>``, None if not a known token."""
        return self.tokens.get(authorization)

    async def handle(self, scope: Scope, receive: Receive) -> tuple[int, bytes]:
        method, path = scope["method"], scope["path"]
        if path == "/healthz":
            return 200, b'{"status":"ok"}'
        github_id = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                github_id = self.caller(value)
        if github_id is None:
            return UNAUTHORIZED
        # /api/v1/namespaces/{ns}/{kind}[/{name}]
        parts = path.split("/")
        if len(parts) not in (6, 7) or parts[1:4] != ["api", "v1", "namespaces"]:
            return 404, b'{"error":"not_found"}'
        namespace, kind = parts[4], parts[5]
        name = parts[6] if len(parts) == 7 else None
        if method == "POST" and kind == "services" and name is None:
            try:
                body = json.loads(await _body(receive))
            except ValueError:
                return INVALID
            return await self.forward(method, github_id, namespace, kind, name, body)
        if method not in ("GET", "DELETE"):
            return 405, b'{"error":"method_not_allowed"}'
        return await self.forward(method, github_id, namespace, kind, name)

    async def forward(
        self,
        method: str,
        github_id: int,
        namespace: str,
        kind: str,
        name: str | None = None,
        body: Any = None,
    ) -> tuple[int, bytes]:
        """Kubernetes' status and body for the request, impersonating the caller; a POST's
        ``body`` is Kuberth's concise Service."""
        if kind not in GROUPS:
            return 404, b'{"error":"not_found"}'
        target = f"{GROUPS[kind]}/namespaces/{namespace}/{kind}"
        if name is not None:
            target += f"/{name}"
        data = None
        if body is not None:
            try:
                data = json.dumps(service_manifest(namespace, body))
            except (KeyError, TypeError):
                return INVALID
        headers = {
            "Impersonate-User": f"kuberth:{github_id}",
            "Impersonate-Group": "kuberth:tenants",
        }
        if data is not None:
            headers["Content-Type"] = "application/json"
        assert self.session is not None  # made at start-up, before any request
        try:
            async with self.session.request(method, target, data=data, headers=headers) as reply:
                return reply.status, await reply.read()
        except (aiohttp.ClientError, TimeoutError):
            return 502, b'{"error":"bad_gateway"}'


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


@contextlib.contextmanager
def hop_server(
    kubeconfig: Path,
    tokens: dict[str, int],
    certificate: Path,
    key: Path,
    trust: ssl.SSLContext,
    connections: int,
    log: Path,
    served_as: str = "raw",
) -> Iterator[tuple[str, int]]:
    """The hop as its own process on a loopback port; yields (url, pid) once /healthz answers.
    ``served_as``: "raw" (the raw ASGI app) or "fastapi" (:mod:`bench.fastapi_hop`).
    (The benchmark's side of it: imported here, so that the hop's process does not load them.)"""
    import httpx

    from bench.stack import stop
    from kuberth.cluster.plane import free_port

    port = free_port()
    url = f"https://127.0.0.1:{port}"
    arguments = [*map(str, (kubeconfig, certificate, key, port, connections)), served_as]
    env = {**os.environ, TOKENS_VARIABLE: json.dumps(tokens)}
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.hop", *arguments],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the hop exited with {process.returncode}; see {log}")
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz", timeout=2, verify=trust).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the hop did not answer /healthz in 60 s; see {log}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        stop(process)


def main(arguments: list[str]) -> None:
    kubeconfig, certificate, key, port, connections, *served_as = arguments
    server, context = api_server_tls(Path(kubeconfig))
    tokens = {token: int(i) for token, i in json.loads(os.environ[TOKENS_VARIABLE]).items()}
    hop = Hop(server, context, tokens, int(connections))
    app: Any = hop
    if served_as == ["fastapi"]:
        from bench.fastapi_hop import create_app

        app = create_app(hop)
    elif served_as not in ([], ["raw"]):
        raise SystemExit(f"served as {served_as[0]!r}: raw or fastapi")
    gc.freeze()  # what the kubeconfig's loading left lives as long as the process, as in Kuberth
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(port),
        loop="uvloop",
        http="httptools",
        lifespan="on",
        ssl_certfile=certificate,
        ssl_keyfile=key,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
