"""The app's routers: their order is free because no two of them answer the same request."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.routing import APIRoute

from kuberth.http import pages
from kuberth.http.app import ROUTERS, create_app
from kuberth.http.planned import plan
from kuberth.settings import Settings
from tests.kubeconfigs import unreachable


def test_no_two_routers_answer_the_same_request() -> None:
    """create_app puts the busiest routers first (routes are tried in order); that is only safe
    while no request could match routes of two routers. The pages are one group: their own
    order matters (see :mod:`kuberth.http.pages`), and they come after the API."""
    groups = [list(router.routes) for router in ROUTERS]
    groups.append([route for router in pages.ROUTERS for route in router.routes])
    owned = [
        (number, route)
        for number, routes in enumerate(groups)
        for route in routes
        if isinstance(route, APIRoute)
    ]
    assert len(owned) > 60
    overlaps = [
        (route.path, other.path)
        for group, route in owned
        for other_group, other in owned
        if group != other_group
        and route.methods & other.methods
        and other.path_regex.match(re.sub(r"\{[^}]+\}", "x1", route.path))
    ]
    assert overlaps == []


def test_the_app_serves_every_routers_routes_in_order(tmp_path: Path) -> None:
    """The routers' routes are adopted into the app's own list, the API's before the pages'."""
    settings = Settings(
        environment="development",
        kubeconfig=unreachable(tmp_path / "kubeconfig"),
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
    )
    app = create_app(settings)
    ours = [route for route in app.routes if isinstance(route, APIRoute)]
    expected = [
        route
        for router in (*ROUTERS, *pages.ROUTERS)
        for route in router.routes
        if isinstance(route, APIRoute)
    ]
    assert ours[: len(expected)] == expected
    assert [route.path for route in ours[len(expected) :]] == ["/metrics"]


def test_every_route_without_a_body_is_planned() -> None:
    """Kuberth's bodiless routes (every read, every delete, the sign-in redirects, the logs) are
    handled by their plan (:mod:`kuberth.http.planned`), not by FastAPI solving them anew on
    every request: none declares anything a plan does not cover."""
    routes = [
        route
        for router in (*ROUTERS, *pages.ROUTERS)
        for route in router.routes
        if isinstance(route, APIRoute) and route.body_field is None
    ]
    assert len(routes) > 40
    assert [route.path for route in routes if plan(route) is None] == []
