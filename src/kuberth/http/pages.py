"""Server-rendered pages (Jinja2) for everything the API offers; forms post and redirect.

Every form that changes state carries the session's CSRF token. Pages call the same services as
the API, so validation and errors are the same; a service error becomes a field error on the
form, or an error page (404 for anything that is not the caller's).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from starlette.datastructures import FormData

from kuberth.exceptions import (
    ForbiddenError,
    InvalidInputError,
    KuberthError,
    NotFoundError,
    UnauthenticatedError,
)
from kuberth.http import csrf, json_bodies
from kuberth.http.dependencies import SESSION_KEY
from kuberth.http.json_bodies import BoundedJSONRoute
from kuberth.http.services import Services
from kuberth.services.kinds import DEPLOYMENT, KINDS
from kuberth.services.logs import LogRequest
from kuberth.services.principal import Principal
from kuberth.services.specs import AppSpec, AppUpdate

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

#: Where :func:`install_pages` mounts STATIC; the pages link to it with ``static_url``.
STATIC_PATH = "/static"

router = APIRouter(route_class=BoundedJSONRoute, include_in_schema=False)
# auto_reload off: templates change with the code (a restart), so a render need not stat each
# file it extends to see whether it changed.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=jinja2.select_autoescape(),
        auto_reload=False,
    )
)


def _age(value: object) -> str:
    """ "5m", "3h", "2d" since a timestamp (ISO text or datetime)."""
    if not value:
        return ""
    when = value if isinstance(value, datetime.datetime) else None
    if when is None:
        try:
            when = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return str(value)
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    seconds = max(0, int((datetime.datetime.now(datetime.UTC) - when).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


_UNITS = {
    "m": 1e-3,
    "k": 1e3,
    "Ki": 1024,
    "M": 1e6,
    "Mi": 1024**2,
    "G": 1e9,
    "Gi": 1024**3,
    "T": 1e12,
    "Ti": 1024**4,
}


def _quantity(text: str) -> float:
    for unit in sorted(_UNITS, key=len, reverse=True):
        if text.endswith(unit):
            return float(text[: -len(unit)]) * _UNITS[unit]
    return float(text)


def _percent(usage: dict[str, Any]) -> int:
    try:
        hard, used = _quantity(str(usage["hard"])), _quantity(str(usage.get("used") or "0"))
    except (ValueError, KeyError):
        return 0
    return 100 if hard == 0 and used > 0 else int(min(100, 100 * used / hard)) if hard else 0


def _static_url(path: str) -> str:
    """A static file's link, root-relative as every other link of the pages. Not ``url_for``:
    Starlette walks every route to build each one (8 % of /admin's CPU, for a constant)."""
    return f"{STATIC_PATH}/{path}"


templates.env.filters["age"] = _age
templates.env.filters["percent"] = _percent
templates.env.globals["static_url"] = _static_url


class _BadFormError(Exception):
    """A state-changing form without the session's CSRF token."""


class _NotSignedInError(Exception):
    def __init__(self, target: str) -> None:
        self.target = target


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the session's."""
    form = await request.form()
    if not csrf.matches_session(request, str(form.get("csrf", ""))):
        raise _BadFormError
    return form


def _principal(request: Request) -> Principal:
    """The signed-in user, for a page served in a worker thread (its services are synchronous)."""
    try:
        return _services(request).users.from_session(
            request.session.get("user_id"), request.session.get(SESSION_KEY)
        )
    except UnauthenticatedError:
        raise _NotSignedInError(request.url.path) from None


async def _aprincipal(request: Request) -> Principal:
    """The signed-in user, asked on the event loop: for pages served there."""
    try:
        return await _services(request).users.afrom_session(
            request.session.get("user_id"), request.session.get(SESSION_KEY)
        )
    except UnauthenticatedError:
        raise _NotSignedInError(request.url.path) from None


def _flash(request: Request, message: str, kind: str = "") -> None:
    request.session["flashes"] = [*request.session.get("flashes", []), [message, kind]]


def _render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    principal = context.pop("principal", None)
    return templates.TemplateResponse(
        request,
        template,
        {
            "principal": principal,
            "csrf": csrf.session_token(request),
            "flashes": request.session.pop("flashes", []),
            "errors": {},
            "form": {},
            "suggested_image": _services(request).settings.suggested_image,
            **context,
        },
        status_code=status,
    )


def _redirect(target: str) -> Response:
    return RedirectResponse(target, status_code=303)


def _error_page(request: Request, principal: Principal | None, error: KuberthError) -> Response:
    titles = {404: "Not found", 403: "Not allowed", 409: "Conflict", 503: "Try again shortly"}
    return _render(
        request,
        "error.html",
        status=error.status_code,
        principal=principal,
        title=titles.get(error.status_code, "Something went wrong"),
        message=error.message,
    )


def _field_errors(
    error: Exception, fields: set[str], nested: tuple[str, ...] = ()
) -> dict[str, str]:
    """A service or validation error as {field: message}; "_" for the form as a whole.

    ``nested``: lists the form flattens into single fields, e.g. ``ports.0.target_port`` is shown
    at ``target_port``.
    """
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "_"
        return {field if field in fields else "_": str(first["msg"])}
    assert isinstance(error, KuberthError)
    parts = (error.field or "").split(".")
    field = parts[-1] if parts[0] in nested else parts[0]
    return {field if field in fields else "_": error.message}


async def _act(
    request: Request,
    action: Callable[..., Awaitable[object]],
    *args: Any,
    done: str,
    then: str,
    **kwargs: Any,
) -> Response:
    """A button's POST: check the form, do it, then redirect with a message (or an error page).
    ``action`` is a service's verb, awaited on the event loop."""
    principal = await _aprincipal(request)
    await _form(request)
    try:
        await action(principal, *args, **kwargs)
    except KuberthError as error:
        return _error_page(request, principal, error)
    if done:
        _flash(request, done)
    return _redirect(then)


def install_pages(app: Any) -> None:
    """Add the pages, their static files, and the redirect to sign-in for signed-out visitors."""
    from fastapi.staticfiles import StaticFiles

    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="static")
    app.include_router(router)

    async def not_signed_in(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, _NotSignedInError)
        return RedirectResponse(f"/auth/github/login?next={exc.target}", status_code=303)

    async def bad_form(request: Request, _: Exception) -> Response:
        error = ForbiddenError("the form has expired or did not come from Kuberth; reload the page")
        return _error_page(request, None, error)

    app.add_exception_handler(_NotSignedInError, not_signed_in)
    app.add_exception_handler(_BadFormError, bad_form)


