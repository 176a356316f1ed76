"""The dashboard: the user's namespaces with their apps, and the form for a new namespace."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from kuberth.exceptions import KuberthError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.rendering import error_page, render
from kuberth.http.routing import page_router
from kuberth.http.services import Services
from kuberth.services.principal import Principal

router = page_router()


async def dashboard_page(
    request: Request, principal: Principal, services: Services, **context: Any
) -> Response:
    """Also the answer to a new namespace's form with errors (``errors``, ``form``)."""
    # From the database and watch-fed copies: no Kubernetes request (see services/dashboard.py).
    namespaces = await services.dashboard.namespaces(principal)
    personal = next((n.name for n in namespaces if n.personal), None)
    hint = f"{personal}-<suffix>" if personal else None
    return render(
        request, "dashboard.html", principal=principal, namespaces=namespaces, hint=hint, **context
    )


@router.get("/dashboard")
async def dashboard(request: Request, principal: SignedIn, services: ServicesDep) -> Response:
    try:
        return await dashboard_page(request, principal, services)
    except KuberthError as error:
        return error_page(request, principal, error)
