"""Liveness and readiness endpoints for probes and load balancers.

Neither waits for the worker threads tenants' requests use: ``/healthz`` runs on the event loop
alone, ``/readyz``'s blocking checks on two threads of their own, and it answers within a bound.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import Request
from pydantic import BaseModel

from kuberth.exceptions import UnavailableError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.errors import ErrorBody
from kuberth.http.routing import plain_router

router = plain_router(tags=["health"])


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


#: Threads for readiness checks: one probe at a time is usual, a second covers a slow one.
READY_THREADS = 2


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> HealthStatus:
    """Async on purpose: a plain ``def`` would wait for a worker thread, which tenants' requests
    may all hold (a liveness probe timing out restarts the pod)."""
    return HealthStatus(status="ok")


def _ready_limiter(request: Request) -> anyio.CapacityLimiter:
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "ready_limiter", None)
    if limiter is None:  # made on the loop that serves the app
        limiter = request.app.state.ready_limiter = anyio.CapacityLimiter(READY_THREADS)
    return limiter


@router.get(
    "/readyz",
    summary="Readiness: the Kubernetes API server and the database answer",
    responses={503: {"model": ErrorBody, "description": "A dependency is unreachable"}},
)
async def readyz(request: Request, services: ServicesDep) -> HealthStatus:
    # Each check is bounded by its own timeout (the Kubernetes request timeout); the whole answer
    # by a second more, waiting for a thread included. A check still running then is left to
    # finish in its thread, and this answer is a 503.
    bound = services.settings.kubernetes_request_timeout + 1
    with anyio.move_on_after(bound):
        checks = await anyio.to_thread.run_sync(
            services.health.check_ready, abandon_on_cancel=True, limiter=_ready_limiter(request)
        )
        return HealthStatus(status="ok", checks=checks)
    raise UnavailableError(
        f"the readiness checks did not finish within {bound:g} s",
        retry_after=services.settings.kubernetes_retry_after,
    )
