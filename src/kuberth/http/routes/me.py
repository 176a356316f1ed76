"""Who am I."""

from __future__ import annotations

from fastapi import Request

from kuberth.http import csrf
from kuberth.http.dependencies import CurrentPrincipal, ServicesDep, authenticated_by_cookie
from kuberth.http.errors import error_responses
from kuberth.http.routing import api_router
from kuberth.http.schemas import Me, Namespace

router = api_router(prefix="/api/v1", tags=["users"])


@router.get(
    "/me", summary="The signed-in user and their namespaces", responses=error_responses(401)
)
async def me(request: Request, principal: CurrentPrincipal, services: ServicesDep) -> Me:
    # An operator's own namespaces, not every tenant's.
    _, namespaces = await services.namespaces.alist(principal, own=True)
    return Me(
        github_id=principal.github_id,
        login=principal.login,
        name=principal.name,
        is_admin=principal.is_admin,
        namespaces=[Namespace.model_validate(n) for n in namespaces],
        # Only to the cookie's holder: another site's script cannot read this answer.
        csrf_token=csrf.session_token(request) if authenticated_by_cookie(request) else None,
    )
