"""The user's credentials: API tokens, the browsers signed in as them, a namespace's kubeconfig."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from kuberth.exceptions import InvalidInputError, KuberthError
from kuberth.http.dependencies import SESSION_KEY, ServicesDep
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.forms import act, checked_form
from kuberth.http.pages.rendering import error_page, render
from kuberth.http.routing import page_router
from kuberth.http.services import Services
from kuberth.services.principal import Principal

router = page_router()


async def _tokens_page(
    request: Request, principal: Principal, services: Services, **context: Any
) -> Response:
    """API tokens, and the browsers signed in as the user (each can be ended from here)."""
    tokens = await services.tokens.list(principal)
    browsers = await services.users.web_sessions(
        principal, current=request.session.get(SESSION_KEY)
    )
    return render(
        request,
        "tokens.html",
        principal=principal,
        tokens=tokens,
        browsers=browsers,
        **context,
    )


@router.get("/tokens")
async def tokens_page(request: Request, principal: SignedIn, services: ServicesDep) -> Response:
    return await _tokens_page(request, principal, services)


@router.post("/tokens")
async def create_token(request: Request, principal: SignedIn, services: ServicesDep) -> Response:
    form = await checked_form(request)
    values = {k: str(form.get(k, "")).strip() for k in ("name", "expires_in_days")}
    try:
        days = int(values["expires_in_days"]) if values["expires_in_days"] else None
        if days is not None and not 1 <= days <= 366:
            raise InvalidInputError("between 1 and 366 days", field="expires_in_days")
        token, _ = await services.tokens.create(
            principal, name=values["name"], expires_in_days=days
        )
    except (KuberthError, ValueError) as error:
        message = error.message if isinstance(error, KuberthError) else "a whole number of days"
        field = (
            error.field if isinstance(error, KuberthError) and error.field else "expires_in_days"
        )
        return await _tokens_page(
            request, principal, services, errors={field: message}, form=values
        )
    response = await _tokens_page(request, principal, services, new_token=token)
    response.headers["Cache-Control"] = "no-store"  # the token is in this page only
    return response


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: int, principal: SignedIn, services: ServicesDep
) -> Response:
    return await act(
        request,
        principal,
        lambda: services.tokens.revoke(principal, token_id),
        done="Token revoked.",
        then="/tokens",
    )


@router.post("/sessions/{session_id}/end")
async def end_session(
    request: Request, session_id: int, principal: SignedIn, services: ServicesDep
) -> Response:
    return await act(
        request,
        principal,
        lambda: services.users.end_web_session(principal, session_id),
        done="Signed out there.",
        then="/tokens",
    )


@router.get("/namespaces/{namespace}/kubeconfig")
async def kubeconfig_page(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    try:
        await services.namespaces.arequire_access(principal, namespace)
    except KuberthError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "kubeconfig.html",
        principal=principal,
        namespace=namespace,
        lifetime_minutes=services.kubeconfigs.lifetime // 60,
    )
