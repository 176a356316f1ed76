"""Your signed-in browsers: see them, and end any of them (sign-out ends the current one)."""

from __future__ import annotations

from fastapi import Request, Response

from kuberth.http.dependencies import SESSION_KEY, CurrentPrincipal, RowId, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routing import api_router
from kuberth.http.schemas import WebSession, WebSessionList

router = api_router(prefix="/api/v1/sessions", tags=["sessions"])


@router.get(
    "",
    summary="Your signed-in browsers, the most recently used first",
    responses=error_responses(401),
)
async def list_sessions(
    request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> WebSessionList:
    found = await services.users.web_sessions(principal, current=request.session.get(SESSION_KEY))
    return WebSessionList(items=[WebSession.model_validate(s) for s in found])


@router.delete(
    "/{session_id}",
    summary="End one of your sessions: every copy of its cookie stops working",
    status_code=204,
    responses=error_responses(401, 404),
)
async def end_session(
    session_id: RowId,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> Response:
    await services.users.end_web_session(principal, session_id)
    return Response(status_code=204)
