"""The pages' template environment, and how a page answers: rendered, an error, a redirect."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from kuberth.exceptions import KuberthError
from kuberth.http import csrf
from kuberth.services.principal import Principal

TEMPLATES = Path(__file__).parent.parent / "templates"

#: Where the pages' static files are mounted; templates link to them with ``static_url``.
STATIC_PATH = "/static"

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


def flash(request: Request, message: str, kind: str = "") -> None:
    """A message for the next page the session sees (after a redirect)."""
    request.session["flashes"] = [*request.session.get("flashes", []), [message, kind]]


def render(request: Request, template: str, status: int = 200, **context: Any) -> Response:
    """The template with what every page shows: who is signed in (``principal``, if given), the
    session's CSRF token for its forms, and the flash messages waiting for it."""
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
            **context,
        },
        status_code=status,
    )


def redirect(target: str) -> Response:
    """See other: after a form, the browser GETs the page it leads to."""
    return RedirectResponse(target, status_code=303)


_TITLES = {404: "Not found", 403: "Not allowed", 409: "Conflict", 503: "Try again shortly"}


def error_page(request: Request, principal: Principal | None, error: KuberthError) -> Response:
    """A service's error as a page, with the error's status (404 for anything not the caller's)."""
    return render(
        request,
        "error.html",
        status=error.status_code,
        principal=principal,
        title=_TITLES.get(error.status_code, "Something went wrong"),
        message=error.message,
    )
