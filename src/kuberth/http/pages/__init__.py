"""Server-rendered pages (Jinja2) for everything the API offers; forms post and redirect.

Every form that changes state carries the session's CSRF token. Pages take the caller and the
services through the API's own dependencies (:mod:`kuberth.http.dependencies`; a signed-out
visitor is sent to sign in, see :mod:`.dependencies`) and call the same services, so validation
and errors are the same; a service error becomes a field error on the form, or an error page (404
for anything that is not the caller's).

One module per area; this one puts them together, in an order that matters: routes are matched
in order, and ``/namespaces/{namespace}/{plural}`` (any kind) would otherwise catch the paths of
a namespace's own forms and of apps.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from kuberth.exceptions import ForbiddenError
from kuberth.http.pages import account, admin, apps, auth, dashboard, namespaces, workloads
from kuberth.http.pages.dependencies import NotSignedInError
from kuberth.http.pages.forms import BadFormError
from kuberth.http.pages.rendering import STATIC_PATH, error_page, templates
from kuberth.http.routing import adopt

__all__ = ["ROUTERS", "install_pages", "templates"]

STATIC = Path(__file__).parent.parent / "static"

#: The areas' routers, in the order their routes are matched.
ROUTERS = tuple(
    area.router for area in (auth, dashboard, namespaces, account, apps, workloads, admin)
)


async def _not_signed_in(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, NotSignedInError)
    return RedirectResponse(f"/auth/github/login?next={exc.target}", status_code=303)


async def _bad_form(request: Request, _: Exception) -> Response:
    error = ForbiddenError("the form has expired or did not come from Kuberth; reload the page")
    return error_page(request, None, error)


def install_pages(app: FastAPI) -> None:
    """Add the pages, their static files, and the redirect to sign-in for signed-out visitors."""
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static")
    adopt(app, *ROUTERS)
    app.add_exception_handler(NotSignedInError, _not_signed_in)
    app.add_exception_handler(BadFormError, _bad_form)