# -- landing, dashboard, namespaces -------------------------------------------------------------


@router.get("/")
def landing(request: Request) -> Response:
    if request.session.get("user_id"):
        return _redirect("/dashboard")
    return _render(request, "landing.html")


async def _dashboard(request: Request, principal: Principal, **context: Any) -> Response:
    # From the database and watch-fed copies: no Kubernetes request (see services/dashboard.py).
    namespaces = await _services(request).dashboard.namespaces(principal)
    personal = next((n.name for n in namespaces if n.personal), None)
    hint = f"{personal}-<suffix>" if personal else None
    return _render(
        request, "dashboard.html", principal=principal, namespaces=namespaces, hint=hint, **context
    )


@router.get("/dashboard")
async def dashboard(request: Request) -> Response:
    principal = await _aprincipal(request)
    try:
        return await _dashboard(request, principal)
    except KuberthError as error:
        return _error_page(request, principal, error)


@router.post("/namespaces")
async def create_namespace(request: Request) -> Response:
    principal = await _aprincipal(request)
    form = await _form(request)
    name = str(form.get("name", "")).strip()
    try:
        await run_in_threadpool(_services(request).namespaces.create, principal, name)
    except KuberthError as error:
        return await _dashboard(
            request, principal, errors=_field_errors(error, {"name"}), form={"name": name}
        )
    _flash(request, f"Namespace {name} created.")
    return _redirect(f"/namespaces/{name}")


