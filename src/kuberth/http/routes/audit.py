"""The audit log of changes."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import Query

from kuberth.http.dependencies import CurrentPrincipal, ServicesDep
from kuberth.http.errors import error_responses
from kuberth.http.routing import api_router

router = api_router(prefix="/api/v1/audit", tags=["audit"])


@router.get(
    "",
    summary="Changes in your namespaces (operators: everyone's), newest first",
    responses=error_responses(401),
)
async def list_audit(
    principal: CurrentPrincipal,
    services: ServicesDep,
    namespace: Annotated[str | None, Query(max_length=63)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    entries = await services.audit.list(principal, namespace=namespace, limit=limit)
    return {"items": [asdict(e) for e in entries]}
