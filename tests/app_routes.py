"""The app's routes, included routers walked into (FastAPI keeps an included router whole)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from fastapi.routing import APIRoute


def api_routes(routes: Iterable[object]) -> Iterator[APIRoute]:
    """Every APIRoute below ``routes`` (an app's or a router's)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from api_routes(included.routes)