@router.get("/namespaces/{namespace}")
async def namespace_page(request: Request, namespace: str) -> Response:
    principal = await _aprincipal(request)
    services = _services(request)
    try:
        ns = await services.namespaces.get(principal, namespace)
        events = await run_in_threadpool(services.workloads.recent_events, principal, namespace)
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
        return _error_page(request, principal, error)
    return _render(request, "namespace.html", principal=principal, **context)


@router.post("/namespaces/{namespace}/delete")
async def delete_namespace(request: Request, namespace: str) -> Response:
    return await _act(
        request,
        _services(request).namespaces.delete,
        namespace,
        wait=False,
        timeout=1,
        done="",
        then=f"/namespaces/{namespace}/deleting",
    )


@router.get("/namespaces/{namespace}/deleting")
async def namespace_deleting(request: Request, namespace: str) -> Response:
    """Progress of a namespace deletion; refreshes itself until the namespace is gone."""
    principal = await _aprincipal(request)
    try:
        ns = await _services(request).namespaces.get(principal, namespace)
    except NotFoundError:
        return _render(
            request,
            "deleting.html",
            principal=principal,
            what="Namespace",
            name=namespace,
            gone=True,
            back="/dashboard",
        )
    except KuberthError as error:
        return _error_page(request, principal, error)
    return _render(
        request,
        "deleting.html",
        principal=principal,
        what="Namespace",
        name=namespace,
        gone=False,
        conditions=[c for c in ns.conditions if c.get("status") == "True"],
    )


@router.get("/namespaces/{namespace}/kubeconfig")
async def kubeconfig_page(request: Request, namespace: str) -> Response:
    principal = await _aprincipal(request)
    services = _services(request)
    try:
        await services.namespaces.arequire_access(principal, namespace)
    except KuberthError as error:
        return _error_page(request, principal, error)
    minutes = services.kubeconfigs.lifetime // 60
    return _render(
        request,
        "kubeconfig.html",
        principal=principal,
        namespace=namespace,
        lifetime_minutes=minutes,
    )


# -- apps ---------------------------------------------------------------------------------------

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
    request: Request, principal: Principal, namespace: str, app: Any, **context: Any
) -> Response:
    services = _services(request)
    return _render(
        request,
        "app_form.html",
        principal=principal,
        namespace=namespace,
        app=app,
        apps_domain=services.settings.apps_domain,
        **context,
    )


@router.get("/namespaces/{namespace}/apps/new")
def new_app(request: Request, namespace: str) -> Response:
    principal = _principal(request)
    try:
        _services(request).namespaces.require_access(principal, namespace)
    except KuberthError as error:
        return _error_page(request, principal, error)
    return _app_page(request, principal, namespace, None)


@router.post("/namespaces/{namespace}/apps")
async def create_app(request: Request, namespace: str) -> Response:
    principal = await _aprincipal(request)
    values = _app_form(await _form(request))
    try:
        body: dict[str, Any] = {k: v for k, v in values.items() if v and k != "env"}
        body["env"] = _env(values["env"])
        spec = AppSpec.model_validate(body)
        await _services(request).apps.create(principal, namespace, spec)
    except NotFoundError as error:
        return _error_page(request, principal, error)
    except (KuberthError, ValidationError) as error:
        errors = _field_errors(error, _APP_FIELDS)
        return _app_page(
            request, principal, namespace, None, errors=errors, form=values, status=422
        )
    _flash(request, f"App {spec.name} created; it becomes ready as its pods start.")
    return _redirect(f"/namespaces/{namespace}/apps/{spec.name}")


