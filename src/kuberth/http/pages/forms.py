"""The pages' forms: their CSRF token, their errors shown at their fields, and buttons' POSTs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from kuberth.exceptions import KuberthError
from kuberth.http import csrf
from kuberth.http.pages.rendering import error_page, flash, redirect
from kuberth.services.principal import Principal


class BadFormError(Exception):
    """A state-changing form without the session's CSRF token."""


async def checked_form(request: Request) -> FormData:
    """The posted form, after checking its CSRF token against the session's.

    Read by the handler, not as a dependency: some pages refuse a path first (a kind they do not
    offer is a 404 whatever the form holds).

    Raises:
        BadFormError: the token is missing, or not this session's.
    """
    form = await request.form()
    if not csrf.matches_session(request, str(form.get("csrf", ""))):
        raise BadFormError
    return form


def field_errors(
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


async def act(
    request: Request,
    principal: Principal,
    action: Callable[[], Awaitable[object]],
    *,
    done: str,
    then: str,
) -> Response:
    """A button's POST: check the form, do it, then redirect with a message (or an error page).
    ``action`` calls a service's verb, awaited on the event loop, once the form is checked."""
    await checked_form(request)
    try:
        await action()
    except KuberthError as error:
        return error_page(request, principal, error)
    if done:
        flash(request, done)
    return redirect(then)
