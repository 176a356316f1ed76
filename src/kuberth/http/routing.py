"""How routes are declared and put into the app.

Every router reads JSON bodies through :class:`~kuberth.http.json_bodies.BoundedJSONRoute`. The
API's routers (under ``/api/v1``) are rate-limited (the limit is taken by the API's principal
dependency) and document the 429 that says so; the pages' are left out of the OpenAPI document.

Routers are *adopted* rather than included: their routes join the app's own list. FastAPI 0.165
keeps an included router whole and, on every request it is tried for, re-reads the version of its
routes (walking them), matches the request against them twice (once to choose the router, once
to choose the route) and swaps its context into the scope for each route tried. For a GET of one
Deployment that was a tenth of Kuberth's CPU, about 30 µs more than one flat list of routes.
Adopting keeps each route as it was declared (its prefix, responses and route class are applied
when the route is made), so nothing else changes; only ``include_router``'s own options (a prefix
or dependencies added at inclusion, and ``app.dependency_overrides``, which reaches a route through
its inclusion) are not available, and none is used.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI

from kuberth.http.errors import error_responses
from kuberth.http.json_bodies import BoundedJSONRoute


def api_router(prefix: str, **options: Any) -> APIRouter:
    """A router of the API: rate-limited routes under ``/api/v1``."""
    assert prefix.startswith("/api/v1"), prefix
    return APIRouter(
        route_class=BoundedJSONRoute, prefix=prefix, responses=error_responses(429), **options
    )


def plain_router(**options: Any) -> APIRouter:
    """A router outside the API's rate limit: health checks and the sign-in flow."""
    return APIRouter(route_class=BoundedJSONRoute, **options)


def page_router() -> APIRouter:
    """A router of server-rendered pages, which are not part of the OpenAPI document."""
    return APIRouter(route_class=BoundedJSONRoute, include_in_schema=False)


def adopt(app: FastAPI, *routers: APIRouter) -> None:
    """Add the routers' routes to the app, in order (the first route to match a request wins)."""
    for router in routers:
        app.router.routes.extend(router.routes)