@router.get("/namespaces/{namespace}/apps/{name}")
async def app_page(request: Request, namespace: str, name: str) -> Response:
    principal = await _aprincipal(request)
    services = _services(request)
    try:
        app = await services.apps.get(principal, namespace, name)
        raw = await services.workloads.read(principal, DEPLOYMENT.plural, namespace, name)
    except KuberthError as error:
        return _error_page(request, principal, error)
    container = raw["spec"]["template"]["spec"]["containers"][0]
    ports = container.get("ports") or [{}]
    current = {
        "image": container.get("image", ""),
        "replicas": str(raw["spec"].get("replicas", 1)),
        "port": str(ports[0].get("containerPort", "")),
        "host": (app["ingress"] or {}).get("hosts", [""])[0] if app["ingress"] else "",
        "env": "\n".join(f"{e['name']}={e.get('value', '')}" for e in container.get("env", [])),
    }
    logs = await _recent_logs(services, principal, namespace, name, app=True)
    return _app_page(request, principal, namespace, app, form=current, logs=logs)


async def _recent_logs(
    services: Services, principal: Principal, namespace: str, name: str, *, app: bool
) -> dict[str, str | None]:
    """The recent lines of a Deployment's (an app's) pods for its page, or why there are none;
    the page's script follows them live from the same API."""
    kind = "apps" if app else DEPLOYMENT.plural
    asked = LogRequest()
    try:
        sources = await services.logs.sources(principal, namespace, name, asked, app=app)
        text: str | None = await services.logs.read(principal, namespace, sources, asked)
        error = None if sources else "No pod has started yet."
    except KuberthError as failure:
        text, error = None, failure.message
    return {
        "url": f"/api/v1/namespaces/{namespace}/{kind}/{name}/logs",
        "text": text,
        "error": error,
        "tail": str(asked.tail),
    }


@router.post("/namespaces/{namespace}/apps/{name}")
async def update_app(request: Request, namespace: str, name: str) -> Response:
    principal = await _aprincipal(request)
    values = _app_form(await _form(request))
    services = _services(request)
    try:
        body: dict[str, Any] = {k: v for k, v in values.items() if v and k not in ("env", "name")}
        if values["env"].strip():
            body["env"] = _env(values["env"])
        await services.apps.update(principal, namespace, name, AppUpdate.model_validate(body))
    except NotFoundError as error:
        return _error_page(request, principal, error)
    except (KuberthError, ValidationError) as error:
        try:
            app = await services.apps.get(principal, namespace, name)
        except NotFoundError as missing:  # bad values for an app that is not there (or not yours)
            return _error_page(request, principal, missing)
        errors = _field_errors(error, _APP_FIELDS)
        return _app_page(request, principal, namespace, app, errors=errors, form=values, status=422)
    _flash(request, f"App {name} updated.")
    return _redirect(f"/namespaces/{namespace}/apps/{name}")


@router.post("/namespaces/{namespace}/apps/{name}/scale")
async def scale_app(request: Request, namespace: str, name: str) -> Response:
    principal = await _aprincipal(request)
    form = await _form(request)
    try:
        change = AppUpdate.model_validate({"replicas": str(form.get("replicas", ""))})
        await _services(request).apps.update(principal, namespace, name, change)
    except (KuberthError, ValidationError) as error:
        message = error.message if isinstance(error, KuberthError) else "replicas must be 0 to 100"
        _flash(request, f"Not scaled: {message}", "bad")
    else:
        _flash(request, f"Scaling {name} to {change.replicas}.")
    return _redirect(f"/namespaces/{namespace}/apps/{name}")


@router.post("/namespaces/{namespace}/apps/{name}/restart")
async def restart_app(request: Request, namespace: str, name: str) -> Response:
    return await _act(
        request,
        _services(request).workloads.restart,
        namespace,
        name,
        done=f"Restarting {name}: its pods are being replaced.",
        then=f"/namespaces/{namespace}/apps/{name}",
    )


