"""Deployments, Services and Ingresses in one of the caller's namespaces, and Deployment actions.

The same routes for every kind of the registry (:data:`~kuberth.services.kinds.KINDS`); each
kind's response models are the schemas named after it (``Deployment``, ``DeploymentList``).

(No ``from __future__ import annotations`` here: the routes are made per kind, and FastAPI must
see each kind's body type as a real object.)
"""

from functools import partial
from typing import Annotated, Any, Literal

from fastapi import Body, Query, Request, Response
from pydantic import BaseModel, BeforeValidator
from pydantic_core import PydanticCustomError

from kuberth.http import schemas
from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.fairness import long_wait
from kuberth.http.routes.namespaces import NamespaceName
from kuberth.http.routing import api_router
from kuberth.services.kinds import DEPLOYMENT, KINDS, WorkloadKind
from kuberth.services.specs import Replicas

router = api_router(prefix="/api/v1/namespaces/{namespace}")

Full = Annotated[bool, Query(description="Include the full Kubernetes object as `object`")]


def _include(related: frozenset[str]) -> Any:
    """The ``include`` query parameter of a kind: the related objects it offers, or (Ingresses)
    none, kept out of the schema and refused by the service if sent."""
    if not related:
        return Annotated[list[str], Query(include_in_schema=False)]
    return Annotated[
        list[Literal[tuple(sorted(related))]],  # type: ignore[misc]
        Query(
            description="Related objects to add, each costing more Kubernetes calls: a"
            " Deployment's `pods` (one) and recent `events` (one more, and the pods read to pick"
            " them), a Service's ready `endpoints` (one); repeat for several"
        ),
    ]


NATIVE = {
    "type": "object",
    "description": "The native Kubernetes object",
    "additionalProperties": True,
}


def _json_object(value: Any) -> Any:
    """Refuse anything but an object before the union does: its error would name a union member
    ("DeploymentSpec") as if it were a field."""
    if not isinstance(value, dict):
        raise PydanticCustomError("object_type", "the body must be a JSON object")
    return value


def _as_dict(body: Any) -> Any:
    return body.model_dump(exclude_unset=True) if isinstance(body, BaseModel) else body


def _routes(workload: WorkloadKind[Any]) -> None:
    plural, kind, concise = workload.plural, workload.kind, workload.concise
    one: type[BaseModel] = getattr(schemas, kind)
    many: type[BaseModel] = getattr(schemas, f"{kind}List")
    tag = plural.capitalize()
    Payload = Annotated[  # noqa: N806 - a type, made per kind
        concise | dict[str, Any],  # type: ignore[valid-type]
        BeforeValidator(_json_object),
        Body(description=f"A {kind}: the concise form, or the native {kind} object"),
    ]
    write_errors = error_responses(400, 401, 403, 404, 409, 422, 503)
    Include = _include(workload.related)  # noqa: N806 - a type, made per kind

    @router.get(
        f"/{plural}",
        tags=[tag],
        summary=f"{kind}s with their status",
        response_model=many,
        responses=error_responses(401, 404, 503),
    )
    async def list_items(
        namespace: NamespaceName, principal: CurrentPrincipal, services: ServicesDep
    ) -> dict[str, Any]:
        return {"items": await services.workloads.list(principal, plural, namespace)}

    @router.post(
        f"/{plural}",
        tags=[tag],
        summary=f"Create a {kind}",
        status_code=201,
        response_model=one,
        responses=write_errors,
    )
    async def create(
        namespace: NamespaceName,
        body: Payload,
        principal: CurrentPrincipal,
        services: ServicesDep,
        full: Full = False,
    ) -> dict[str, Any]:
        obj = await services.workloads.create(principal, plural, namespace, _as_dict(body))
        return _out(services, plural, obj, full)

    @router.get(
        f"/{plural}/{{name}}",
        tags=[tag],
        summary=f"A {kind} with its status (one Kubernetes call; more with `include`)",
        response_model=one,
        responses=error_responses(401, 404, 422, 503),
    )
    async def read(
        namespace: NamespaceName,
        name: str,
        principal: CurrentPrincipal,
        services: ServicesDep,
        full: Full = False,
        include: Include = [],  # type: ignore[valid-type]  # noqa: B006 - FastAPI copies it
    ) -> dict[str, Any]:
        related = services.workloads.check_include(plural, include)
        obj = await services.workloads.read(principal, plural, namespace, name)
        result = await services.workloads.details(principal, plural, obj, related)
        return {**result, "object": obj} if full else result

    @router.put(
        f"/{plural}/{{name}}",
        tags=[tag],
        summary=f"Replace a {kind} (with metadata.resourceVersion: only if unchanged since)",
        response_model=one,
        responses=write_errors,
    )
    async def replace(
        namespace: NamespaceName,
        name: str,
        body: Payload,
        principal: CurrentPrincipal,
        services: ServicesDep,
        full: Full = False,
    ) -> dict[str, Any]:
        obj = await services.workloads.replace(principal, plural, namespace, name, _as_dict(body))
        return _out(services, plural, obj, full)

    @router.patch(
        f"/{plural}/{{name}}",
        tags=[tag],
        summary=f"Change a {kind} with a JSON merge patch",
        openapi_extra={
            "requestBody": {"content": {"application/merge-patch+json": {"schema": NATIVE}}}
        },
        response_model=one,
        responses=write_errors,
    )
    async def patch(
        namespace: NamespaceName,
        name: str,
        body: Annotated[dict[str, Any], Body(media_type="application/merge-patch+json")],
        principal: CurrentPrincipal,
        services: ServicesDep,
        full: Full = False,
    ) -> dict[str, Any]:
        obj = await services.workloads.patch(principal, plural, namespace, name, body)
        return _out(services, plural, obj, full)

    @router.delete(
        f"/{plural}/{{name}}",
        tags=[tag],
        summary=f"Delete a {kind}",
        status_code=204,
        responses=write_errors,
    )
    async def delete(
        namespace: NamespaceName, name: str, principal: CurrentPrincipal, services: ServicesDep
    ) -> Response:
        await services.workloads.delete(principal, plural, namespace, name)
        return Response(status_code=204)


