"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import kuberth
from kuberth.http.errors import install_error_handlers
from kuberth.http.routes import health
from kuberth.services.health import HealthService
from kuberth.settings import Settings
from kuberth.storage.kubernetes.client import make_api_client
from kuberth.storage.kubernetes.cluster import ClusterStorage


def create_app(settings: Settings) -> FastAPI:
    """Build the app; the Kubernetes client is made once, when the app starts."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        api_client = make_api_client(settings)
        cluster = ClusterStorage(
            api_client,
            timeout=settings.kubernetes_request_timeout,
            retry_after=settings.kubernetes_retry_after,
        )
        app.state.health = HealthService(probes={"kubernetes": cluster})
        try:
            yield
        finally:
            api_client.close()  # type: ignore[no-untyped-call]

    app = FastAPI(
        title="Kuberth",
        version=kuberth.__version__,
        description="Self-service, multi-tenant Kubernetes namespaces for GitHub users.",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    app.include_router(health.router)
    return app