@router.post("/namespaces/{namespace}/apps/{name}/delete")
async def delete_app(request: Request, namespace: str, name: str) -> Response:
    return await _act(
        request,
        _services(request).apps.delete,
        namespace,
        name,
        done=f"App {name} deleted.",
        then=f"/namespaces/{namespace}",
    )


# -- deployments, services, ingresses ------------------------------------------------------------

# What differs between kinds (their form fields, how the form becomes a concise body, their names)
# is the registry's: these pages are the same for every kind.


def _resource_page(
    request: Request, principal: Principal, namespace: str, plural: str, **context: Any
) -> Response:
    kind = KINDS[plural].kind
    return _render(
        request,
        "resource_form.html",
        principal=principal,
        namespace=namespace,
        kind=kind,
        **context,
    )


@router.get("/namespaces/{namespace}/{plural}/new")
def new_resource(request: Request, namespace: str, plural: str) -> Response:
    principal = _principal(request)
    if plural not in KINDS:
        return _error_page(request, principal, NotFoundError("no such page"))
    try:
        _services(request).namespaces.require_access(principal, namespace)
    except KuberthError as error:
        return _error_page(request, principal, error)
    kind = KINDS[plural]
    return _resource_page(
        request,
        principal,
        namespace,
        plural,
        title=f"New {kind.noun} in {namespace}",
        action=f"/namespaces/{namespace}/{plural}",
        fields=kind.form_fields(),
        manifest=None,
        submit=f"Create {kind.noun}",
        delete_action=None,
        name=None,
    )


@router.post("/namespaces/{namespace}/{plural}")
async def create_resource(request: Request, namespace: str, plural: str) -> Response:
    principal = await _aprincipal(request)
    if plural not in KINDS:
        return _error_page(request, principal, NotFoundError("no such page"))
    form = await _form(request)
    kind = KINDS[plural]
    fields = kind.form_fields()
    values = {f["name"]: str(form.get(f["name"], "")).strip() for f in fields}
    try:
        await _services(request).workloads.create(
            principal, plural, namespace, kind.form_body(values)
        )
    except NotFoundError as error:
        return _error_page(request, principal, error)
    except KuberthError as error:
        names = {f["name"] for f in fields}
        lists = kind.form_lists
        errors = _field_errors(error, names | set(lists), nested=tuple(lists))
        for nested, field in lists.items():
            if nested in errors:  # the list as a whole, e.g. empty
                errors[field] = errors.pop(nested)
        return _resource_page(
            request,
            principal,
            namespace,
            plural,
            title=f"New {kind.noun} in {namespace}",
            action=f"/namespaces/{namespace}/{plural}",
            fields=fields,
            manifest=None,
            errors=errors,
            form=values,
            submit=f"Create {kind.noun}",
            delete_action=None,
            name=None,
            status=422,
        )
    _flash(request, f"{kind.kind} {values['name']} created.")
    return _redirect(f"/namespaces/{namespace}")


@router.get("/namespaces/{namespace}/{plural}/{name}/edit")
async def edit_resource(request: Request, namespace: str, plural: str, name: str) -> Response:
    principal = await _aprincipal(request)
    if plural not in KINDS:
        return _error_page(request, principal, NotFoundError("no such page"))
    try:
        obj = await _services(request).workloads.read(principal, plural, namespace, name)
    except KuberthError as error:
        return _error_page(request, principal, error)
    context: dict[str, Any] = {}
    if KINDS[plural].runs_pods:  # why its pods do not run, and their logs
        services = _services(request)
        try:
            found = await services.workloads.details(
                principal, plural, obj, frozenset({"problems"})
            )
            context["problems"] = found["problems"]
        except KuberthError as error:
            return _error_page(request, principal, error)
        context["logs"] = await _recent_logs(services, principal, namespace, name, app=False)
    obj.get("metadata", {}).pop("managedFields", None)
    return _edit_page(
        request, principal, namespace, plural, name, json.dumps(obj, indent=2), **context
    )


