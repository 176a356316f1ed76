"""The operators' page: every tenant, a page at a time (a tenant is refused it)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from kuberth.exceptions import KuberthError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.rendering import error_page, render
from kuberth.http.routing import page_router

router = page_router()

_PER_PAGE = 50


@router.get("/admin")
async def admin_page(
    request: Request, principal: SignedIn, services: ServicesDep, offset: int = 0
) -> Response:
    offset = max(0, offset)
    try:
        total, tenants = await services.admin.tenants(principal, offset=offset, limit=_PER_PAGE)
    except KuberthError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "admin.html",
        principal=principal,
        tenants=tenants,
        total=total,
        offset=offset,
        limit=_PER_PAGE,
    )
