"""Deployments, Services and Ingresses: a form for a new one, its manifest to edit, deleting it.

What differs between kinds (their form fields, how the form becomes a concise body, their names)
is the registry's (:mod:`kuberth.services.kinds`): these pages are the same for every kind, and a
kind the registry does not offer is a 404 before the form is read.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from kuberth.exceptions import KuberthError, NotFoundError
from kuberth.http import json_bodies
from kuberth.http.dependencies import ServicesDep
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.forms import act, checked_form, field_errors
from kuberth.http.pages.logs import recent_logs
from kuberth.http.pages.rendering import error_page, flash, redirect, render
from kuberth.http.routing import page_router
from kuberth.http.services import Services
from kuberth.services.kinds import KINDS
from kuberth.services.principal import Principal

router = page_router()

_NO_SUCH_PAGE = "no such page"


def _resource_page(
    request: Request,
    principal: Principal,
    services: Services,
    namespace: str,
    plural: str,
    **context: Any,
) -> Response:
    return render(
        request,
        "resource_form.html",
        principal=principal,
        namespace=namespace,
        kind=KINDS[plural].kind,
        suggested_image=services.settings.suggested_image,
        **context,
    )


def _new_page(
    request: Request,
    principal: Principal,
    services: Services,
    namespace: str,
    plural: str,
    **context: Any,
) -> Response:
    kind = KINDS[plural]
    return _resource_page(
        request,
        principal,
        services,
        namespace,
        plural,
        title=f"New {kind.noun} in {namespace}",
        action=f"/namespaces/{namespace}/{plural}",
        manifest=None,
        submit=f"Create {kind.noun}",
        delete_action=None,
        name=None,
        **context,
    )


@router.get("/namespaces/{namespace}/{plural}/new")
async def new_resource(
    request: Request, namespace: str, plural: str, principal: SignedIn, services: ServicesDep
) -> Response:
    if plural not in KINDS:
        return error_page(request, principal, NotFoundError(_NO_SUCH_PAGE))
    try:
        await services.namespaces.arequire_access(principal, namespace)
    except KuberthError as error:
        return error_page(request, principal, error)
    return _new_page(
        request, principal, services, namespace, plural, fields=KINDS[plural].form_fields()
    )


@router.post("/namespaces/{namespace}/{plural}")
async def create_resource(
    request: Request, namespace: str, plural: str, principal: SignedIn, services: ServicesDep
) -> Response:
    if plural not in KINDS:
        return error_page(request, principal, NotFoundError(_NO_SUCH_PAGE))
    form = await checked_form(request)
    kind = KINDS[plural]
    fields = kind.form_fields()
    values = {f["name"]: str(form.get(f["name"], "")).strip() for f in fields}
    try:
        await services.workloads.create(principal, plural, namespace, kind.form_body(values))
    except NotFoundError as error:
        return error_page(request, principal, error)
    except KuberthError as error:
        names = {f["name"] for f in fields}
        lists = kind.form_lists
        errors = field_errors(error, names | set(lists), nested=tuple(lists))
        for nested, field in lists.items():
            if nested in errors:  # the list as a whole, e.g. empty
                errors[field] = errors.pop(nested)
        return _new_page(
            request,
            principal,
            services,
            namespace,
            plural,
            fields=fields,
            errors=errors,
            form=values,
            status=422,
        )
    flash(request, f"{kind.kind} {values['name']} created.")
    return redirect(f"/namespaces/{namespace}")


def _edit_page(
    request: Request,
    principal: Principal,
    services: Services,
    namespace: str,
    plural: str,
    name: str,
    manifest: str,
    **context: Any,
) -> Response:
    return _resource_page(
        request,
        principal,
        services,
        namespace,
        plural,
        title=f"{KINDS[plural].kind} {name}",
        fields=[],
        manifest=manifest,
        action=f"/namespaces/{namespace}/{plural}/{name}/edit",
        submit="Save",
        delete_action=f"/namespaces/{namespace}/{plural}/{name}/delete",
        name=name,
        **context,
    )


@router.get("/namespaces/{namespace}/{plural}/{name}/edit")
async def edit_resource(
    request: Request,
    namespace: str,
    plural: str,
    name: str,
    principal: SignedIn,
    services: ServicesDep,
) -> Response:
    if plural not in KINDS:
        return error_page(request, principal, NotFoundError(_NO_SUCH_PAGE))
    try:
        obj = await services.workloads.read(principal, plural, namespace, name)
    except KuberthError as error:
        return error_page(request, principal, error)
    context: dict[str, Any] = {}
    if KINDS[plural].runs_pods:  # why its pods do not run, and their logs
        try:
            found = await services.workloads.details(
                principal, plural, obj, frozenset({"problems"})
            )
            context["problems"] = found["problems"]
        except KuberthError as error:
            return error_page(request, principal, error)
        context["logs"] = await recent_logs(services, principal, namespace, name, app=False)
    obj.get("metadata", {}).pop("managedFields", None)
    manifest = json.dumps(obj, indent=2)
    return _edit_page(request, principal, services, namespace, plural, name, manifest, **context)


@router.post("/namespaces/{namespace}/{plural}/{name}/edit")
async def save_resource(
    request: Request,
    namespace: str,
    plural: str,
    name: str,
    principal: SignedIn,
    services: ServicesDep,
) -> Response:
    if plural not in KINDS:
        return error_page(request, principal, NotFoundError(_NO_SUCH_PAGE))
    text = str((await checked_form(request)).get("manifest", ""))
    try:
        body = json_bodies.loads(text)
        await services.workloads.replace(principal, plural, namespace, name, body)
    except NotFoundError as error:
        return error_page(request, principal, error)
    except (ValueError, KuberthError) as error:
        message = error.message if isinstance(error, KuberthError) else f"not valid JSON: {error}"
        field = f" ({error.field})" if isinstance(error, KuberthError) and error.field else ""
        return _edit_page(
            request,
            principal,
            services,
            namespace,
            plural,
            name,
            text,
            errors={"manifest": message + field},
            status=422,
        )
    flash(request, f"{KINDS[plural].kind} {name} saved.")
    return redirect(f"/namespaces/{namespace}")


@router.post("/namespaces/{namespace}/{plural}/{name}/delete")
async def delete_resource(
    request: Request,
    namespace: str,
    plural: str,
    name: str,
    principal: SignedIn,
    services: ServicesDep,
) -> Response:
    if plural not in KINDS:
        return error_page(request, principal, NotFoundError(_NO_SUCH_PAGE))
    return await act(
        request,
        principal,
        lambda: services.workloads.delete(principal, plural, namespace, name),
        done=f"{KINDS[plural].kind} {name} deleted.",
        then=f"/namespaces/{namespace}",
    )
