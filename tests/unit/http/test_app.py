"""The app's routers: their order is free because no two of them answer the same request."""

from __future__ import annotations

import re
from pathlib import Path

from kuberth.http.app import create_app
from kuberth.settings import Settings
from tests.app_routes import api_routes
from tests.kubeconfigs import unreachable


def test_no_two_routers_answer_the_same_request(tmp_path: Path) -> None:
    """create_app puts the busiest routers first (FastAPI tries routers in order); that is only
    safe while no request could match routes of two routers."""
    settings = Settings(
        environment="development",
        kubeconfig=unreachable(tmp_path / "kubeconfig"),
        database_url=f"sqlite:///{tmp_path}/kuberth.db",
    )
    app = create_app(settings)
    owned = [
        (id(router.original_router), route)
        for router in app.routes
        if hasattr(router, "original_router")
        for route in api_routes([router])
    ]
    assert len(owned) > 60
    overlaps = [
        (route.path, other.path)
        for router, route in owned
        for other_router, other in owned
        if router != other_router
        and route.methods & other.methods
        and other.path_regex.match(re.sub(r"\{[^}]+\}", "x1", route.path))
    ]
    assert overlaps == []