def _edit_page(
    request: Request,
    principal: Principal,
    namespace: str,
    plural: str,
    name: str,
    manifest: str,
    **context: Any,
) -> Response:
    return _resource_page(
        request,
        principal,
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


@router.post("/namespaces/{namespace}/{plural}/{name}/edit")
async def save_resource(request: Request, namespace: str, plural: str, name: str) -> Response:
    principal = await _aprincipal(request)
    if plural not in KINDS:
        return _error_page(request, principal, NotFoundError("no such page"))
    text = str((await _form(request)).get("manifest", ""))
    try:
        body = json_bodies.loads(text)
        await _services(request).workloads.replace(principal, plural, namespace, name, body)
    except NotFoundError as error:
        return _error_page(request, principal, error)
    except (ValueError, KuberthError) as error:
        message = error.message if isinstance(error, KuberthError) else f"not valid JSON: {error}"
        field = f" ({error.field})" if isinstance(error, KuberthError) and error.field else ""
        return _edit_page(
            request,
            principal,
            namespace,
            plural,
            name,
            text,
            errors={"manifest": message + field},
            status=422,
        )
    _flash(request, f"{KINDS[plural].kind} {name} saved.")
    return _redirect(f"/namespaces/{namespace}")


@router.post("/namespaces/{namespace}/{plural}/{name}/delete")
async def delete_resource(request: Request, namespace: str, plural: str, name: str) -> Response:
    if plural not in KINDS:
        return _error_page(request, await _aprincipal(request), NotFoundError("no such page"))
    return await _act(
        request,
        _services(request).workloads.delete,
        plural,
        namespace,
        name,
        done=f"{KINDS[plural].kind} {name} deleted.",
        then=f"/namespaces/{namespace}",
    )


# -- tokens, operators, sign-out -----------------------------------------------------------------


async def _tokens_page(request: Request, principal: Principal, **context: Any) -> Response:
    """API tokens, and the browsers signed in as the user (each can be ended from here)."""
    services = _services(request)
    tokens = await services.tokens.list(principal)
    browsers = await services.users.web_sessions(
        principal, current=request.session.get(SESSION_KEY)
    )
    return _render(
        request,
        "tokens.html",
        principal=principal,
        tokens=tokens,
        browsers=browsers,
        **context,
    )


@router.get("/tokens")
async def tokens_page(request: Request) -> Response:
    return await _tokens_page(request, await _aprincipal(request))


@router.post("/tokens")
async def create_token(request: Request) -> Response:
    principal = await _aprincipal(request)
    form = await _form(request)
    values = {k: str(form.get(k, "")).strip() for k in ("name", "expires_in_days")}
    services = _services(request)
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
        return await _tokens_page(request, principal, errors={field: message}, form=values)
    response = await _tokens_page(request, principal, new_token=token)
    response.headers["Cache-Control"] = "no-store"  # the token is in this page only
    return response


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: int) -> Response:
    return await _act(
        request, _services(request).tokens.revoke, token_id, done="Token revoked.", then="/tokens"
    )


@router.post("/sessions/{session_id}/end")
async def end_session(request: Request, session_id: int) -> Response:
    return await _act(
        request,
        _services(request).users.end_web_session,
        session_id,
        done="Signed out there.",
        then="/tokens",
    )


@router.get("/admin")
async def admin_page(request: Request, offset: int = 0) -> Response:
    principal = await _aprincipal(request)
    limit = 50
    try:
        total, tenants = await _services(request).admin.tenants(
            principal, offset=max(0, offset), limit=limit
        )
    except KuberthError as error:
        return _error_page(request, principal, error)
    return _render(
        request,
        "admin.html",
        principal=principal,
        tenants=tenants,
        total=total,
        offset=max(0, offset),
        limit=limit,
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    await _form(request)
    await _services(request).users.aend_session(request.session.get(SESSION_KEY))
    request.session.clear()
    return _redirect("/")
