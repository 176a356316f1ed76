"""The landing page for signed-out visitors, and signing out (signing in is GitHub's, see
:mod:`kuberth.http.routes.auth`)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from kuberth.http.dependencies import SESSION_KEY, ServicesDep
from kuberth.http.pages.forms import checked_form
from kuberth.http.pages.rendering import redirect, render
from kuberth.http.routing import page_router

router = page_router()


@router.get("/")
async def landing(request: Request) -> Response:
    if request.session.get("user_id"):
        return redirect("/dashboard")
    return render(request, "landing.html")


@router.post("/logout")
async def logout(request: Request, services: ServicesDep) -> Response:
    """The form is checked first: signed out, there is nobody to find (and nothing to end)."""
    await checked_form(request)
    await services.users.aend_session(request.session.get(SESSION_KEY))
    request.session.clear()
    return redirect("/")
