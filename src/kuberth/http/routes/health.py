"""Liveness and readiness endpoints for probes and load balancers.

Neither waits for a worker thread, which tenants' requests may all hold: both run on the event
loop, ``/readyz`` asking the API server and the database there, and it answers within a bound.
"""

from __future__ import annotations

import anyio
from pydantic import BaseModel

from kuberth.exceptions import UnavailableError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.errors import ErrorBody
from kuberth.http.routing import plain_router

router = plain_router(tags=["health"])


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", summary="Liveness: the process is up")
async def healthz() -> HealthStatus:
    """Async on purpose: a plain ``def`` would wait for a worker thread, which tenants' requests
    may all hold (a liveness probe timing out restarts the pod)."""
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the Kubernetes API server and the database answer",
    responses={503: {"model": ErrorBody, "description": "A dependency is unreachable"}},
)
async def readyz(services: ServicesDep) -> HealthStatus:
    # Each check is bounded by its own timeout (the Kubernetes request timeout); the whole answer
    # by a second more. A check still waiting then is cancelled, and this answer is a 503.
    bound = services.settings.kubernetes_request_timeout + 1
    with anyio.move_on_after(bound):
        checks = await services.health.acheck_ready()
        return HealthStatus(status="ok", checks=checks)
    raise UnavailableError(
        f"the readiness checks did not finish within {bound:g} s",
        retry_after=services.settings.kubernetes_retry_after,
    )
