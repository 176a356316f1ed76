"""Liveness and readiness endpoints for probes and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from kuberth.http.dependencies import ServicesDep
from kuberth.http.errors import ErrorBody
from kuberth.http.json_bodies import BoundedJSONRoute

router = APIRouter(route_class=BoundedJSONRoute, tags=["health"])


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: the Kubernetes API server and the database answer",
    responses={503: {"model": ErrorBody, "description": "A dependency is unreachable"}},
)
def readyz(services: ServicesDep) -> HealthStatus:
    return HealthStatus(status="ok", checks=services.health.check_ready())
