"""A namespace: creating one, its page (apps, workloads, events, audit), deleting it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from kuberth.exceptions import KuberthError, NotFoundError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.pages.dashboard import dashboard_page
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.forms import act, checked_form, field_errors
from kuberth.http.pages.rendering import error_page, flash, redirect, render
from kuberth.http.routing import page_router
from kuberth.services.kinds import KINDS

router = page_router()


@router.post("/namespaces")
async def create_namespace(
    request: Request, principal: SignedIn, services: ServicesDep
) -> Response:
    form = await checked_form(request)
    name = str(form.get("name", "")).strip()
    try:
        await services.namespaces.acreate(principal, name)
    except KuberthError as error:
        return await dashboard_page(
            request, principal, services, errors=field_errors(error, {"name"}), form={"name": name}
        )
    flash(request, f"Namespace {name} created.")
    return redirect(f"/namespaces/{name}")


@router.get("/namespaces/{namespace}")
async def namespace_page(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    try:
        ns = await services.namespaces.get(principal, namespace)
        events = await services.workloads.recent_events(principal, namespace)
        audit = await services.audit.list(principal, namespace=namespace, limit=20)
        context: dict[str, Any] = {
            "ns": ns,
            "apps": await services.apps.list(principal, namespace),
            "kinds": [
                (kind, await services.workloads.list(principal, kind.plural, namespace))
                for kind in KINDS.values()
            ],
            "events": events,
            "audit": audit,
        }
    except KuberthError as error:
        return error_page(request, principal, error)
    return render(request, "namespace.html", principal=principal, **context)


@router.post("/namespaces/{namespace}/delete")
async def delete_namespace(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    return await act(
        request,
        principal,
        lambda: services.namespaces.delete(principal, namespace, wait=False, timeout=1),
        done="",
        then=f"/namespaces/{namespace}/deleting",
    )


@router.get("/namespaces/{namespace}/deleting")
async def namespace_deleting(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    """Progress of a namespace deletion; refreshes itself until the namespace is gone."""
    try:
        ns = await services.namespaces.get(principal, namespace)
    except NotFoundError:
        return render(
            request,
            "deleting.html",
            principal=principal,
            what="Namespace",
            name=namespace,
            gone=True,
            back="/dashboard",
        )
    except KuberthError as error:
        return error_page(request, principal, error)
    return render(
        request,
        "deleting.html",
        principal=principal,
        what="Namespace",
        name=namespace,
        gone=False,
        conditions=[c for c in ns.conditions if c.get("status") == "True"],
    )