def _out(services: Any, plural: str, obj: dict[str, Any], full: bool) -> dict[str, Any]:
    summary: dict[str, Any] = services.workloads.summarize(plural, obj)
    return {**summary, "object": obj} if full else summary


for _workload in KINDS.values():
    _routes(_workload)


class Scale(BaseModel):
    replicas: Replicas


@router.post(
    "/deployments/{name}/scale",
    tags=["Deployments"],
    summary="Set the number of replicas",
    response_model=schemas.Deployment,
    responses=error_responses(400, 401, 403, 404, 422, 503),
)
async def scale(
    namespace: NamespaceName,
    name: str,
    body: Scale,
    principal: CurrentPrincipal,
    services: ServicesDep,
) -> dict[str, Any]:
    obj = await services.workloads.scale(principal, namespace, name, body.replicas)
    return DEPLOYMENT.summarize(obj)


@router.post(
    "/deployments/{name}/restart",
    tags=["Deployments"],
    summary="Rollout restart: replace every pod, as `kubectl rollout restart` does",
    response_model=schemas.Deployment,
    responses=error_responses(401, 404, 503),
)
async def restart(
    namespace: NamespaceName, name: str, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    obj = await services.workloads.restart(principal, namespace, name)
    return DEPLOYMENT.summarize(obj)


@router.get(
    "/deployments/{name}/rollout",
    tags=["Deployments"],
    summary="Watch the rollout until it completes or fails, or the timeout passes",
    response_model=schemas.Rollout,
    responses=error_responses(401, 404, 429, 503),
)
async def rollout(
    request: Request,
    namespace: NamespaceName,
    name: str,
    principal: CurrentPrincipal,
    services: ServicesDep,
    timeout: Annotated[float | None, Query(gt=0, le=600, description="Seconds to wait")] = None,
) -> dict[str, Any]:
    limit = min(timeout or services.workloads.rollout_timeout, services.workloads.rollout_timeout)
    wait = partial(services.workloads.wait_for_rollout, principal, namespace, name, timeout=limit)
    outcome, obj = await long_wait(request, principal, limit, wait)
    return {"outcome": outcome, "deployment": DEPLOYMENT.summarize(obj)}
