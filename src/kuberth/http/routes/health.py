"""Liveness and readiness endpoints for probes and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from kuberth.http.dependencies import Health
from kuberth.http.errors import ErrorBody

router = APIRouter(tags=["health"])


class HealthStatus(BaseModel):
    status: str
    checks: dict[str, str] = {}


@router.get("/healthz", summary="Liveness: the process is up")
def healthz() -> HealthStatus:
    return HealthStatus(status="ok")


@router.get(
    "/readyz",
    summary="Readiness: every dependency (the Kubernetes API server) answers",
    responses={503: {"model": ErrorBody, "description": "A dependency is unreachable"}},
)
def readyz(health: Health) -> HealthStatus:
    return HealthStatus(status="ok", checks=health.check_ready())
