"""Personal API tokens."""

from __future__ import annotations

from fastapi import Response

from kuberth.http.dependencies import CurrentPrincipal, RowId, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routing import api_router
from kuberth.http.schemas import Token, TokenCreate, TokenCreated, TokenList

router = api_router(prefix="/api/v1/tokens", tags=["tokens"])


@router.get("", summary="Your API tokens (never their values)", responses=error_responses(401))
async def list_tokens(principal: CurrentPrincipal, services: ServicesDep) -> TokenList:
    tokens = await services.tokens.list(principal)
    return TokenList(items=[Token.model_validate(t) for t in tokens])


@router.post(
    "",
    summary="Create an API token; its value is in this response only",
    status_code=201,
    responses=error_responses(400, 401, 422),
)
async def create_token(
    body: TokenCreate, principal: CurrentPrincipal, services: ServicesDep
) -> TokenCreated:
    value, info = await services.tokens.create(
        principal, name=body.name, expires_in_days=body.expires_in_days
    )
    return TokenCreated(token=value, **Token.model_validate(info).model_dump())


@router.delete(
    "/{token_id}",
    summary="Revoke an API token",
    status_code=204,
    responses=error_responses(401, 404),
)
async def revoke_token(
    token_id: RowId, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.tokens.revoke(principal, token_id)
    return Response(status_code=204)
