"""A namespace-scoped kubeconfig with a short-lived token, for kubectl and helm."""

from __future__ import annotations

from fastapi import Response

from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routes.namespaces import NamespaceName
from kuberth.http.routing import api_router

router = api_router(prefix="/api/v1/namespaces/{namespace}/kubeconfig", tags=["kubeconfig"])


@router.get(
    "",
    summary="Download a kubeconfig for this namespace (token lifetime: a setting)",
    response_class=Response,
    responses={
        200: {"content": {"application/yaml": {}}, "description": "The kubeconfig"},
        **error_responses(401, 404, 503),
    },
)
async def download(
    namespace: NamespaceName, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    text = await services.kubeconfigs.issue(principal, namespace)
    return Response(
        content=text,
        media_type="application/yaml",
        headers={
            "Content-Disposition": f'attachment; filename="kubeconfig-{namespace}.yaml"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "",
    summary="Revoke every kubeconfig issued for this namespace: their tokens stop working at once",
    status_code=204,
    responses=error_responses(401, 404, 503),
)
async def revoke(
    namespace: NamespaceName, principal: CurrentPrincipal, services: ServicesDep
) -> Response:
    await services.kubeconfigs.revoke(principal, namespace)
    return Response(status_code=204)
