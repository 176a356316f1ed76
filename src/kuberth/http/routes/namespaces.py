"""The caller's namespaces: list, create, read with status and quota, delete and wait."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from kuberth.exceptions import BadRequestError, InvalidInputError
from kuberth.http import json_bodies
from kuberth.http.dependencies import CurrentPrincipal, PageLimit, PageOffset, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.fairness import long_wait
from kuberth.http.routing import api_router
from kuberth.http.schemas import DeletionPending, Namespace, NamespaceCreate, NamespaceList

router = api_router(prefix="/api/v1/namespaces", tags=["namespaces"])

NamespaceName = Annotated[str, Path(description="The namespace", max_length=253)]

_CREATE_SCHEMA = NamespaceCreate.model_json_schema()
_CREATE_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": _CREATE_SCHEMA},
        "application/x-www-form-urlencoded": {"schema": _CREATE_SCHEMA},
    },
}


async def _create_body(request: Request) -> NamespaceCreate:
    """JSON, or a form as the original sketch took it; errors name the field."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        data: object = dict((await request.form()).items())
    else:
        try:
            data = json_bodies.loads(await request.body() or b"null")
        except json_bodies.NestedTooDeeplyError as error:
            raise BadRequestError(str(error)) from None
        except ValueError as error:
            raise BadRequestError("the body is not valid JSON") from error
    try:
        return NamespaceCreate.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidInputError(f"{field or 'body'}: {first['msg']}", field=field) from error


@router.get(
    "",
    summary="Your namespaces (an operator's: every tenant's), a page at a time",
    responses=error_responses(401, 503),
)
async def list_namespaces(
    principal: CurrentPrincipal,
    services: ServicesDep,
    offset: PageOffset = 0,
    limit: PageLimit = 100,
) -> NamespaceList:
    total, items = await services.namespaces.alist(principal, offset=offset, limit=limit)
    return NamespaceList(
        total=total, offset=offset, items=[Namespace.model_validate(n) for n in items]
    )


@router.post(
    "",
    summary="Create a namespace named <your personal namespace>-<suffix>",
    status_code=201,
    openapi_extra={"requestBody": _CREATE_BODY},
    responses={
        201: {"model": Namespace},
        **error_responses(400, 401, 403, 409, 422, 503),
    },
)
async def create_namespace(
    request: Request, principal: CurrentPrincipal, services: ServicesDep
) -> Namespace:
    body = await _create_body(request)
    summary = await services.namespaces.acreate(principal, body.name)
    return Namespace.model_validate(summary)


@router.get(
    "/{namespace}",
    summary="A namespace with its phase, conditions and quota usage",
    responses=error_responses(401, 404, 503),
)
async def get_namespace(
    namespace: NamespaceName, principal: CurrentPrincipal, services: ServicesDep
) -> Namespace:
    return Namespace.model_validate(await services.namespaces.get(principal, namespace))


@router.delete(
    "/{namespace}",
    summary="Delete a namespace and wait (with a watch) until it is gone",
    status_code=204,
    responses={
        202: {"model": DeletionPending, "description": "Still terminating (or wait=false)"},
        **error_responses(401, 404, 422, 429, 503),
    },
)
async def delete_namespace(
    request: Request,
    namespace: NamespaceName,
    principal: CurrentPrincipal,
    services: ServicesDep,
    wait: Annotated[bool, Query(description="Wait until the namespace is gone")] = True,
    timeout: Annotated[
        float | None, Query(gt=0, le=600, description="Longest wait in seconds")
    ] = None,
) -> Response:
    limit = min(timeout or services.namespaces.delete_timeout, services.namespaces.delete_timeout)
    delete = partial(services.namespaces.delete, principal, namespace, wait=wait, timeout=limit)
    # Waiting for it to go is a long wait, within the caller's cap; not waiting is not.
    if wait:
        outcome = await long_wait(request, principal, limit, delete)
    else:
        outcome = await delete()
    if outcome.gone:
        return Response(status_code=204)
    body = DeletionPending(namespace=Namespace.model_validate(outcome.namespace))
    return JSONResponse(status_code=202, content=body.model_dump(mode="json"))
