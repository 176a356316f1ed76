"""Apps: the form for a new one, an app's page (its settings, logs, scale, restart), deleting it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from kuberth.exceptions import InvalidInputError, KuberthError, NotFoundError
from kuberth.http.dependencies import ServicesDep
from kuberth.http.pages.dependencies import SignedIn
from kuberth.http.pages.forms import act, checked_form, field_errors
from kuberth.http.pages.logs import recent_logs
from kuberth.http.pages.rendering import error_page, flash, redirect, render
from kuberth.http.routing import page_router
from kuberth.http.services import Services
from kuberth.services.kinds import DEPLOYMENT
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate

router = page_router()

_APP_FIELDS = {"name", "image", "replicas", "port", "host", "env"}


def _env(text: str) -> dict[str, str]:
    env = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if "=" not in line:
            raise InvalidInputError(f"line {number}: write KEY=value", field="env")
        key, _, value = line.partition("=")
        env[key.strip()] = value
    return env


def _app_form(form: FormData) -> dict[str, Any]:
    values = {k: str(form.get(k, "")).strip() for k in _APP_FIELDS}
    values["env"] = str(form.get("env", ""))
    return values


def _app_page(
    request: Request,
    principal: Principal,
    services: Services,
    namespace: str,
    app: Any,
    **context: Any,
) -> Response:
    return render(
        request,
        "app_form.html",
        principal=principal,
        namespace=namespace,
        app=app,
        apps_domain=services.settings.apps_domain,
        suggested_image=services.settings.suggested_image,
        **context,
    )


@router.get("/namespaces/{namespace}/apps/new")
async def new_app(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    try:
        await services.namespaces.arequire_access(principal, namespace)
    except KuberthError as error:
        return error_page(request, principal, error)
    return _app_page(request, principal, services, namespace, None)


@router.post("/namespaces/{namespace}/apps")
async def create_app(
    request: Request, namespace: str, principal: SignedIn, services: ServicesDep
) -> Response:
    values = _app_form(await checked_form(request))
    try:
        body: dict[str, Any] = {k: v for k, v in values.items() if v and k != "env"}
        body["env"] = _env(values["env"])
        spec = AppSpec.model_validate(body)
        await services.apps.create(principal, namespace, spec)
    except NotFoundError as error:
        return error_page(request, principal, error)
    except (KuberthError, ValidationError) as error:
        errors = field_errors(error, _APP_FIELDS)
        return _app_page(
            request, principal, services, namespace, None, errors=errors, form=values, status=422
        )
    flash(request, f"App {spec.name} created; it becomes ready as its pods start.")
    return redirect(f"/namespaces/{namespace}/apps/{spec.name}")


@router.get("/namespaces/{namespace}/apps/{name}")
async def app_page(
    request: Request, namespace: str, name: str, principal: SignedIn, services: ServicesDep
) -> Response:
    try:
        app = await services.apps.get(principal, namespace, name)
        raw = await services.workloads.read(principal, DEPLOYMENT.plural, namespace, name)
    except KuberthError as error:
        return error_page(request, principal, error)
    container = raw["spec"]["template"]["spec"]["containers"][0]
    ports = container.get("ports") or [{}]
    current = {
        "image": container.get("image", ""),
        "replicas": str(raw["spec"].get("replicas", 1)),
        "port": str(ports[0].get("containerPort", "")),
        "host": (app["ingress"] or {}).get("hosts", [""])[0] if app["ingress"] else "",
        "env": "\n".join(f"{e['name']}={e.get('value', '')}" for e in container.get("env", [])),
    }
    logs = await recent_logs(services, principal, namespace, name, app=True)
    return _app_page(request, principal, services, namespace, app, form=current, logs=logs)


@router.post("/namespaces/{namespace}/apps/{name}")
async def update_app(
    request: Request, namespace: str, name: str, principal: SignedIn, services: ServicesDep
) -> Response:
    values = _app_form(await checked_form(request))
    try:
        body: dict[str, Any] = {k: v for k, v in values.items() if v and k not in ("env", "name")}
        if values["env"].strip():
            body["env"] = _env(values["env"])
        await services.apps.update(principal, namespace, name, AppUpdate.model_validate(body))
    except NotFoundError as error:
        return error_page(request, principal, error)
    except (KuberthError, ValidationError) as error:
        try:
            app = await services.apps.get(principal, namespace, name)
        except NotFoundError as missing:  # bad values for an app that is not there (or not yours)
            return error_page(request, principal, missing)
        errors = field_errors(error, _APP_FIELDS)
        return _app_page(
            request, principal, services, namespace, app, errors=errors, form=values, status=422
        )
    flash(request, f"App {name} updated.")
    return redirect(f"/namespaces/{namespace}/apps/{name}")


@router.post("/namespaces/{namespace}/apps/{name}/scale")
async def scale_app(
    request: Request, namespace: str, name: str, principal: SignedIn, services: ServicesDep
) -> Response:
    form = await checked_form(request)
    try:
        change = AppUpdate.model_validate({"replicas": str(form.get("replicas", ""))})
        await services.apps.update(principal, namespace, name, change)
    except (KuberthError, ValidationError) as error:
        message = error.message if isinstance(error, KuberthError) else "replicas must be 0 to 100"
        flash(request, f"Not scaled: {message}", "bad")
    else:
        flash(request, f"Scaling {name} to {change.replicas}.")
    return redirect(f"/namespaces/{namespace}/apps/{name}")


@router.post("/namespaces/{namespace}/apps/{name}/restart")
async def restart_app(
    request: Request, namespace: str, name: str, principal: SignedIn, services: ServicesDep
) -> Response:
    return await act(
        request,
        principal,
        lambda: services.workloads.restart(principal, namespace, name),
        done=f"Restarting {name}: its pods are being replaced.",
        then=f"/namespaces/{namespace}/apps/{name}",
    )


@router.post("/namespaces/{namespace}/apps/{name}/delete")
async def delete_app(
    request: Request, namespace: str, name: str, principal: SignedIn, services: ServicesDep
) -> Response:
    return await act(
        request,
        principal,
        lambda: services.apps.delete(principal, namespace, name),
        done=f"App {name} deleted.",
        then=f"/namespaces/{namespace}",
    )
