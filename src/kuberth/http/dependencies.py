"""FastAPI dependencies: the per-process services, taken from the app's state."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from kuberth.services.health import HealthService


def _health_service(request: Request) -> HealthService:
    service: HealthService = request.app.state.health
    return service


Health = Annotated[HealthService, Depends(_health_service)]
