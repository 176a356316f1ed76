"""Who am I."""

from __future__ import annotations

from fastapi import APIRouter

from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.json_bodies import BoundedJSONRoute
from kuberth.http.schemas import Me, Namespace

router = APIRouter(route_class=BoundedJSONRoute, prefix="/api/v1", tags=["users"])


@router.get(
    "/me", summary="The signed-in user and their namespaces", responses=error_responses(401)
)
def me(principal: CurrentPrincipal, services: ServicesDep) -> Me:
    # An operator's own namespaces, not every tenant's.
    _, namespaces = services.namespaces.list(principal, own=True)
    return Me(
        github_id=principal.github_id,
        login=principal.login,
        name=principal.name,
        is_admin=principal.is_admin,
        namespaces=[Namespace.model_validate(n) for n in namespaces],
    )
