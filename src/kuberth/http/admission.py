"""The admission webhook's own HTTPS listener.

The API server calls webhooks over TLS only, while Kuberth's pages and API are usually served
plain behind an ingress that terminates TLS; so the webhook gets a listener of its own, with the
certificate from :class:`kuberth.services.admission.WebhookRegistration`. It runs uvicorn in a
thread with its own event loop: the answers use the same (blocking) services as the API.
"""

from __future__ import annotations

import logging
import socket
import tempfile
import threading
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

    def answer(review: Review) -> Review:
        response = admission.review(review.get("request") or {})
        return {
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": response,
        }

    @app.post(HOST_REVIEW_PATH)
    def review_hosts(review: Review = Body()) -> Review:  # noqa: B008 - FastAPI's idiom
        return answer(review)

    @app.post(HOST_RELEASE_PATH)
    def release_hosts(review: Review = Body()) -> Review:  # noqa: B008 - FastAPI's idiom
        return answer(review)

    return app


class AdmissionServer:
    """Serves :func:`admission_app` over TLS on ``host:port`` until stopped."""

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
        )
        self._server = uvicorn.Server(config)
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
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._socket]},
            name="kuberth-admission",
            daemon=True,
        )

    def start(self) -> None:
        self._thread.start()
        log.info("admission webhook listening on %s (TLS)", self._socket.getsockname())

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._socket.close()
        self._files.cleanup()
