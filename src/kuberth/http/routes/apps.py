"""Apps: Deployment + Service + Ingress, made, changed and deleted together."""

from __future__ import annotations

from typing import Any

from fastapi import Response

from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routes.namespaces import NamespaceName
from kuberth.http.routing import api_router
from kuberth.http.schemas import App, AppList
from kuberth.services.specs import AppSpec, AppUpdate

router = api_router(prefix="/api/v1/namespaces/{namespace}/apps", tags=["Apps"])


@router.get(
    "",
    summary="Apps with their status and URL",
    response_model=AppList,
    responses=error_responses(401, 404, 503),
)
async def list_apps(
    namespace: NamespaceName, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return {"items": await services.apps.list(principal, namespace)}


@router.post(
    "",
    summary="Create an app; all of it or, if a step fails, nothing (the error names the step)",
    status_code=201,
    response_model=App,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def create_app(
    namespace: NamespaceName, body: AppSpec, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return await services.apps.create(principal, namespace, body)


@router.get(
    "/{name}", summary="An app", response_model=App, responses=error_responses(401, 404, 503)
)
async def get_app(
    namespace: NamespaceName, name: str, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    return await services.apps.get(principal, namespace, name)


@router.patch(
    "/{name}",
    summary="Change an app's image, replicas, env, port or host, all parts together",
    response_model=App,
    responses=error_responses(400, 401, 403, 404, 409, 422, 503),
)
async def update_app(
    namespace: NamespaceName,
    name: str,
    body: AppUpdate,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> dict[str, Any]:
    return await services.apps.update(principal, namespace, name, body)


@router.delete(
    "/{name}",
    summary="Delete an app's parts",
    status_code=204,
    responses=error_responses(401, 404, 503),
)
async def delete_app(
    namespace: NamespaceName, name: str, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.apps.delete(principal, namespace, name)
    return Response(status_code=204)
