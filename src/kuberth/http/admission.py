"""The admission webhook's own HTTPS listener.

The API server calls webhooks over TLS only, while Kuberth's pages and API are usually served
plain behind an ingress that terminates TLS; so the webhook gets a listener of its own, with the
certificate from :class:`kuberth.services.admission.WebhookRegistration`. It is a second uvicorn
server on the app's own event loop (a task of its lifespan): its answers await the same services
as the API's requests, and no thread of its own waits on the database or Kubernetes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Body, FastAPI

from kuberth.services.admission import IngressAdmission, WebhookTls
from kuberth.services.builders.admission import HOST_RELEASE_PATH, HOST_REVIEW_PATH

log = logging.getLogger(__name__)

Review = dict[str, Any]


def admission_app(admission: IngressAdmission) -> FastAPI:
    app = FastAPI(
        title="Kuberth admission webhook", docs_url=None, redoc_url=None, openapi_url=None
    )

    async def answer(review: Review) -> Review:
        response = await admission.areview(review.get("request") or {})
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }

    @app.post(HOST_REVIEW_PATH)
    async def review_hosts(review: Review = Body()) -> Review:  # noqa: B008 - FastAPI's idiom
        return await answer(review)

    @app.post(HOST_RELEASE_PATH)
    async def release_hosts(review: Review = Body()) -> Review:  # noqa: B008 - FastAPI's idiom
        return await answer(review)

    return app


class _Server(uvicorn.Server):
    """A uvicorn server that leaves the process's signals alone: they are Kuberth's main
    server's, and this one stops with the app (uvicorn would take SIGTERM and SIGINT over while
    it runs, and raise them again when it stops)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AdmissionServer:
    """Serves :func:`admission_app` over TLS on ``host:port``, on the running event loop, until
    stopped."""

    def __init__(
        self, admission: IngressAdmission, tls: WebhookTls, *, host: str, port: int
    ) -> None:
        self._files = tempfile.TemporaryDirectory(prefix="kuberth-admission-")
        directory = Path(self._files.name)
        cert, key = directory / "tls.crt", directory / "tls.key"
        key.touch(mode=0o600)
        key.write_bytes(tls.serving.key_pem)
        cert.write_bytes(tls.serving.cert_pem)
        config = uvicorn.Config(
            admission_app(admission),
            ssl_certfile=str(cert),
            ssl_keyfile=str(key),
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        # Bound here, so the port listens (and queues calls) from now on: nothing to wait for.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((host, port))
            self._socket.listen(128)
        except OSError:
            self._socket.close()
            self._files.cleanup()
            raise
        self._serving: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Serve as a task of the running loop (the socket already listens and queues calls)."""
        self._serving = asyncio.get_running_loop().create_task(
            self._server.serve(sockets=[self._socket]), name="kuberth-admission"
        )
        log.info("admission webhook listening on %s (TLS)", self._socket.getsockname())

    async def stop(self) -> None:
        """Stop serving: calls in flight get a few seconds to finish, as uvicorn gives them."""
        self._server.should_exit = True
        if self._serving is not None:
            await asyncio.wait({self._serving}, timeout=10)
            self._serving.cancel()
        self.close()

    def close(self) -> None:
        """Close the socket and remove the key's files (after :meth:`stop`, or never started)."""
        self._socket.close()
        self._files.cleanup()
